"""Report plots as PNG files (matplotlib's non-interactive Agg backend: no display needed, thread-safe use of
explicit Figure objects rather than pyplot's global state)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vvops.forecast import TrendFit, forecast_frame


def slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower() or "plot"


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=90)
    return path


def forecast_plot(history: pd.DataFrame, fit: TrendFit | None, path: Path, *, title: str, now, horizon_days: int,
                  limit: float | None = None, unit: str = "") -> Path:
    """Resampled history (ts, value), the fitted trend, the forecast with its prediction band, and the limit."""
    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    if not history.empty:
        ax.plot(history["ts"], history["value"], lw=1, color="#1f77b4", label="observed")
    if fit is not None:
        fc = forecast_frame(fit, now, horizon_days)
        if not history.empty:
            x = fit.days_since_origin(pd.DatetimeIndex(history["ts"]))
            ax.plot(history["ts"], fit.value_at(x), lw=1, ls=":", color="#555", label="trend")
        ax.plot(fc["ts"], fc["yhat"], color="#ff7f0e", lw=1.2, label="forecast")
        ax.fill_between(fc["ts"], fc["lower"], fc["upper"], color="#ff7f0e", alpha=0.2,
                        label=f"{fit.confidence:.0%} band")
    if limit is not None:
        ax.axhline(limit, color="#d62728", ls="--", lw=1, label=f"limit {limit:g}{unit}")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    return _save(fig, path)


def line_plot(frame: pd.DataFrame, path: Path, *, x: str, y: str, group: str | None = None, title: str,
              hline: float | None = None, ylabel: str = "") -> Path:
    """One line per `group` value (or one line)."""
    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    if not frame.empty:
        groups = frame.groupby(group) if group else [(y, frame)]
        for name, g in groups:
            ax.plot(g[x], g[y], lw=1.2, marker=".", label=str(name))
        ax.legend(fontsize=7)
    if hline is not None:
        ax.axhline(hline, color="#d62728", ls="--", lw=1)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _save(fig, path)


def bar_plot(labels: list[str], values: list[float], path: Path, *, title: str, hline: float | None = None,
             ylabel: str = "") -> Path:
    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    ax.bar(labels, values, color="#1f77b4")
    if hline is not None:
        ax.axhline(hline, color="#d62728", ls="--", lw=1)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelsize=7, rotation=20)
    return _save(fig, path)
