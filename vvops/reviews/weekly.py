"""Weekly review computations (pure): the week's window, incidents, pass rates, approvals, action items,
protocol assessment, and the markdown report."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from vvops.forecast import fit_trend

STATUSES = ("ok", "unknown", "warn", "crit", "error")
SEVERITIES = ("P0", "P1", "P2", "P3")
INTEGRATION_CHECKS = ("infrastructure.rpc_latency", "infrastructure.http_endpoints", "protocol.network_conditions",
                      "protocol.onchain_activity")


def _utc(value: Any) -> pd.Timestamp | None:
    if value is None or value is pd.NaT or (not isinstance(value, (dict, list, tuple)) and pd.isna(value)):
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def week_bounds(moment: datetime, tz: str = "UTC") -> tuple[datetime, datetime]:
    """The last full Monday-to-Monday week (local midnight in `tz`) before `moment`, as UTC datetimes.

    A review that runs on Monday 07:00 covers the seven days that ended at that Monday's midnight; a naive
    `moment` is taken as UTC.
    """
    zone = ZoneInfo(tz)
    m = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    local = m.astimezone(zone)
    this_monday = (local - timedelta(days=local.weekday())).date()
    end = datetime(this_monday.year, this_monday.month, this_monday.day, tzinfo=zone)
    start_day = this_monday - timedelta(days=7)
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=zone)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def pass_rate_by_area(results: pd.DataFrame) -> pd.DataFrame:
    """Share of ok results per area, with counts of each status (columns area, ok..error, total, pass_rate)."""
    cols = ["area", *STATUSES, "total", "pass_rate"]
    if results is None or results.empty:
        return pd.DataFrame(columns=cols)
    counts = results.pivot_table(index="area", columns="status", values="check_id", aggfunc="count", fill_value=0)
    for status in STATUSES:
        if status not in counts:
            counts[status] = 0
    counts = counts[list(STATUSES)].astype(int)
    counts["total"] = counts.sum(axis=1)
    counts["pass_rate"] = (counts["ok"] / counts["total"]).round(4)
    counts.columns.name = None
    return counts.reset_index()[cols]


def incident_stats(incidents: pd.DataFrame | None) -> dict[str, Any]:
    """Real incidents (drills excluded): count, by severity, by type, MTTA and MTTR in minutes (means over the
    incidents that have the timestamp), and per-severity MTTA/MTTR.

    columns: key, title, severity, type, status, is_drill, opened_at, acknowledged_at, resolved_at.
    """
    empty = {"count": 0, "drills": 0, "by_severity": {s: 0 for s in SEVERITIES}, "by_type": {},
             "mtta_minutes": None, "mttr_minutes": None, "per_severity": [], "open": 0}
    if incidents is None or incidents.empty:
        return empty
    df = incidents.copy()
    drills = int(df["is_drill"].astype(bool).sum())
    df = df[~df["is_drill"].astype(bool)]
    if df.empty:
        return {**empty, "drills": drills}
    for col in ("opened_at", "acknowledged_at", "resolved_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    df["tta"] = (df["acknowledged_at"] - df["opened_at"]).dt.total_seconds() / 60
    df["ttr"] = (df["resolved_at"] - df["opened_at"]).dt.total_seconds() / 60

    def mean(s: pd.Series) -> float | None:
        s = s.dropna()
        return round(float(s.mean()), 1) if len(s) else None

    per = []
    for sev, g in df.groupby("severity"):
        per.append({"severity": sev, "count": len(g), "mtta_min": mean(g["tta"]), "mttr_min": mean(g["ttr"])})
    return {
        "count": len(df), "drills": drills,
        "by_severity": {s: int((df["severity"] == s).sum()) for s in SEVERITIES},
        "by_type": {str(k): int(v) for k, v in df["type"].value_counts().sort_index().items()},
        "mtta_minutes": mean(df["tta"]), "mttr_minutes": mean(df["ttr"]), "per_severity": per,
        "open": int(df["resolved_at"].isna().sum()),
    }


def approvals_overview(requests: pd.DataFrame | None, *, start: datetime, end: datetime) -> dict[str, list[dict]]:
    """Pending requests (still waiting at `end`; `overdue` when past their expiry) and those that expired in
    the week. columns: id, procedure, subject, proposer, status, requested_at, expires_at, decided_at."""
    out: dict[str, list[dict]] = {"pending": [], "expired": []}
    if requests is None or requests.empty:
        return out
    s, e = _utc(start), _utc(end)
    for r in requests.to_dict(orient="records"):
        requested, expires = _utc(r.get("requested_at")), _utc(r.get("expires_at"))
        decided = _utc(r.get("decided_at"))
        row = {"id": int(r["id"]), "procedure": r["procedure"], "subject": r.get("subject", ""),
               "proposer": r.get("proposer"), "requested_at": requested.strftime("%Y-%m-%d %H:%M") if requested else "",
               "expires_at": expires.strftime("%Y-%m-%d %H:%M") if expires else ""}
        if r["status"] in ("pending", "escalated") and requested is not None and requested < e:
            row["overdue"] = bool(expires is not None and expires < e)
            out["pending"].append(row)
        elif r["status"] == "expired":
            when = decided or expires
            if when is not None and s <= when < e:
                out["expired"].append(row)
    return out


def open_action_items(incidents: pd.DataFrame | None, items: pd.DataFrame | None = None, *,
                      at: datetime | None = None) -> list[dict[str, Any]]:
    """Open post-incident action items: the records (`items`: id, incident, title, owner, due_on, status, done_at;
    owner and due date from the table, `overdue` when the due date passed before `at`), plus, for incidents that
    have no records (reports written before action items were records), the items of their report JSON.
    """
    out: list[dict[str, Any]] = []
    recorded: set[str] = set()
    today = (at or datetime.now(timezone.utc)).astimezone(timezone.utc).date()
    if items is not None and not items.empty:
        recorded = set(items["incident"].astype(str))
        for r in items.to_dict(orient="records"):
            done_at = _utc(r.get("done_at"))
            if r["status"] == "done" and (done_at is None or done_at.date() <= today):
                continue
            due = pd.Timestamp(r["due_on"]).date()
            out.append({"id": f"#{int(r['id'])}", "incident": r["incident"], "item": r["title"], "owner": r["owner"],
                        "due": due.isoformat(), "overdue": "⚠️ overdue" if due < today else ""})
    if incidents is not None and not incidents.empty:
        for r in incidents.to_dict(orient="records"):
            report = r.get("report") or {}
            if not isinstance(report, dict) or r["key"] in recorded:
                continue
            for item in report.get("action_items") or []:
                if isinstance(item, str):
                    item = {"title": item}
                done = bool(item.get("done")) or str(item.get("status", "")).lower() in ("done", "closed", "resolved")
                if done:
                    continue
                out.append({"id": "", "incident": r["key"], "item": item.get("title") or item.get("action") or "?",
                            "owner": item.get("owner", ""), "due": str(item.get("due", "") or ""), "overdue": ""})
    return sorted(out, key=lambda i: (i["due"] or "9999", i["incident"], i["id"]))


def action_items_recorded(items: pd.DataFrame | None, incidents: pd.DataFrame | None) -> bool:
    """Whether the store holds any action item at all (else the section says "no data", not "none open")."""
    if items is not None and not items.empty:
        return True
    if incidents is None or incidents.empty:
        return False
    return any(isinstance(r, dict) and r.get("action_items") for r in incidents["report"])


def integrations_health(results: pd.DataFrame | None, checks: tuple[str, ...] = INTEGRATION_CHECKS) -> list[dict]:
    """Per integration check: runs, pass rate and last status/message over the window."""
    if results is None or results.empty:
        return []
    # the live checks add a target to the id (protocol.onchain_activity.vault.summary): match by prefix
    wanted = results["check_id"].map(lambda c: any(c == x or str(c).startswith(x + ".") for x in checks))
    df = results[wanted].sort_values("created_at")
    rows = []
    for check_id, g in df.groupby("check_id"):
        last = g.iloc[-1]
        rows.append({"check": check_id, "runs": len(g), "pass_rate": round(float((g["status"] == "ok").mean()), 4),
                     "last_status": last["status"], "last_message": str(last.get("message", "") or "")[:80]})
    return rows


def _series(metrics: pd.DataFrame, name: str) -> pd.DataFrame:
    return metrics[metrics["name"] == name] if metrics is not None and not metrics.empty else pd.DataFrame()


def protocol_assessment(metrics: pd.DataFrame | None, *, start: datetime, end: datetime) -> dict[str, Any]:
    """Parameter performance and gas per function from the metrics (long frame: name, labels, ts, value).

    - `fees_collected_usd` (per day), `withdrawal_limit_hits` (per day) against `vault_param{param=...}` (the
      value in force, forward-filled): mean fees and hits per day under each parameter value in the window;
    - `gas_per_call{function=...}`: mean gas per call this week and its trend (% per week over the window).
    """
    out: dict[str, Any] = {"parameters": [], "gas": [], "errors": []}
    if metrics is None or metrics.empty:
        return out
    s, e = _utc(start), _utc(end)
    m = metrics.copy()
    m["ts"] = pd.to_datetime(m["ts"], utc=True)
    fees = _series(m, "fees_collected_usd")
    hits = _series(m, "withdrawal_limit_hits")
    params = _series(m, "vault_param")
    if not params.empty and (not fees.empty or not hits.empty):
        days = pd.date_range(s, e - pd.Timedelta(microseconds=1), freq="D", normalize=True)
        daily = pd.DataFrame(index=days)
        for label, frame in (("fees_usd", fees), ("limit_hits", hits)):
            if not frame.empty:
                daily[label] = _per_day(frame).reindex(days, fill_value=0)
        params = params.assign(param=params["labels"].map(lambda d: (d or {}).get("param", "?")))
        for pname, g in params.groupby("param"):
            in_force = g.set_index("ts")["value"].sort_index()
            before = in_force[in_force.index < s]
            values = pd.Series(index=days, dtype=float)
            for day in days:
                upto = in_force[in_force.index < day + pd.Timedelta(days=1)]
                values[day] = upto.iloc[-1] if len(upto) else (before.iloc[-1] if len(before) else np.nan)
            frame = daily.assign(value=values).dropna(subset=["value"])
            for value, seg in frame.groupby("value"):
                row = {"parameter": pname, "value": float(value), "days": len(seg)}
                if "fees_usd" in seg:
                    row["fees_usd_per_day"] = round(float(seg["fees_usd"].mean()), 2)
                if "limit_hits" in seg:
                    row["limit_hits_per_day"] = round(float(seg["limit_hits"].mean()), 2)
                out["parameters"].append(row)
    gas = _series(m, "gas_per_call")
    if not gas.empty:
        gas = gas.assign(function=gas["labels"].map(_function_label))
        for fn, g in gas.groupby("function"):
            daily = g.set_index("ts")["value"].resample("1D").mean().dropna()
            week = g[(g["ts"] >= s) & (g["ts"] < e)]["value"]
            fit = fit_trend(daily.index, daily.to_numpy())
            mean = float(week.mean()) if len(week) else float("nan")
            trend = (fit.slope_per_day * 7 / mean * 100) if fit and mean else None
            out["gas"].append({"function": fn, "mean_gas": None if np.isnan(mean) else round(mean),
                               "trend_pct_per_week": None if trend is None else round(trend, 2)})
    out["errors"] = errors_by_function(m, start=s, end=e)
    return out


def _function_label(labels: dict | None) -> str:
    """`contract.function` (or the bare function of a series without a contract label)."""
    labels = labels or {}
    fn = labels.get("function", "?")
    return f"{labels['contract']}.{fn}" if labels.get("contract") else fn


def _per_day(frame: pd.DataFrame) -> pd.Series:
    """Daily totals of a series whose points are each a trailing-day total (the daily checks record the last 24 h,
    and may run several times a day): the mean of a day's points is that day's total."""
    return frame.set_index("ts")["value"].resample("1D").mean().dropna()


def errors_by_function(m: pd.DataFrame, *, start: pd.Timestamp, end: pd.Timestamp) -> list[dict[str, Any]]:
    """Per contract function over [start, end): calls, reverts, error rate and the most frequent decoded revert
    reasons (`protocol.function_calls`, `protocol.function_reverts`, `protocol.reverts_by_reason`)."""
    week = m[(m["ts"] >= start) & (m["ts"] < end)]
    totals: dict[str, dict[str, Any]] = {}
    for name, key in (("protocol.function_calls", "calls"), ("protocol.function_reverts", "reverts")):
        series = _series(week, name)
        if series.empty:
            continue
        series = series.assign(fn=series["labels"].map(_function_label))
        for fn, g in series.groupby("fn"):
            totals.setdefault(fn, {"function": fn, "calls": 0, "reverts": 0})[key] = int(round(_per_day(g).sum()))
    reasons = _series(week, "protocol.reverts_by_reason")
    by_reason: dict[str, dict[str, int]] = {}
    if not reasons.empty:
        reasons = reasons.assign(fn=reasons["labels"].map(_function_label),
                                 reason=reasons["labels"].map(lambda d: (d or {}).get("reason", "?")))
        for (fn, reason), g in reasons.groupby(["fn", "reason"]):
            by_reason.setdefault(fn, {})[reason] = int(round(_per_day(g).sum()))
    rows = []
    for fn, row in sorted(totals.items()):
        top = sorted(by_reason.get(fn, {}).items(), key=lambda kv: -kv[1])[:3]
        rows.append({**row, "error_rate_pct": round(100.0 * row["reverts"] / row["calls"], 2) if row["calls"] else None,
                     "revert_reasons": ", ".join(f"{r} ×{n}" for r, n in top if n) or "—"})
    return rows


# ---------------------------------------------------------------------------- markdown

def fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def md_table(rows: list[dict[str, Any]], columns: list[str] | None = None, empty: str = "_no data_") -> str:
    if not rows:
        return empty
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c)).replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines)


def render_weekly_markdown(report: dict[str, Any], *, images: dict[str, str] | None = None) -> str:
    """The weekly review as markdown; `images`: series → link (path or URL) of its forecast plot."""
    images = images or {}
    r = report
    lines = [f"# Weekly review — {r['environment']} — week of {r['start'][:10]}",
             f"_{r['start'][:16]} → {r['end'][:16]} UTC; generated {r['generated_at'][:16]} UTC_", ""]
    recs = [p["recommendation"] for p in r["capacity"]["plans"] if p.get("recommendation")]
    lines += ["## Decisions needed", ""]
    lines += [f"- ⚠️ {x}" for x in recs] or ["- No capacity limit inside the planning horizon."]
    if r["approvals"]["pending"]:
        lines.append(f"- {len(r['approvals']['pending'])} approval request(s) pending")
    if r["action_items"]:
        overdue = sum(1 for i in r["action_items"] if i.get("overdue"))
        lines.append(f"- {len(r['action_items'])} open post-incident action item(s)"
                     + (f", {overdue} overdue" if overdue else ""))
    lines += ["", f"## Capacity planning (horizon {r['capacity']['horizon_days']} days)", ""]
    cap_rows = [{"series": p["series"], "now": fmt(p["level_now"], 2), "trend/30d": fmt(p["growth_pct_30d"], 1) + " %"
                 if p["growth_pct_30d"] is not None else "—", "R²": fmt(p["r2"], 2),
                 "limit": "" if p["limit"] is None else f"{p['limit']:g}{p['unit']}",
                 "days to limit": fmt(p["days_central"], 0), "earliest": p["date_earliest"] or "—",
                 "plot": f"![{p['series']}]({images[p['series']]})" if p["series"] in images else ""}
                for p in r["capacity"]["plans"]]
    lines += [md_table(cap_rows, empty="_no data: no capacity series recorded._"), ""]
    if cap_rows and r["capacity"].get("missing"):
        lines += [f"_no data for: {', '.join(r['capacity']['missing'])}._", ""]
    proto = r["protocol"]
    lines += ["## Protocol assessment", "", "### Parameters in force vs outcomes", "",
              md_table(proto["parameters"], empty="_no data: no parameter and fee metrics recorded._"), "",
              "### Gas per function", "", md_table(proto["gas"], empty="_no data: no gas per call recorded._"), "",
              "### Errors and reverts by function", "",
              md_table(proto.get("errors") or [], empty="_no data: no calls by function recorded._"), "",
              "### Integrations' health", "", md_table(r["integrations"], empty="_no data: no integration check ran this week._"), ""]
    inc = r["incidents"]
    lines += ["## Operations review", "", "### Incidents", "",
              f"{inc['count']} incident(s) ({inc['drills']} drill(s) excluded); "
              f"MTTA {fmt(inc['mtta_minutes'])} min, MTTR {fmt(inc['mttr_minutes'])} min; still open: {inc['open']}", "",
              md_table([{"severity": s, "count": n} for s, n in inc["by_severity"].items()]), "",
              md_table([{"type": t, "count": n} for t, n in inc["by_type"].items()], empty=""), "",
              md_table(inc["per_severity"], empty=""), "",
              "### Check pass rate by area", "",
              md_table(r["areas"], empty="_no data: no check results stored this week._"), "",
              "### Failed or late flow runs", "",
              md_table(r["flow_runs"], empty="_no data: no failed or late run (or the Prefect API had no runs)._"), "",
              "### Approvals", "", "Pending:", "", md_table(r["approvals"]["pending"]), "",
              "Expired this week:", "", md_table(r["approvals"]["expired"]), "",
              "### Open action items from post-incident reports", "",
              md_table(r["action_items"], empty="_none open_" if r.get("action_items_recorded", True) else
                       "_no data: no post-incident action items recorded_"), "",
              "### On call next week", "", md_table(r["oncall"], empty="_No rotations configured._"), ""]
    return "\n".join(lines)


def slack_summary_weekly(report: dict[str, Any]) -> str:
    """A short plain-text summary for Slack."""
    inc = report["incidents"]
    recs = [p["recommendation"] for p in report["capacity"]["plans"] if p.get("recommendation")]
    rate = ", ".join(f"{a['area']} {a['pass_rate'] * 100:.0f}%" for a in report["areas"]) or "no checks"
    text = (f"*Weekly review {report['environment']}* {report['start'][:10]} → {report['end'][:10]}\n"
            f"• Incidents: {inc['count']} (MTTA {fmt(inc['mtta_minutes'])} min, MTTR {fmt(inc['mttr_minutes'])} min)\n"
            f"• Check pass rate: {rate}\n• Failed/late flow runs: {len(report['flow_runs'])}\n"
            f"• Approvals pending: {len(report['approvals']['pending'])}; open action items: "
            f"{len(report['action_items'])} ({sum(1 for i in report['action_items'] if i.get('overdue'))} overdue)\n")
    text += "".join(f"• ⚠️ {x}\n" for x in recs) or "• Capacity: no limit inside the horizon\n"
    return text
