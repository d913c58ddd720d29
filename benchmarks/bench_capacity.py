"""Capacity planning over a year of one-minute metrics for 10 series (~5.26 M points): vectorised
(vvops.forecast.plan_capacity: bincount resample + OLS + days-to-limit) vs a naive row-by-row Python version.

The naive version runs on 2 series (~1.05 M rows) and is extrapolated ×5 to 10 series (it is linear in rows).
Run: `uv run python benchmarks/bench_capacity.py` (prints medians of 5 runs (vectorised) / 3 runs (naive)).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from vvops.forecast import days_to_limit, plan_capacity

N_SERIES, MINUTES = 10, 365 * 24 * 60
NOW = datetime(2027, 1, 1, tzinfo=timezone.utc)


def make_points() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    ts = pd.date_range(datetime(2026, 1, 1, tzinfo=timezone.utc), periods=MINUTES, freq="min")
    t = np.arange(MINUTES) / 1440
    frames = []
    for i in range(N_SERIES):
        y = 30 + 0.05 * (i + 1) * t + 5 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 2, MINUTES)
        frames.append(pd.DataFrame({"series": f"s{i}", "ts": ts, "value": y}))
    return pd.concat(frames, ignore_index=True)


def naive(rows) -> dict[str, float | None]:
    """Row by row: daily sums in dicts, then OLS with plain Python loops."""
    sums: dict = defaultdict(float)
    counts: dict = defaultdict(int)
    for series, ts, value in rows:
        key = (series, ts // 86_400_000_000_000)
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
        out[series] = days_to_limit(level, b, 100.0)
    return out


def main() -> None:
    points = make_points()
    limits = {f"s{i}": {"limit": 100.0} for i in range(N_SERIES)}
    print(f"{len(points):,} points, {N_SERIES} series")
    fast = []
    for _ in range(5):
        t = time.perf_counter()
        plan_capacity(points, limits, now=NOW, horizon_days=90)
        fast.append(time.perf_counter() - t)
    sub = points[points["series"].isin(["s0", "s1"])]
    rows = list(zip(sub["series"].tolist(), pd.DatetimeIndex(sub["ts"]).as_unit("ns").asi8.tolist(), sub["value"].tolist()))
    slow = []
    for _ in range(3):
        t = time.perf_counter()
        naive(rows)
        slow.append(time.perf_counter() - t)
    f, s = statistics.median(fast), statistics.median(slow) * N_SERIES / 2
    print(f"vectorised plan_capacity: median {f:.3f} s (target < 2 s)")
    print(f"naive row-by-row: median {statistics.median(slow):.3f} s on 2 series → {s:.2f} s extrapolated to 10")
    print(f"speed-up: {s / f:.1f}x")


if __name__ == "__main__":
    main()
