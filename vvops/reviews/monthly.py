"""Monthly review computations (pure): month windows, security review, performance review, governance, markdown."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from .compliance import GOVERNED_PROCEDURES, ControlResult
from .weekly import fmt, md_table

#: days to fix an open vulnerability finding, by severity (industry-typical; the report flags older ones)
VULN_SLA_DAYS = {"critical": 7, "high": 30, "medium": 90, "low": 180}


def _utc(value: Any) -> pd.Timestamp | None:
    if value is None or value is pd.NaT or (not isinstance(value, (dict, list, tuple)) and pd.isna(value)):
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def month_bounds(moment: datetime, tz: str = "UTC") -> tuple[datetime, datetime]:
    """The calendar month (local midnight in `tz`) before the one `moment` falls in, as UTC datetimes: the month
    a review on the 1st covers. A naive `moment` is taken as UTC."""
    zone = ZoneInfo(tz)
    m = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    local = m.astimezone(zone)
    first_this = datetime(local.year, local.month, 1, tzinfo=zone)
    first_prev = datetime(local.year - 1, 12, 1, tzinfo=zone) if local.month == 1 \
        else datetime(local.year, local.month - 1, 1, tzinfo=zone)
    return first_prev.astimezone(timezone.utc), first_this.astimezone(timezone.utc)


def previous_month(start: datetime) -> tuple[datetime, datetime]:
    """The month before the one starting at `start` (UTC)."""
    return month_bounds(start)


# ---------------------------------------------------------------------------- performance

def availability(probes: pd.DataFrame | None, *, slo_pct: float) -> list[dict[str, Any]]:
    """Per endpoint: samples, availability %, SLO, error-budget burn (% of the month's budget used).

    probes columns: endpoint, ts, up (1/0).
    """
    if probes is None or probes.empty:
        return []
    rows = []
    budget = 1 - slo_pct / 100
    for ep, g in probes.groupby("endpoint"):
        avail = float(g["up"].mean()) * 100
        burn = ((100 - avail) / 100 / budget * 100) if budget > 0 else None
        rows.append({"endpoint": ep, "samples": len(g), "availability_pct": round(avail, 3), "slo_pct": slo_pct,
                     "meets_slo": avail >= slo_pct, "budget_burn_pct": None if burn is None else round(burn, 1)})
    return rows


def latency_p95(latency: pd.DataFrame | None, *, freq: str = "7D") -> pd.DataFrame:
    """p95 latency per endpoint per `freq` bucket. latency columns: endpoint, ts, value (ms)."""
    if latency is None or latency.empty:
        return pd.DataFrame(columns=["endpoint", "ts", "p95_ms"])
    df = latency.assign(ts=pd.to_datetime(latency["ts"], utc=True))
    out = (df.set_index("ts").groupby("endpoint")["value"].resample(freq).quantile(0.95)
           .rename("p95_ms").reset_index())
    return out.dropna()


def p95_by_key(frame: pd.DataFrame | None, key: str, value: str) -> dict[str, float]:
    if frame is None or frame.empty:
        return {}
    return {str(k): float(v) for k, v in frame.groupby(key)[value].quantile(0.95).items()}


def check_durations(results: pd.DataFrame | None, previous: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Per check: p50/p95 duration this month and p95 last month (ms)."""
    if results is None or results.empty:
        return []
    df = results.dropna(subset=["duration_ms"])
    prev = p95_by_key(previous.dropna(subset=["duration_ms"]) if previous is not None and not previous.empty
                      else None, "check_id", "duration_ms")
    rows = []
    for cid, g in df.groupby("check_id"):
        p95 = float(g["duration_ms"].quantile(0.95))
        rows.append({"check": cid, "runs": len(g), "p50_ms": round(float(g["duration_ms"].median()), 1),
                     "p95_ms": round(p95, 1), "p95_prev_ms": round(prev[cid], 1) if cid in prev else None,
                     "change_pct": round((p95 / prev[cid] - 1) * 100, 1) if prev.get(cid) else None})
    return rows


def month_over_month(this: dict[str, float | None], prev: dict[str, float | None]) -> list[dict[str, Any]]:
    rows = []
    for k, v in this.items():
        p = prev.get(k)
        change = None if v is None or p in (None, 0) else round((v / p - 1) * 100, 1)
        rows.append({"measure": k, "this_month": v, "previous_month": p, "change_pct": change})
    return rows


# ---------------------------------------------------------------------------- security

def credentials_age(credentials: list[dict[str, Any]], *, now: datetime) -> list[dict[str, Any]]:
    """From checks.yaml credentials metadata (name, kind, owner, created, rotated, rotation_days): age since the
    last rotation, due date, and status (ok / due soon (<= 14 d) / overdue)."""
    today = _utc(now).date()
    rows = []
    for c in credentials:
        last = c.get("rotated") or c.get("created")
        last = last if isinstance(last, date) else date.fromisoformat(str(last))
        due = last + timedelta(days=int(c.get("rotation_days", 90)))
        left = (due - today).days
        rows.append({"credential": c["name"], "kind": c.get("kind", ""), "owner": c.get("owner", ""),
                     "last_rotated": last.isoformat(), "age_days": (today - last).days, "due": due.isoformat(),
                     "status": "overdue" if left < 0 else "due soon" if left <= 14 else "ok"})
    return rows


def certificate_inventory(tls_results: list[dict[str, Any]] | dict[str, Any] | None, *,
                          now: datetime) -> list[dict[str, Any]]:
    """The certificates of the latest result of every `security.tls_certs.<slug>` check (one certificate each:
    details subject/not_after, `served_by` the host:port or file), or of a result holding `details.certificates`
    entries with subject/host/file and not_after (ISO) or days_to_expiry."""
    if not tls_results:
        return []
    results = [tls_results] if isinstance(tls_results, dict) else tls_results
    certs = []
    for result in results:
        details = result.get("details") or {}
        if details.get("certificates"):
            certs += details["certificates"]
        elif details.get("not_after"):
            source = result.get("served_by") or result.get("check_id", "")
            certs.append({"subject": details.get("subject"), "not_after": details["not_after"],
                          "host" if ":" in str(source) else "file": source})
    rows = []
    for c in certs:
        not_after = _utc(c.get("not_after")) if c.get("not_after") else None
        days = c.get("days_to_expiry")
        if days is None and not_after is not None:
            days = (not_after - _utc(now)).total_seconds() / 86_400
        rows.append({"certificate": c.get("subject") or c.get("host") or c.get("file") or "?",
                     "source": c.get("host") or c.get("file") or "",
                     "expires": not_after.strftime("%Y-%m-%d") if not_after is not None else "",
                     "days_left": None if days is None else round(float(days), 1),
                     "status": "—" if days is None else "expired" if days < 0 else "crit" if days < 7
                     else "warn" if days < 30 else "ok"})
    return sorted(rows, key=lambda r: (r["days_left"] is None, r["days_left"]))


def vulnerability_status(vuln_result: dict[str, Any] | None, *, now: datetime, start: datetime) -> dict[str, Any]:
    """Open findings by severity and age versus SLA from the latest `security.vulnerability_reports` result
    (`details.findings`: id, severity, first_seen, fixed_at?)."""
    findings = ((vuln_result or {}).get("details") or {}).get("findings") or []
    n, s = _utc(now), _utc(start)
    by_sev: dict[str, dict[str, int]] = {}
    breaches = []
    for f in findings:
        sev = str(f.get("severity", "unknown")).lower()
        first = _utc(f.get("first_seen")) if f.get("first_seen") else None
        fixed = _utc(f.get("fixed_at")) if f.get("fixed_at") else None
        b = by_sev.setdefault(sev, {"open": 0, "over_sla": 0, "new": 0, "fixed": 0})
        if first is not None and first >= s:
            b["new"] += 1
        if fixed is not None:
            if fixed >= s:
                b["fixed"] += 1
            continue
        b["open"] += 1
        age = (n - first).days if first is not None else None
        if age is not None and age > VULN_SLA_DAYS.get(sev, 90):
            b["over_sla"] += 1
            breaches.append({"finding": f.get("id", "?"), "severity": sev, "age_days": age,
                             "sla_days": VULN_SLA_DAYS.get(sev, 90)})
    return {"available": vuln_result is not None,
            "by_severity": [{"severity": k, **v} for k, v in sorted(by_sev.items())], "over_sla": breaches}


# ---------------------------------------------------------------------------- governance

def governance_changes(requests: pd.DataFrame | None, decisions: pd.DataFrame | None,
                       chain_actions: pd.DataFrame | None, *, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Parameter changes and upgrades decided in [start, end) with their approvers and on-chain transactions."""
    if requests is None or requests.empty:
        return []
    s, e = _utc(start), _utc(end)
    votes: dict[int, list[str]] = {}
    if decisions is not None and not decisions.empty:
        for d in decisions.to_dict(orient="records"):
            if d.get("decision") == "approve" and bool(d.get("accepted", True)):
                votes.setdefault(int(d["request_id"]), []).append(d["approver"])
    actions = chain_actions.to_dict(orient="records") if chain_actions is not None and not chain_actions.empty else []
    rows = []
    for r in requests.to_dict(orient="records"):
        decided = _utc(r.get("decided_at"))
        if r["procedure"] not in GOVERNED_PROCEDURES or decided is None or not (s <= decided < e):
            continue
        keys = set((r.get("details") or {}).get("chain_action_keys") or ())
        txs = [a for a in actions if a["idempotency_key"] in keys
               or (r.get("flow_run_id") and str(r["flow_run_id"]) in str(a["idempotency_key"]))]
        rows.append({"request": int(r["id"]), "procedure": r["procedure"], "subject": r.get("subject", ""),
                     "status": r["status"], "proposer": r.get("proposer"),
                     "approvers": ", ".join(votes.get(int(r["id"]), [])) or "—",
                     "decided": decided.strftime("%Y-%m-%d"),
                     "txs": ", ".join(f"{(a.get('signed_tx_hash') or '?')[:12]}… ({a['status']})" for a in txs) or "—"})
    return rows


# ---------------------------------------------------------------------------- markdown

def render_monthly_markdown(report: dict[str, Any], *, images: dict[str, str] | None = None) -> str:
    images = images or {}
    r = report
    controls: list[dict[str, Any]] = r["compliance"]
    failed = [c for c in controls if not c["passed"]]
    lines = [f"# Monthly review — {r['environment']} — {r['month_label']}",
             f"_{r['start'][:10]} → {r['end'][:10]} (UTC); generated {r['generated_at'][:16]} UTC_", "",
             "## Summary", "",
             f"- Compliance: {len(controls) - len(failed)}/{len(controls)} controls pass"
             + (f" — failing: {', '.join(c['id'] for c in failed)}" if failed else ""),
             f"- Incidents: {r['incidents']['count']} ({r['incidents']['security']} security)",
             f"- Endpoints below SLO: {_below_slo_text(r['performance']['availability'])}",
             f"- Governance: {len(r['governance'])} change(s) decided"]
    access, patches = r.get("security", {}).get("access"), r.get("security", {}).get("patches")
    if access:
        lines.append(f"- Access review: {access['summary']['flagged']} role assignment(s) flagged"
                     if access.get("available") else "- Access review: chain not reachable")
    if patches:
        lines.append(f"- Patch compliance: {patches['patch_due']} patch(es) due, "
                     f"{len(patches['mismatches'])} installed ≠ locked")
    lines.append("")
    lines += ["## Compliance verification", "",
              md_table([{"control": c["id"], "result": "✅ pass" if c["passed"] else "❌ fail", "what": c["title"],
                         "evidence": c["summary"]} for c in controls]), ""]
    for c in controls:
        lines += [f"### {'✅' if c['passed'] else '❌'} {c['title']}", ""]
        if c["violations"]:
            lines += ["Violations:", "", md_table(c["violations"][:50]), ""]
        lines += ["Evidence:", "", md_table(c["evidence"][:40], empty="_no evidence rows_")
                  + ("\n\n_… more rows in the JSON result_" if len(c["evidence"]) > 40 else ""), ""]
    perf = r["performance"]
    lines += ["## Performance review", "", "### Availability per endpoint vs SLO", "",
              md_table(perf["availability"], empty="_no data: no endpoint probed this month._"), ""]
    if "availability" in images:
        lines += [f"![availability]({images['availability']})", ""]
    lines += ["### Latency p95 (weekly)", "", md_table(perf["latency_p95"], empty="_no data: no latency probed._"), ""]
    if "latency" in images:
        lines += [f"![latency p95]({images['latency']})", ""]
    lines += ["### Check durations", "", md_table(perf["check_durations"], empty="_no data: no check results this month._"), "",
              "### Month over month", "", md_table(perf["month_over_month"]), ""]
    if "mom" in images:
        lines += [f"![month over month]({images['mom']})", ""]
    sec = r["security"]
    lines += ["## Security review", "", "### Vulnerability management", ""]
    if sec["vulnerabilities"]["available"]:
        lines += [md_table(sec["vulnerabilities"]["by_severity"], empty="_No open findings in the latest scan._"), "",
                  "Over SLA:", "", md_table(sec["vulnerabilities"]["over_sla"]), ""]
    else:
        lines += ["_no data: no vulnerability scan result in the store._", ""]
    lines += ["### Credentials (metadata from checks.yaml)", "", md_table(sec["credentials"]), "",
              "### Certificate inventory (latest TLS checks)", "",
              md_table(sec["certificates"], empty="_no data: no certificate checked (configure security.tls_certs)._"), "",
              "### Security incidents", "", md_table(sec["incidents"]), ""]
    lines += render_access_markdown(sec.get("access")) + render_patches_markdown(sec.get("patches"))
    lines += ["## Governance participation", "",
              md_table(r["governance"], empty="_No parameter changes or upgrades this month._"), ""]
    return "\n".join(lines)


def render_access_markdown(access: dict[str, Any] | None) -> list[str]:
    """### Access review: on-chain roles versus config (rows holder/role/expected/ok)."""
    lines = ["### Access review (on-chain roles vs config)", ""]
    if not access:
        return lines + ["_Access review not run._", ""]
    if not access.get("available"):
        return lines + [f"_Chain not reachable — on-chain roles could not be reviewed ({access.get('error')})._", ""]
    s = access["summary"]
    lines += [f"{s['ok']}/{s['rows']} role assignments as expected" + (f" — **{s['flagged']} flagged**" if s["flagged"] else ""), "",
              md_table([{**r, "ok": "✅" if r["ok"] else "❌"} for r in access["rows"]], empty="_No roles read._"), ""]
    return lines


def render_patches_markdown(patches: dict[str, Any] | None) -> list[str]:
    """### Patch compliance: installed versus uv.lock, and patch-due findings of the newest pip-audit report."""
    lines = ["### Patch compliance of our dependencies", ""]
    if not patches:
        return lines + ["_Patch compliance not run._", ""]
    if not patches["lock_available"]:
        lines += ["_uv.lock not readable: installed versions not compared._", ""]
    else:
        lines += [f"{patches['installed']} distributions installed, {patches['locked']} pinned in uv.lock; "
                  f"{len(patches['mismatches'])} installed at another version than locked"
                  + (f"; {len(patches['locked_not_installed'])} locked but not installed (platform-specific or not synced)"
                     if patches["locked_not_installed"] else "") + ".", "",
                  md_table(patches["mismatches"], empty="_Installed versions match uv.lock._"), ""]
    if patches.get("report"):
        lines += [f"Newest pip-audit report: `{patches['report']}` ({(patches.get('report_time') or '')[:16]}) — "
                  f"{patches['patch_due']} patch(es) due", "",
                  md_table(patches["findings"], empty="_No findings concern our dependencies._"), ""]
    else:
        lines += ["_No pip-audit report in the vulnerability reports folder._", ""]
    return lines


def slack_summary_monthly(report: dict[str, Any]) -> str:
    controls = report["compliance"]
    failed = [c["id"] for c in controls if not c["passed"]]
    return (f"*Monthly review {report['environment']} — {report['month_label']}*\n"
            f"• Compliance: {len(controls) - len(failed)}/{len(controls)} controls pass"
            + (f" (failing: {', '.join(failed)})" if failed else "") + "\n"
            f"• Incidents: {report['incidents']['count']} ({report['incidents']['security']} security)\n"
            f"• Endpoints below SLO: {_below_slo_text(report['performance']['availability'])}\n"
            f"• Changes decided: {len(report['governance'])}\n")


def _below_slo_text(availability: list[dict[str, Any]]) -> str:
    """Which endpoints missed their SLO; "no data" when nothing was probed (never "none": that would claim all met)."""
    if not availability:
        return "no data (no availability probes recorded this month)"
    below = [a["endpoint"] for a in availability if not a["meets_slo"]]
    return ", ".join(below) if below else f"none of {len(availability)} probed"


def control_dicts(controls: list[ControlResult]) -> list[dict[str, Any]]:
    return [c.as_dict() for c in controls]


def nan_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and np.isnan(value) else value
