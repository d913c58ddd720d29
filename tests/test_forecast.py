"""vvops.forecast: trend recovery, prediction bands, days to a limit, resampling."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from vvops.forecast import days_to_limit, fit_trend, forecast_frame, limit_crossing, plan_capacity, resample_long

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
