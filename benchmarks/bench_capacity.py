"""Capacity planning over a year of one-minute metrics for 10 series (~5.26 M points), target < 2 s.

Measured in the same run:

* ``plan_capacity`` on per-series arrays (a mapping series → (int64 epoch seconds, float64 values), i.e.
  ``SeriesArrays``) — the fast path: per-series ``np.bincount`` over the day index + OLS + days-to-limit;
* ``plan_capacity`` on ``SeriesPoints.from_arrays`` (one concatenated column each of series codes, epoch
  seconds and values; construction included) — one ``np.bincount`` over (series code, day index);
* ``plan_capacity`` on the long DataFrame (series names as strings, tz-aware ``ts``) as ``flows/weekly_review``
  passes it — the same core behind the thin ``SeriesPoints.from_frame`` adapter;
* a naive row-by-row Python version (dicts of daily sums, OLS in plain loops). It runs on a subset of the
  series (2 of 10 by default, ~1.05 M rows) and is **extrapolated** linearly to 10 series (it is linear in rows);
  the output says so.

All vectorised paths must give identical plans, and the naive slopes must match the vectorised ones.
Run: ``uv run python benchmarks/bench_capacity.py [--reps 7] [--naive-reps 3] [--naive-series 2]``
(medians over the repetitions, the two vectorised paths interleaved; the machine's load average is printed,
since other jobs may share the cores).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections import defaultdict
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from vvops.forecast import SeriesPoints, days_to_limit, plan_capacity

N_SERIES, MINUTES = 10, 365 * 24 * 60
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
NOW = datetime(2027, 1, 1, tzinfo=timezone.utc)


def make_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-series (int64 epoch seconds, float64 values): a trend, a weekly cycle and noise."""
    rng = np.random.default_rng(0)
    epoch_s = int(START.timestamp()) + 60 * np.arange(MINUTES, dtype=np.int64)
    t = np.arange(MINUTES) / 1440
    return {f"s{i}": (epoch_s, 30 + 0.05 * (i + 1) * t + 5 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 2, MINUTES))
            for i in range(N_SERIES)}


def make_frame(arrays: dict[str, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """The same points as a long frame (series, ts, value), as the weekly review builds it."""
    frames = [pd.DataFrame({"series": name, "ts": pd.to_datetime(ts, unit="s", utc=True), "value": v})
              for name, (ts, v) in arrays.items()]
    return pd.concat(frames, ignore_index=True)


def naive(rows) -> dict[str, tuple[float, float | None]]:
    """Row by row: daily sums in dicts, then OLS with plain Python loops. series → (slope per day, days to 100)."""
    sums: dict = defaultdict(float)
    counts: dict = defaultdict(int)
    for series, ts, value in rows:
        key = (series, ts // 86_400)
        sums[key] += value
        counts[key] += 1
    by_series: dict = defaultdict(list)
    for (series, day), s in sums.items():
        by_series[series].append((day, s / counts[(series, day)]))
    out = {}
    for series, pts in by_series.items():
        n = len(pts)
        xm = sum(d for d, _ in pts) / n
        ym = sum(v for _, v in pts) / n
        sxx = sum((d - xm) ** 2 for d, _ in pts)
        b = sum((d - xm) * (v - ym) for d, v in pts) / sxx
        level = ym + b * (max(d for d, _ in pts) - xm)
        out[series] = (b, days_to_limit(level, b, 100.0))
    return out


def timed(fn, reps: int) -> tuple[list[float], object]:
    runs, result = [], None
    for _ in range(reps):
        t = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - t)
    return runs, result


def fmt(runs: list[float]) -> str:
    return f"median {statistics.median(runs):.3f} s (min {min(runs):.3f}, runs: {', '.join(f'{r:.2f}' for r in runs)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7, help="repetitions of each vectorised path")
    ap.add_argument("--naive-reps", type=int, default=3)
    ap.add_argument("--naive-series", type=int, default=2, help="series the naive version runs on (extrapolated)")
    args = ap.parse_args()

    arrays = make_arrays()
    frame = make_frame(arrays)
    limits = {name: {"limit": 100.0} for name in arrays}
    n_points = sum(len(ts) for ts, _ in arrays.values())
    print(f"{n_points:,} points, {N_SERIES} series; {os.cpu_count()} CPUs; "
          f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")

    paths = {
        "per-series arrays (SeriesArrays)": lambda: plan_capacity(arrays, limits, now=NOW, horizon_days=90),
        "SeriesPoints.from_arrays (codes)": lambda: plan_capacity(SeriesPoints.from_arrays(arrays), limits, now=NOW,
                                                                  horizon_days=90),
        "DataFrame (str series, tz ts)   ": lambda: plan_capacity(frame, limits, now=NOW, horizon_days=90),
    }
    runs: dict[str, list[float]] = {k: [] for k in paths}
    results = {}
    for _ in range(args.reps):  # interleaved, so that load from other jobs hits every path alike
        for label, fn in paths.items():
            (run,), results[label] = timed(fn, 1)
            runs[label].append(run)
    plans = [[p.as_dict() for p in r[0]] for r in results.values()]
    if any(p != plans[0] for p in plans):
        raise SystemExit("the input forms gave different plans")
    col_fits = next(iter(results.values()))[1]

    subset = list(arrays)[: args.naive_series]
    rows = [(name, int(t), float(v)) for name in subset for t, v in zip(*arrays[name])]
    naive_runs, naive_out = timed(lambda: naive(rows), args.naive_reps)
    for name in subset:
        if not math.isclose(naive_out[name][0], col_fits[name].slope_per_day, rel_tol=1e-9):
            raise SystemExit(f"{name}: naive slope {naive_out[name][0]} != vectorised {col_fits[name].slope_per_day}")

    scale = N_SERIES / len(subset)
    s = statistics.median(naive_runs) * scale
    for label, r in runs.items():
        m = statistics.median(r)
        print(f"plan_capacity, {label}: {fmt(r)}  target < 2 s: {'met' if m < 2 else 'NOT met'}; "
              f"vs naive {s / m:.1f}x")
    print(f"naive row-by-row: {fmt(naive_runs)} on {len(subset)} of {N_SERIES} series ({len(rows):,} rows) "
          f"→ {s:.2f} s EXTRAPOLATED ×{scale:g} to {N_SERIES} series (not measured on all)")
    print("checks: all input forms give identical plans; naive slopes match the OLS fit (rel 1e-9); "
          f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
