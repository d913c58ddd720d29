"""Capacity planning maths: resample, trend, forecast with prediction bands, days until a limit.

Pure numpy/pandas (no Prefect, no store), so it is unit-tested directly and benchmarked on millions of points.

Model choice — ordinary least squares of the value on time, with prediction intervals
------------------------------------------------------------------------------------
We fit ``y = a + b·t`` to the *resampled* series (daily means by default) and forecast with the classical
prediction interval ``ŷ(t) ± q · s · sqrt(1 + 1/n + (t - t̄)² / Sxx)`` (``q`` the Student-t quantile).
Holt's linear trend (double exponential smoothing) was the alternative; we chose OLS because:

* the question is *when does the trend reach a limit weeks or months out* — a global trend fitted to the whole
  look-back window is what answers it; Holt's chases the most recent level and slope, so one noisy week moves
  the date by months;
* OLS has closed-form prediction intervals that widen with the forecast distance and include the uncertainty of
  the slope itself; Holt's intervals need a state-space model (ETS) and fitted smoothing parameters
  (an optimiser per series) to be honest;
* it is vectorised (a few sums per series) and tolerates gaps and irregular timestamps, so a year of one-minute
  data for ten series plans in well under a second (see ``benchmarks/bench_capacity.py``); Holt's is a
  sequential recursion;
* daily means remove the intra-day cycle; the weekly cycle stays in the residuals and so widens the bands
  rather than biasing the slope (over whole weeks it averages out).

The price: a series whose growth accelerates (exponential TVL growth) is under-forecast far out. The report
shows the fit's R² and the plot, and the *earliest* crossing (the band's edge reaching the limit) is what the
recommendation uses, which is the conservative side.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from statistics import NormalDist
from typing import Iterable, Literal, Mapping

import numpy as np
import pandas as pd

Direction = Literal["above", "below"]
NS_PER_DAY = 86_400 * 10**9

__all__ = [
    "TrendFit",
    "LimitCrossing",
    "CapacityPlan",
    "t_quantile",
    "fit_trend",
    "forecast_frame",
    "days_to_limit",
    "limit_crossing",
    "resample_long",
    "resample_points",
    "SeriesPoints",
    "SeriesArrays",
    "plan_capacity",
]


def t_quantile(confidence: float, dof: int) -> float:
    """Two-sided Student-t quantile (Cornish-Fisher expansion of the normal one; < 0.5 % off for dof >= 3)."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    if dof <= 0:
        return math.inf
    v = float(dof)
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3))


def _to_utc(ts: datetime | pd.Timestamp) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


@dataclass(frozen=True)
class TrendFit:
    """A straight line through a series, with what the prediction interval needs.

    Time is measured in days since `origin` (UTC). `slope_per_day` is in the series' unit per day.
    """

    origin: pd.Timestamp
    intercept: float
    slope_per_day: float
    n: int
    residual_std: float
    x_mean: float
    sxx: float
    r2: float
    confidence: float = 0.95

    def days_since_origin(self, when: datetime | pd.Timestamp | Iterable) -> np.ndarray | float:
        if isinstance(when, (datetime, pd.Timestamp)):
            return (_to_utc(when) - self.origin).total_seconds() / 86_400
        idx = pd.DatetimeIndex(when)
        idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
        return (idx - self.origin).total_seconds().to_numpy() / 86_400

    def value_at(self, x_days: np.ndarray | float) -> np.ndarray | float:
        return self.intercept + self.slope_per_day * np.asarray(x_days, dtype=float)

    def half_width(self, x_days: np.ndarray | float) -> np.ndarray | float:
        """Half the prediction interval's width at `x_days` (a new observation, not the mean)."""
        x = np.asarray(x_days, dtype=float)
        q = t_quantile(self.confidence, self.n - 2)
        sxx = self.sxx if self.sxx > 0 else math.inf
        return q * self.residual_std * np.sqrt(1 + 1 / self.n + (x - self.x_mean) ** 2 / sxx)


def fit_trend(ts: Iterable, values: Iterable[float], *, confidence: float = 0.95) -> TrendFit | None:
    """OLS fit of values on time (days); None with fewer than 3 finite points or a single instant."""
    idx = pd.DatetimeIndex(ts)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    y = np.asarray(values, dtype=float)
    ok = np.isfinite(y)
    idx, y = idx[ok], y[ok]
    if len(y) < 3:
        return None
    origin = idx.min()
    x = (idx - origin).total_seconds().to_numpy() / 86_400
    return _fit_xy(origin, x, y, confidence)


def _fit_xy(origin: pd.Timestamp, x: np.ndarray, y: np.ndarray, confidence: float) -> TrendFit | None:
    n = len(y)
    if n < 3:
        return None
    xm, ym = x.mean(), y.mean()
    dx = x - xm
    sxx = float(dx @ dx)
    if sxx == 0:
        return None
    slope = float(dx @ (y - ym)) / sxx
    intercept = float(ym - slope * xm)
    resid = y - (intercept + slope * x)
    sse = float(resid @ resid)
    sst = float(((y - ym) ** 2).sum())
    return TrendFit(origin=origin, intercept=intercept, slope_per_day=slope, n=n,
                    residual_std=math.sqrt(sse / (n - 2)) if n > 2 else 0.0, x_mean=float(xm), sxx=sxx,
                    r2=1 - sse / sst if sst > 0 else 1.0, confidence=confidence)


def forecast_frame(fit: TrendFit, start: datetime, horizon_days: int, *, step_days: float = 1.0) -> pd.DataFrame:
    """Forecast from `start` for `horizon_days`: columns ts, yhat, lower, upper."""
    start_ts = _to_utc(start)
    steps = np.arange(0, horizon_days + step_days / 2, step_days)
    ts = start_ts + pd.to_timedelta(steps, unit="D")
    x = fit.days_since_origin(ts)
    yhat = fit.value_at(x)
    hw = fit.half_width(x)
    return pd.DataFrame({"ts": ts, "yhat": yhat, "lower": yhat - hw, "upper": yhat + hw})


def days_to_limit(level: float, slope_per_day: float, limit: float, direction: Direction = "above") -> float | None:
    """Days until a straight line from `level` reaches `limit`.

    direction "above": the limit is a ceiling (usage grows into it); "below": a floor (e.g. free space).
    0.0 when the level is already at or past the limit; None when the trend never gets there
    (flat or moving away).
    """
    if direction == "above":
        if level >= limit:
            return 0.0
        return (limit - level) / slope_per_day if slope_per_day > 0 else None
    if level <= limit:
        return 0.0
    return (level - limit) / -slope_per_day if slope_per_day < 0 else None


@dataclass(frozen=True)
class LimitCrossing:
    """When the trend (central) and the pessimistic band edge (earliest) reach the limit, in days from `now`."""

    level_now: float
    days_central: float | None
    days_earliest: float | None
    date_central: str | None
    date_earliest: str | None


def limit_crossing(fit: TrendFit, now: datetime, limit: float, direction: Direction = "above", *,
                   search_days: int = 3650) -> LimitCrossing:
    """Central crossing from the fitted line; earliest from the band edge (upper for a ceiling, lower for a floor),
    searched day by day up to `search_days` (None when not within it)."""
    now_ts = _to_utc(now)
    x0 = float(fit.days_since_origin(now_ts))
    level = float(fit.value_at(x0))
    central = days_to_limit(level, fit.slope_per_day, limit, direction)
    grid = np.arange(0, search_days + 1, dtype=float)
    yhat = fit.value_at(x0 + grid)
    hw = fit.half_width(x0 + grid)
    edge = yhat + hw if direction == "above" else yhat - hw
    hit = np.nonzero(edge >= limit if direction == "above" else edge <= limit)[0]
    earliest = float(grid[hit[0]]) if len(hit) else None
    if central is not None and earliest is not None:
        earliest = min(earliest, central)

    def date(days: float | None) -> str | None:
        if days is None or days > 36_500:
            return None
        return (now_ts + pd.Timedelta(days=days)).strftime("%Y-%m-%d")

    return LimitCrossing(level_now=level, days_central=central, days_earliest=earliest,
                         date_central=date(central), date_earliest=date(earliest))


_UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


@dataclass(frozen=True)
class SeriesPoints:
    """Points in columnar form: the fast input of `plan_capacity` / `resample_points`.

    `codes[i]` indexes `names` (the series of point i, like a categorical's codes); `ts[i]` is an integer
    instant since the Unix epoch (UTC) in `unit` ("s", "ms", "us" or "ns"); `values[i]` is a float.
    No string hashing and no time-zone arithmetic happens on the points themselves.
    Build one with `from_arrays` (per-series numpy arrays) or `from_frame` (a long DataFrame).
    """

    names: tuple[str, ...]
    codes: np.ndarray
    ts: np.ndarray
    values: np.ndarray
    unit: str = "s"

    def __post_init__(self) -> None:
        if self.unit not in _UNIT_NS:
            raise ValueError(f"unit must be one of {sorted(_UNIT_NS)}")
        if not len(self.codes) == len(self.ts) == len(self.values):
            raise ValueError("codes, ts and values must have the same length")

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def empty(self) -> bool:
        return len(self.ts) == 0

    @classmethod
    def from_arrays(cls, series: Mapping[str, tuple[Iterable, Iterable[float]]], *, unit: str = "s") -> SeriesPoints:
        """`series`: name → (integer epoch timestamps in `unit`, values), e.g. int64 epoch seconds + float64."""
        names = tuple(series)
        ts_parts = [np.asarray(t, dtype=np.int64) for t, _ in series.values()]
        val_parts = [np.asarray(v, dtype=float) for _, v in series.values()]
        for name, t, v in zip(names, ts_parts, val_parts):
            if len(t) != len(v):
                raise ValueError(f"series {name!r}: {len(t)} timestamps but {len(v)} values")
        lengths = np.fromiter((len(t) for t in ts_parts), dtype=np.int64, count=len(names))
        code_dtype = np.int32 if len(names) < 2**31 else np.int64
        return cls(names=names, codes=np.repeat(np.arange(len(names), dtype=code_dtype), lengths),
                   ts=np.concatenate(ts_parts) if ts_parts else np.empty(0, np.int64),
                   values=np.concatenate(val_parts) if val_parts else np.empty(0, float), unit=unit)

    @classmethod
    def from_frame(cls, points: pd.DataFrame, *, series_col: str = "series", ts_col: str = "ts",
                   value_col: str = "value") -> SeriesPoints:
        """Adapter from a long frame (series, ts, value). Rows without a series name are dropped.

        Timestamps: a datetime64 column is used as stored (aware → its UTC instant; naive → taken as UTC), so
        there is no per-row time-zone conversion; anything else goes through `pd.to_datetime(utc=True)`.
        Series: a categorical column's codes are used as they are; strings are factorised per *run* of equal
        adjacent names (metrics arrive grouped by series), so only a handful of strings are hashed.
        """
        codes, names = _series_codes(points[series_col])
        col = points[ts_col]
        arr = col.array if pd.api.types.is_datetime64_any_dtype(col.dtype) else \
            pd.DatetimeIndex(pd.to_datetime(col, utc=True)).array
        unit, ts = arr.unit, np.asarray(arr.asi8)  # aware: the UTC instant; naive: wall time taken as UTC
        values = points[value_col].to_numpy(dtype=float)
        keep = codes >= 0
        if not keep.all():
            codes, ts, values = codes[keep], ts[keep], values[keep]
        return cls(names=names, codes=codes, ts=ts, values=values, unit=unit)


@dataclass(frozen=True)
class SeriesArrays:
    """Points as per-series numpy arrays: name → (integer epoch timestamps in `unit`, UTC; float values).

    The fastest input of `plan_capacity`: each series is bucketed and summed on its own (`np.bincount` over its
    day index), with no concatenation, no codes and no key array. A plain mapping passed to `plan_capacity` is
    read as this with `unit="s"` (int64 epoch seconds + float64 values).
    """

    series: Mapping[str, tuple[np.ndarray, np.ndarray]]
    unit: str = "s"

    def __post_init__(self) -> None:
        if self.unit not in _UNIT_NS:
            raise ValueError(f"unit must be one of {sorted(_UNIT_NS)}")
        norm = {}
        for name, (t, v) in self.series.items():
            t, v = np.asarray(t, dtype=np.int64), np.asarray(v, dtype=float)  # no copy when already so
            if t.shape != v.shape or t.ndim != 1:
                raise ValueError(f"series {name!r}: {t.shape} timestamps but {v.shape} values")
            norm[name] = (t, v)
        object.__setattr__(self, "series", norm)

    def __len__(self) -> int:
        return sum(len(t) for t, _ in self.series.values())


def _series_codes(col: pd.Series) -> tuple[np.ndarray, tuple[str, ...]]:
    """(codes, names) of a series-name column; -1 for missing names. Names keep the order of first appearance
    (categoricals: the categories' order)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return np.asarray(col.cat.codes, dtype=np.int32), tuple(col.cat.categories)
    n = len(col)
    arr = col.to_numpy(dtype=object)
    if n:
        # boundaries of runs of the same name: identical str objects compare by pointer, so this is ~10 ns/row
        starts = np.flatnonzero(np.concatenate(([True], arr[1:] != arr[:-1])))
        if len(starts) <= n // 8:
            run_codes, names = pd.factorize(arr[starts], sort=False)
            codes = np.repeat(run_codes.astype(np.int32), np.diff(np.append(starts, n)))
            return codes, tuple(names)
    codes, names = pd.factorize(arr, sort=False)
    return codes.astype(np.int32), tuple(names)


Points = pd.DataFrame | SeriesPoints | SeriesArrays | Mapping[str, tuple[np.ndarray, np.ndarray]]


def _as_input(points: Points) -> SeriesPoints | SeriesArrays:
    if isinstance(points, (SeriesPoints, SeriesArrays)):
        return points
    if isinstance(points, pd.DataFrame):
        return SeriesPoints.from_frame(points)
    return SeriesArrays(points)


def _step(freq: str, unit: str) -> tuple[int, int]:
    """(bucket width in `unit`, in ns)."""
    step_ns = int(pd.Timedelta(freq).value)
    if step_ns <= 0 or step_ns % _UNIT_NS[unit]:
        raise ValueError(f"freq {freq!r} is not a positive whole number of {unit!r}")
    return step_ns // _UNIT_NS[unit], step_ns


def _epoch_in_unit(ts: pd.Timestamp, unit: str, *, ceil: bool) -> int:
    """`ts` as an integer count of `unit` since the epoch, rounded up (ceil) or down."""
    q, r = divmod(_to_utc(ts).as_unit("ns").value, _UNIT_NS[unit])
    return q + 1 if ceil and r else q


@dataclass(frozen=True)
class _Resampled:
    """Per (series, bucket) means as arrays, rows ordered by series name then time; `bounds[i]:bounds[i+1]` are
    the rows of `names[i]`."""

    names: tuple[str, ...]
    bounds: np.ndarray
    bucket_ns: np.ndarray  # bucket start, ns since the epoch (UTC)
    value: np.ndarray
    count: np.ndarray

    def frame(self) -> pd.DataFrame:
        reps = np.diff(self.bounds)
        series = np.repeat(np.asarray(self.names, dtype=object), reps) if len(self.names) else \
            np.empty(0, dtype=object)
        return pd.DataFrame({"series": series,
                             "ts": pd.DatetimeIndex(self.bucket_ns.astype("datetime64[ns]")).tz_localize("UTC"),
                             "value": self.value, "count": self.count})


def _resample(p: SeriesPoints, freq: str) -> _Resampled:
    """Mean per (series, bucket): integer bucketing of the epoch timestamps and one `np.bincount` pass."""
    step, step_ns = _step(freq, p.unit)
    if p.empty:
        return _Resampled((), np.zeros(1, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64))
    key = p.ts // step  # bucket index; the in-place steps below keep to two arrays of n int64 (fewer page faults)
    b0 = int(key.min())
    nb = int(key.max()) - b0 + 1
    key -= b0
    # rank of each series by name, so the output is ordered by name (as a sorted factorisation would be)
    order = sorted(range(len(p.names)), key=lambda i: p.names[i])
    names = tuple(p.names[i] for i in order)
    if len(names) > 1:
        if order == list(range(len(order))):
            offset = p.codes.astype(np.int64)
        else:
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order))
            offset = rank[p.codes]
        offset *= nb
        key += offset
        del offset
    size = len(names) * nb
    counts = np.bincount(key, minlength=size)
    sums = np.bincount(key, weights=p.values, minlength=size)
    nz = np.flatnonzero(counts)
    series_idx = nz // nb
    bounds = np.searchsorted(series_idx, np.arange(len(names) + 1))
    present = np.diff(bounds) > 0
    if not present.all():  # a name (category) without points
        keep = np.flatnonzero(present)
        names = tuple(names[i] for i in keep)
        bounds = np.append(bounds[keep], bounds[-1])
    return _Resampled(names=names, bounds=bounds, bucket_ns=(nz % nb + b0) * step_ns,
                      value=sums[nz] / counts[nz], count=counts[nz])


def _resample_arrays(a: SeriesArrays, freq: str, window: tuple[int, int] | None = None) -> _Resampled:
    """Like `_resample`, one series at a time; `window`: (lo, hi) inclusive bounds on the timestamps."""
    step, step_ns = _step(freq, a.unit)
    names, bounds, buckets, values, counts = [], [0], [], [], []
    for name in sorted(a.series):
        t, v = a.series[name]
        if window is not None and len(t) and (t.min() < window[0] or t.max() > window[1]):
            keep = (t >= window[0]) & (t <= window[1])
            t, v = t[keep], v[keep]
        if not len(t):
            continue
        bucket = t // step
        b0 = int(bucket.min())
        bucket -= b0
        cnt = np.bincount(bucket)
        total = np.bincount(bucket, weights=v)
        nz = np.flatnonzero(cnt)
        names.append(name)
        bounds.append(bounds[-1] + len(nz))
        buckets.append((nz + b0) * step_ns)
        values.append(total[nz] / cnt[nz])
        counts.append(cnt[nz])
    if not names:
        return _Resampled((), np.zeros(1, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64))
    return _Resampled(names=tuple(names), bounds=np.asarray(bounds), bucket_ns=np.concatenate(buckets),
                      value=np.concatenate(values), count=np.concatenate(counts))


def _resample_input(p: SeriesPoints | SeriesArrays, freq: str,
                    window: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> _Resampled:
    bounds = None if window is None else (_epoch_in_unit(window[0], p.unit, ceil=True),
                                          _epoch_in_unit(window[1], p.unit, ceil=False))
    if isinstance(p, SeriesArrays):
        return _resample_arrays(p, freq, bounds)
    if bounds is not None and not p.empty and (p.ts.min() < bounds[0] or p.ts.max() > bounds[1]):
        keep = (p.ts >= bounds[0]) & (p.ts <= bounds[1])
        p = SeriesPoints(names=p.names, codes=p.codes[keep], ts=p.ts[keep], values=p.values[keep], unit=p.unit)
    return _resample(p, freq)


def resample_points(points: Points, freq: str = "1D") -> pd.DataFrame:
    """Mean per (series, time bucket) of columnar (`SeriesArrays`, `SeriesPoints`, a mapping) or long-frame
    points; buckets aligned on the Unix epoch (UTC). Returns columns series, ts, value, count (ordered by series
    name, then time)."""
    return _resample_input(_as_input(points), freq).frame()


def resample_long(points: pd.DataFrame, freq: str = "1D", *, series_col: str = "series", ts_col: str = "ts",
                  value_col: str = "value") -> pd.DataFrame:
    """Mean per (series, time bucket) of a long frame; buckets aligned on the Unix epoch in UTC.

    A thin adapter over `SeriesPoints.from_frame` + integer bucketing with `np.bincount` (one pass over the
    data). Returns columns series, ts, value, count.
    """
    if points.empty:
        return pd.DataFrame({"series": pd.Series(dtype=object), "ts": pd.Series(dtype="datetime64[ns, UTC]"),
                             "value": pd.Series(dtype=float), "count": pd.Series(dtype="int64")})
    return _resample(SeriesPoints.from_frame(points, series_col=series_col, ts_col=ts_col, value_col=value_col),
                     freq).frame()


@dataclass(frozen=True)
class CapacityPlan:
    """The capacity-planning verdict for one series."""

    series: str
    points: int
    last_value: float | None
    level_now: float | None
    slope_per_day: float | None
    growth_pct_30d: float | None
    r2: float | None
    limit: float | None
    direction: str
    unit: str
    days_central: float | None
    days_earliest: float | None
    date_central: str | None
    date_earliest: str | None
    within_horizon: bool
    recommendation: str | None

    def as_dict(self) -> dict:
        return asdict(self)


def plan_capacity(points: Points, limits: dict[str, dict], *, now: datetime,
                  horizon_days: int, freq: str = "1D", confidence: float = 0.95, lookback_days: int | None = None
                  ) -> tuple[list[CapacityPlan], dict[str, TrendFit], pd.DataFrame]:
    """Resample, fit a trend per series, and find when each configured limit is reached.

    `points`, fastest first: `SeriesArrays` or a plain mapping series → (int64 epoch seconds, float64 values);
    `SeriesPoints` (series codes + integer epoch timestamps + values); or a long frame (series, ts, value),
    adapted with `SeriesPoints.from_frame` (kept for callers that hold a DataFrame). `limits`: series →
    {limit, direction, unit, action} (series without an entry get a trend and no limit).
    Returns (plans, fits by series, resampled frame). A limit counts as inside the horizon when its *earliest*
    crossing (band edge) is within `horizon_days`.
    """
    now_ts = _to_utc(now)
    window = None if lookback_days is None else (now_ts - pd.Timedelta(days=lookback_days), now_ts)
    r = _resample_input(_as_input(points), freq, window)
    plans: list[CapacityPlan] = []
    fits: dict[str, TrendFit] = {}
    rows = {name: (int(r.bounds[i]), int(r.bounds[i + 1])) for i, name in enumerate(r.names)}
    for name in sorted(set(rows) | set(limits)):
        spec = limits.get(name, {})
        limit = spec.get("limit")
        direction = spec.get("direction", "above")
        unit = spec.get("unit", "")
        a, b = rows.get(name, (0, 0))
        n_rows = b - a
        fit = None
        if n_rows >= 3:
            origin_ns = int(r.bucket_ns[a])
            x = (r.bucket_ns[a:b] - origin_ns) / NS_PER_DAY
            fit = _fit_xy(pd.Timestamp(origin_ns, unit="ns", tz="UTC"), x, r.value[a:b], confidence)
        if fit is None:
            plans.append(CapacityPlan(series=name, points=n_rows,
                                      last_value=float(r.value[b - 1]) if n_rows else None,
                                      level_now=None, slope_per_day=None, growth_pct_30d=None, r2=None,
                                      limit=limit, direction=direction, unit=unit, days_central=None,
                                      days_earliest=None, date_central=None, date_earliest=None,
                                      within_horizon=False, recommendation=None))
            continue
        fits[name] = fit
        level = float(fit.value_at(fit.days_since_origin(now_ts)))
        growth = (fit.slope_per_day * 30 / abs(level) * 100) if level else None
        crossing = limit_crossing(fit, now_ts, float(limit), direction, search_days=max(3 * horizon_days, 365)) \
            if limit is not None else None
        within = bool(crossing and crossing.days_earliest is not None and crossing.days_earliest <= horizon_days)
        rec = None
        if within and crossing is not None:
            when = ("already past the limit" if crossing.days_earliest == 0 else
                    f"may reach {limit:g}{unit} by {crossing.date_earliest} (in {crossing.days_earliest:.0f} days"
                    + (f"; trend: {crossing.date_central}" if crossing.date_central else "") + ")")
            rec = f"{name} {when}: {spec.get('action') or 'plan capacity'}"
        plans.append(CapacityPlan(
            series=name, points=int(r.count[a:b].sum()), last_value=float(r.value[b - 1]), level_now=level,
            slope_per_day=fit.slope_per_day, growth_pct_30d=growth, r2=fit.r2, limit=limit, direction=direction,
            unit=unit, days_central=crossing.days_central if crossing else None,
            days_earliest=crossing.days_earliest if crossing else None,
            date_central=crossing.date_central if crossing else None,
            date_earliest=crossing.date_earliest if crossing else None, within_horizon=within, recommendation=rec))
    return plans, fits, r.frame()


def utc(dt: datetime) -> datetime:
    """`dt` as an aware UTC datetime (naive values are taken as UTC)."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)
