"""The monthly review's process-improvement section (playbook: Continuous Improvement / Process Improvement,
"Results measurement"; Monthly Activities / Process Optimization): are we getting faster at taking and resolving
incidents, which causes keep coming back, and do we do what post-incident reviews decided?

Pure functions over DataFrames from the store. Every figure comes from stored rows; where there are none the
value is None and the markdown says "no data" (never 0 %, never "none": those would be claims).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from vvops.reviews.monthly import month_bounds

NO_DATA = "no data"
TREND_MONTHS = 6


def _month_windows(end: datetime, months: int) -> list[tuple[datetime, datetime]]:
    """The `months` calendar months that end at `end` (a month start), oldest first."""
    windows, cursor = [], end
    for _ in range(months):
        start, stop = month_bounds(cursor)
        windows.append((start, stop))
        cursor = start
    return windows[::-1]


def _real(incidents: pd.DataFrame | None) -> pd.DataFrame:
    if incidents is None or incidents.empty:
        return pd.DataFrame(columns=["key", "opened_at", "acknowledged_at", "resolved_at", "root_cause"])
    df = incidents[~incidents["is_drill"].astype(bool)].copy()
    for col in ("opened_at", "acknowledged_at", "resolved_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    return df


def _mean_minutes(delta: pd.Series) -> float | None:
    s = (delta.dt.total_seconds() / 60).dropna()
    s = s[s >= 0]
    return round(float(s.mean()), 1) if len(s) else None


def mtta_mttr_trend(incidents: pd.DataFrame | None, *, end: datetime, months: int = TREND_MONTHS) -> list[dict[str, Any]]:
    """Per month (by opening time; drills excluded): incidents, MTTA = mean(acknowledged_at − opened_at) and
    MTTR = mean(resolved_at − opened_at) in minutes over the incidents that have the timestamp (None: no data)."""
    df = _real(incidents)
    rows = []
    for start, stop in _month_windows(end, months):
        g = df[(df["opened_at"] >= pd.Timestamp(start)) & (df["opened_at"] < pd.Timestamp(stop))] if not df.empty else df
        rows.append({"month": f"{start:%Y-%m}", "incidents": len(g),
                     "mtta_min": _mean_minutes(g["acknowledged_at"] - g["opened_at"]) if len(g) else None,
                     "mttr_min": _mean_minutes(g["resolved_at"] - g["opened_at"]) if len(g) else None})
    return rows


def trend_direction(rows: list[dict[str, Any]], measure: str) -> str:
    """This month against the mean of the earlier months with data: faster / slower / steady, or no data."""
    values = [r[measure] for r in rows]
    current, earlier = values[-1] if values else None, [v for v in values[:-1] if v is not None]
    if current is None or not earlier:
        return NO_DATA
    base = sum(earlier) / len(earlier)
    if base == 0:
        return "steady" if current == 0 else "slower"
    change = (current - base) / base * 100
    if abs(change) < 10:
        return f"steady ({change:+.0f} % vs earlier months)"
    return f"{'faster' if change < 0 else 'slower'} ({change:+.0f} % vs earlier months)"


def normalise_cause(text: Any) -> str | None:
    """Root causes as people type them: case, spacing and trailing punctuation do not make a new cause."""
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return None
    cause = re.sub(r"\s+", " ", str(text)).strip().strip(".;,!").lower()
    return cause or None


def repeat_incidents(incidents: pd.DataFrame | None) -> dict[str, Any]:
    """Root causes behind more than one incident (drills excluded), most frequent first, and how many incidents
    have no root cause recorded (those cannot be compared)."""
    df = _real(incidents)
    if df.empty:
        return {"incidents": 0, "without_cause": 0, "repeats": []}
    causes = df.assign(cause=df["root_cause"].map(normalise_cause) if "root_cause" in df else None)
    known = causes.dropna(subset=["cause"])
    repeats = []
    for cause, g in known.groupby("cause"):
        if len(g) < 2:
            continue
        g = g.sort_values("opened_at")
        repeats.append({"root cause": cause, "incidents": len(g), "keys": ", ".join(g["key"].astype(str)),
                        "first": f"{g['opened_at'].iloc[0]:%Y-%m-%d}", "last": f"{g['opened_at'].iloc[-1]:%Y-%m-%d}"})
    repeats.sort(key=lambda r: (-r["incidents"], r["root cause"]))
    return {"incidents": len(df), "without_cause": int(len(df) - len(known)), "repeats": repeats}


def action_item_follow_through(items: pd.DataFrame | None, *, start: datetime, end: datetime) -> dict[str, Any]:
    """Action items due in [start, end): closed by their due date, closed late, still open, and the share closed
    on time (None when nothing fell due). Also the items still open and overdue at `end` (any due month).

    columns: id, incident, title, owner, due_on (date), status, done_at."""
    empty = {"due": 0, "on_time": 0, "late": 0, "open": 0, "on_time_pct": None, "overdue_at_end": [],
             "recorded": 0}
    if items is None or items.empty:
        return empty
    df = items.copy()
    df["due_on"] = pd.to_datetime(df["due_on"]).dt.date
    df["done_at"] = pd.to_datetime(df["done_at"], utc=True)
    first, last = start.astimezone(timezone.utc).date(), end.astimezone(timezone.utc).date()
    due = df[(df["due_on"] >= first) & (df["due_on"] < last)]
    end_ts = pd.Timestamp(end)
    closed = due["done_at"].notna() & (due["done_at"] < end_ts)
    on_time = closed & (due["done_at"].dt.date <= due["due_on"])
    still_open = df[(df["due_on"] < last) & (df["done_at"].isna() | (df["done_at"] >= end_ts))]
    overdue = [{"id": int(r["id"]), "incident": r["incident"], "item": r["title"], "owner": r["owner"],
                "due": r["due_on"].isoformat(), "days overdue": (last - r["due_on"]).days}
               for r in still_open.sort_values("due_on").to_dict("records")]
    n = len(due)
    return {"due": n, "on_time": int(on_time.sum()), "late": int((closed & ~on_time).sum()),
            "open": int((~closed).sum()), "on_time_pct": round(float(on_time.sum()) / n * 100, 1) if n else None,
            "overdue_at_end": overdue, "recorded": len(df)}


def process_improvement(incidents: pd.DataFrame | None, items: pd.DataFrame | None, *, start: datetime,
                        end: datetime, months: int = TREND_MONTHS) -> dict[str, Any]:
    """The section's data: `incidents` cover the trend's months (with root_cause), `items` every action item."""
    trend = mtta_mttr_trend(incidents, end=end, months=months)
    return {"months": months, "trend": trend, "mtta_direction": trend_direction(trend, "mtta_min"),
            "mttr_direction": trend_direction(trend, "mttr_min"), "repeats": repeat_incidents(incidents),
            "follow_through": action_item_follow_through(items, start=start, end=end)}


def _v(value: Any, unit: str = "") -> str:
    return NO_DATA if value is None else f"{value:,.1f}{unit}"


def render_process_improvement(section: dict[str, Any]) -> str:
    from vvops.reviews.weekly import md_table

    s = section
    lines = ["## Process improvement", "",
             f"### MTTA / MTTR per month (last {s['months']} months, drills excluded)", ""]
    if not any(r["incidents"] for r in s["trend"]):
        lines += [f"_{NO_DATA}: no incidents in the last {s['months']} months._", ""]
    else:
        lines += [md_table([{"month": r["month"], "incidents": str(r["incidents"]), "MTTA (min)": _v(r["mtta_min"]),
                             "MTTR (min)": _v(r["mttr_min"])} for r in s["trend"]]), "",
                  f"MTTA this month: {s['mtta_direction']}; MTTR this month: {s['mttr_direction']}.", ""]
    rep = s["repeats"]
    lines += ["### Repeat incidents by root cause", ""]
    if not rep["incidents"]:
        lines += [f"_{NO_DATA}: no incidents to compare._", ""]
    else:
        lines += [md_table(rep["repeats"], empty=f"_No root cause behind more than one of {rep['incidents']} "
                                                 "incident(s)._"), ""]
        if rep["without_cause"]:
            lines += [f"{rep['without_cause']} incident(s) without a recorded root cause (not compared).", ""]
    ft = s["follow_through"]
    lines += ["### Action-item follow-through", ""]
    if not ft["due"]:
        lines += [f"_{NO_DATA}: no post-incident action item fell due this month._", ""]
    else:
        lines += [f"{ft['on_time']} of {ft['due']} action item(s) due this month closed by their due date "
                  f"(**{_v(ft['on_time_pct'], ' %')}**); {ft['late']} closed late, {ft['open']} still open.", ""]
    lines += ["Open and overdue at the end of the month:", "",
              md_table(ft["overdue_at_end"], empty=f"_{NO_DATA}_" if not ft["recorded"] else "_none_"), ""]
    return "\n".join(lines)


def slack_line(section: dict[str, Any]) -> str:
    ft = section["follow_through"]
    pct = NO_DATA if ft["on_time_pct"] is None else f"{ft['on_time_pct']:.0f} %"
    return (f"• Process improvement: MTTA {section['mtta_direction']}, MTTR {section['mttr_direction']}; "
            f"{len(section['repeats']['repeats'])} repeat cause(s); action items closed on time: {pct}\n")
