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
from typing import Iterable, Literal

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


def resample_long(points: pd.DataFrame, freq: str = "1D", *, series_col: str = "series", ts_col: str = "ts",
                  value_col: str = "value") -> pd.DataFrame:
    """Mean per (series, time bucket) of a long frame; buckets aligned on the Unix epoch in UTC.

    Vectorised with integer bucketing and `np.bincount` (one pass over the data), which is several times
    faster than `groupby(...).resample(...)` on millions of rows. Returns columns series, ts, value, count.
    """
    if points.empty:
        return pd.DataFrame({"series": pd.Series(dtype=object), "ts": pd.Series(dtype="datetime64[ns, UTC]"),
                             "value": pd.Series(dtype=float), "count": pd.Series(dtype="int64")})
    step = int(pd.Timedelta(freq).value)
    ts = pd.DatetimeIndex(points[ts_col])
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    ns = ts.as_unit("ns").asi8
    bucket = ns // step
    b0 = int(bucket.min())
    nb = int(bucket.max()) - b0 + 1
    codes, names = pd.factorize(points[series_col], sort=True)
    key = codes.astype(np.int64) * nb + (bucket - b0)
    values = points[value_col].to_numpy(dtype=float)
    size = len(names) * nb
    counts = np.bincount(key, minlength=size)
    sums = np.bincount(key, weights=values, minlength=size)
    nz = np.nonzero(counts)[0]
    out_ts = pd.to_datetime((nz % nb + b0) * step, utc=True)
    return pd.DataFrame({"series": np.asarray(names, dtype=object)[nz // nb], "ts": out_ts,
                         "value": sums[nz] / counts[nz], "count": counts[nz]})


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


def plan_capacity(points: pd.DataFrame, limits: dict[str, dict], *, now: datetime, horizon_days: int,
                  freq: str = "1D", confidence: float = 0.95, lookback_days: int | None = None
                  ) -> tuple[list[CapacityPlan], dict[str, TrendFit], pd.DataFrame]:
    """Resample, fit a trend per series, and find when each configured limit is reached.

    `points`: long frame (series, ts, value). `limits`: series → {limit, direction, unit, action}
    (series without an entry get a trend and no limit). Returns (plans, fits by series, resampled frame).
    A limit counts as inside the horizon when its *earliest* crossing (band edge) is within `horizon_days`.
    """
    now_ts = _to_utc(now)
    if lookback_days is not None and not points.empty:
        ts = pd.DatetimeIndex(points["ts"])
        ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
        keep = (ts >= now_ts - pd.Timedelta(days=lookback_days)) & (ts <= now_ts)
        points = points[np.asarray(keep)]
    resampled = resample_long(points, freq)
    plans: list[CapacityPlan] = []
    fits: dict[str, TrendFit] = {}
    names = sorted(set(resampled["series"]) | set(limits)) if not resampled.empty else sorted(limits)
    groups = {name: g for name, g in resampled.groupby("series", sort=False)} if not resampled.empty else {}
    for name in names:
        spec = limits.get(name, {})
        limit = spec.get("limit")
        direction = spec.get("direction", "above")
        unit = spec.get("unit", "")
        g = groups.get(name)
        fit = None
        if g is not None and len(g) >= 3:
            origin = g["ts"].iloc[0]
            x = (pd.DatetimeIndex(g["ts"]).asi8 - origin.value) / NS_PER_DAY
            fit = _fit_xy(origin, x, g["value"].to_numpy(dtype=float), confidence)
        if fit is None:
            plans.append(CapacityPlan(series=name, points=0 if g is None else len(g),
                                      last_value=None if g is None or g.empty else float(g["value"].iloc[-1]),
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
            series=name, points=int(g["count"].sum()), last_value=float(g["value"].iloc[-1]), level_now=level,
            slope_per_day=fit.slope_per_day, growth_pct_30d=growth, r2=fit.r2, limit=limit, direction=direction,
            unit=unit, days_central=crossing.days_central if crossing else None,
            days_earliest=crossing.days_earliest if crossing else None,
            date_central=crossing.date_central if crossing else None,
            date_earliest=crossing.date_earliest if crossing else None, within_horizon=within, recommendation=rec))
    return plans, fits, resampled


def utc(dt: datetime) -> datetime:
    """`dt` as an aware UTC datetime (naive values are taken as UTC)."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)
