"""vvops.forecast: trend recovery, prediction bands, days to a limit, resampling."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from vvops.forecast import (
    SeriesArrays,
    SeriesPoints,
    days_to_limit,
    fit_trend,
    forecast_frame,
    limit_crossing,
    plan_capacity,
    resample_long,
    resample_points,
)

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def _series(days=90, slope=0.5, level=40.0, weekly=3.0, noise=1.0, seed=1):
    rng = np.random.default_rng(seed)
    ts = pd.date_range(T0, periods=days * 24, freq="h", tz="UTC")
    t = np.arange(len(ts)) / 24
    y = level + slope * t + weekly * np.sin(2 * np.pi * t / 7) + rng.normal(0, noise, len(ts))
    return ts, y


def test_recovers_a_known_trend_within_tolerance():
    ts, y = _series(slope=0.5)
    daily = resample_long(pd.DataFrame({"series": "s", "ts": ts, "value": y}), "1D")
    fit = fit_trend(daily["ts"], daily["value"])
    # stated tolerance: slope within 5 % of the truth over 90 days of daily means with weekly seasonality
    assert fit.slope_per_day == pytest.approx(0.5, rel=0.05)
    assert fit.r2 > 0.95


def test_prediction_band_covers_the_truth_and_widens():
    ts, y = _series(slope=-0.2, level=80, noise=2.0, seed=3)
    daily = resample_long(pd.DataFrame({"series": "s", "ts": ts, "value": y}), "1D")
    fit = fit_trend(daily["ts"], daily["value"])
    fc = forecast_frame(fit, T0 + timedelta(days=90), 30)
    truth = 80 - 0.2 * (90 + np.arange(31))
    assert ((fc["lower"] <= truth) & (truth <= fc["upper"])).mean() >= 0.9
    width = fc["upper"] - fc["lower"]
    assert width.iloc[-1] > width.iloc[0]


@pytest.mark.parametrize("level,slope,limit,direction,expected", [
    (50, 5, 100, "above", 10.0),          # exact
    (100, 5, 100, "above", 0.0),          # at the limit
    (120, 5, 100, "above", 0.0),          # already past
    (50, 0, 100, "above", None),          # flat: never
    (50, -1, 100, "above", None),         # moving away: never
    (50, -2, 10, "below", 20.0),          # a floor, exact
    (5, -2, 10, "below", 0.0),            # below the floor already
    (50, 1, 10, "below", None),
])
def test_days_to_limit(level, slope, limit, direction, expected):
    assert days_to_limit(level, slope, limit, direction) == expected


def test_limit_crossing_earliest_is_before_central():
    ts, y = _series(slope=0.5, level=40, noise=2)
    fit = fit_trend(ts, y)
    now = T0 + timedelta(days=90)
    c = limit_crossing(fit, now, 100.0)
    # level at now ~85 → 15/0.5 = 30 days
    assert c.days_central == pytest.approx(30, abs=3)
    assert c.days_earliest is not None and c.days_earliest <= c.days_central
    assert c.date_central is not None


def test_resample_long_means_per_bucket():
    df = pd.DataFrame({"series": ["a", "a", "b", "a"],
                       "ts": pd.to_datetime(["2026-01-01T01:00Z", "2026-01-01T23:00Z", "2026-01-01T05:00Z",
                                             "2026-01-02T00:00Z"]),
                       "value": [1.0, 3.0, 10.0, 7.0]})
    out = resample_long(df, "1D")
    assert out.to_dict("list")["value"] == [2.0, 7.0, 10.0]
    assert list(out["count"]) == [2, 1, 1]
    assert resample_long(df.iloc[0:0]).empty


def test_plan_capacity_recommends_inside_the_horizon_only():
    ts, y = _series(slope=0.5, level=40, noise=1)
    ts2, y2 = _series(slope=0.01, level=10, noise=1, seed=9)
    points = pd.concat([pd.DataFrame({"series": "cpu", "ts": ts, "value": y}),
                        pd.DataFrame({"series": "disk", "ts": ts2, "value": y2})])
    limits = {"cpu": {"limit": 100, "unit": "%", "action": "add cores"}, "disk": {"limit": 90},
              "missing": {"limit": 1}}
    plans, fits, _ = plan_capacity(points, limits, now=T0 + timedelta(days=90), horizon_days=60)
    by = {p.series: p for p in plans}
    assert by["cpu"].within_horizon and "add cores" in by["cpu"].recommendation
    assert not by["disk"].within_horizon and by["disk"].recommendation is None
    assert by["missing"].points == 0 and by["missing"].slope_per_day is None
    assert set(fits) == {"cpu", "disk"}


def test_too_few_points_gives_no_fit():
    assert fit_trend(pd.date_range(T0, periods=2, freq="D"), [1, 2]) is None
    plans, _, _ = plan_capacity(pd.DataFrame(columns=["series", "ts", "value"]), {}, now=T0, horizon_days=30)
    assert plans == []


# --- columnar input (SeriesPoints) and the DataFrame adapter -----------------------------------------------------

def _two_series_frame(seed=5):
    ts, y = _series(days=60, slope=0.5, level=40, noise=1, seed=seed)
    ts2, y2 = _series(days=45, slope=-0.1, level=70, noise=1, seed=seed + 1)
    return pd.concat([pd.DataFrame({"series": "cpu", "ts": ts, "value": y}),
                      pd.DataFrame({"series": "free", "ts": ts2, "value": y2})], ignore_index=True)


def _groupby_reference(df, freq="1D"):
    """Per (series, bucket) mean and count the slow, obvious way."""
    ts = pd.to_datetime(df["ts"], utc=True)
    g = df.assign(ts=ts.dt.floor(freq)).groupby(["series", "ts"])["value"].agg(["mean", "count"]).reset_index()
    return g.rename(columns={"mean": "value"})


LIMITS = {"cpu": {"limit": 100, "unit": "%", "action": "add cores"},
          "free": {"limit": 50, "direction": "below"}, "missing": {"limit": 1}}
NOW = T0 + timedelta(days=60)


def _same_plans(a, b):
    (pa, fa, ra), (pb, fb, rb) = a, b
    assert [p.as_dict() for p in pa] == [p.as_dict() for p in pb]
    assert fa == fb
    pd.testing.assert_frame_equal(ra, rb)


def test_resample_matches_a_groupby_reference_whatever_the_row_order_and_time_zone():
    df = _two_series_frame()
    ref = _groupby_reference(df, "6h")
    shuffled = df.sample(frac=1, random_state=0)
    for variant in (df, shuffled, shuffled.assign(ts=shuffled["ts"].dt.tz_convert("Asia/Kolkata")),
                    shuffled.assign(ts=shuffled["ts"].dt.tz_localize(None)),  # naive: taken as UTC
                    shuffled.assign(series=shuffled["series"].astype("category")),
                    shuffled.assign(series=shuffled["series"].astype(object), ts=shuffled["ts"].dt.as_unit("s"))):
        out = resample_points(variant, "6h")
        assert list(out["series"]) == list(ref["series"])
        assert (out["ts"].to_numpy() == ref["ts"].to_numpy()).all()
        np.testing.assert_allclose(out["value"], ref["value"], rtol=1e-12)
        assert list(out["count"]) == list(ref["count"])
        pd.testing.assert_frame_equal(out, resample_long(variant, "6h"))


def test_columnar_input_gives_the_same_plans_as_the_frame():
    df = _two_series_frame()
    arrays = {name: (pd.DatetimeIndex(g["ts"]).as_unit("s").asi8, g["value"].to_numpy())
              for name, g in df.groupby("series")}
    columnar = SeriesPoints.from_arrays({"free": arrays["free"], "cpu": arrays["cpu"]})  # any order of series
    assert columnar.unit == "s" and len(columnar) == len(df)
    expected = plan_capacity(df, LIMITS, now=NOW, horizon_days=60)
    _same_plans(expected, plan_capacity(columnar, LIMITS, now=NOW, horizon_days=60))
    # per-series arrays (plain mapping = epoch seconds), which skip codes and concatenation altogether
    _same_plans(expected, plan_capacity(arrays, LIMITS, now=NOW, horizon_days=60))
    _same_plans(expected, plan_capacity(SeriesArrays({k: (t * 10**9, v) for k, (t, v) in arrays.items()}, unit="ns"),
                                        LIMITS, now=NOW, horizon_days=60))
    # epoch milliseconds and a categorical series column too
    ms = SeriesPoints.from_arrays({k: (t * 1000, v) for k, (t, v) in arrays.items()}, unit="ms")
    _same_plans(expected, plan_capacity(ms, LIMITS, now=NOW, horizon_days=60))
    cat = df.assign(series=pd.Categorical(df["series"], categories=["zzz", "free", "cpu"]))  # an unused category
    _same_plans(expected, plan_capacity(cat, LIMITS, now=NOW, horizon_days=60))
    by = {p.series: p for p in expected[0]}
    assert by["cpu"].within_horizon and "add cores" in by["cpu"].recommendation
    assert by["free"].slope_per_day == pytest.approx(-0.1, rel=0.1)
    assert by["missing"].points == 0


def test_lookback_keeps_exactly_the_window_on_integer_timestamps():
    df = _two_series_frame()
    now = T0 + timedelta(days=40, hours=5, microseconds=500)
    ts = pd.DatetimeIndex(df["ts"])
    window = df[np.asarray((ts >= now - timedelta(days=20)) & (ts <= now))]
    expected = plan_capacity(window, LIMITS, now=now, horizon_days=30)
    _same_plans(expected, plan_capacity(df, LIMITS, now=now, horizon_days=30, lookback_days=20))
    arrays = {name: (pd.DatetimeIndex(g["ts"]).as_unit("s").asi8, g["value"].to_numpy())
              for name, g in df.groupby("series")}
    _same_plans(expected, plan_capacity(SeriesPoints.from_arrays(arrays), LIMITS, now=now, horizon_days=30,
                                        lookback_days=20))
    _same_plans(expected, plan_capacity(arrays, LIMITS, now=now, horizon_days=30, lookback_days=20))
    # a window that leaves a series without points: it is planned as having none
    plans, fits, _ = plan_capacity(arrays, LIMITS, now=T0 + timedelta(days=58), horizon_days=30, lookback_days=5)
    assert {p.series: p.points for p in plans}["free"] == 0 and set(fits) == {"cpu"}


def test_series_points_validation_and_missing_names():
    with pytest.raises(ValueError):
        SeriesPoints.from_arrays({"a": ([1, 2, 3], [1.0, 2.0])})
    with pytest.raises(ValueError):
        resample_points(SeriesPoints.from_arrays({"a": ([1, 2], [1.0, 2.0])}), "500ms")  # finer than seconds
    with pytest.raises(ValueError):
        SeriesArrays({"a": ([1, 2, 3], [1.0, 2.0])})
    with pytest.raises(ValueError):
        resample_points({"a": ([1, 2], [1.0, 2.0])}, "500ms")
    assert resample_points({}).empty and resample_points({"a": ([], [])}).empty
    df = pd.DataFrame({"series": ["a", None, "a"], "ts": pd.to_datetime(["2026-01-01T01:00Z"] * 3),
                       "value": [1.0, 100.0, 3.0]})
    out = resample_points(df)
    assert out.to_dict("list")["value"] == [2.0] and list(out["count"]) == [2]
    assert resample_points(SeriesPoints.from_arrays({})).empty
    plans, fits, resampled = plan_capacity(SeriesPoints.from_arrays({}), {"x": {"limit": 1}}, now=T0, horizon_days=7)
    assert [p.series for p in plans] == ["x"] and fits == {} and resampled.empty
