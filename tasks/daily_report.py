"""Daily Reporting: the operations dashboard update (KPIs, health by area, incidents, open issues, plans, handoff)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prefect import task
from sqlalchemy import select

from tasks.reports import STATUS_ICON, markdown_table
from tasks.runtime import ops_config, store_engine
from vvops.checks import CheckOutcome
from vvops.config import upcoming_shifts, who_is_on_call
from vvops.store import session_scope
from vvops.store.models import ApprovalRequest, Incident

AREAS = ("protocol", "infrastructure", "security", "maintenance")


@task(name="gather-report-context", retries=2, retry_delay_seconds=[1, 2])
def gather_report_context(*, environment: str, now: datetime) -> dict[str, Any]:
    """Open incidents, outstanding approvals, planned activities (next 24 h) and the on-call handoff."""
    cfg = ops_config(environment)
    with session_scope(store_engine()) as session:
        incidents = session.scalars(select(Incident).where(Incident.status.in_(("open", "mitigated")),
                                                           Incident.is_drill.is_(False)).order_by(Incident.opened_at)).all()
        approvals = session.scalars(select(ApprovalRequest).where(ApprovalRequest.status.in_(("pending", "escalated")))
                                    .order_by(ApprovalRequest.requested_at)).all()
        open_incidents = [{"key": i.key, "severity": i.severity, "title": i.title, "commander": i.commander or "",
                           "opened": f"{i.opened_at:%Y-%m-%d %H:%M}"} for i in incidents]
        pending = [{"procedure": a.procedure, "subject": a.subject, "risk": a.risk, "proposer": a.proposer,
                    "expires": f"{a.expires_at:%Y-%m-%d %H:%M}" if a.expires_at else ""} for a in approvals]
    planned = []
    for window in cfg.alerting.maintenance_windows:
        upcoming = [now + timedelta(hours=h) for h in range(0, 25)]
        if any(window.active(moment) for moment in upcoming):
            planned.append({"activity": f"maintenance window {window.name}", "detail": window.reason})
    planned += [{"activity": f"approval pending: {a['procedure']}", "detail": a["subject"]} for a in pending]
    handoff = []
    for rotation in cfg.oncall.rotations:
        current = who_is_on_call(rotation, now)
        next_shift = next((s for s in upcoming_shifts(rotation, now, days=8) if s.start > now), None)
        handoff.append({"rotation": rotation.name, "on call now": current.primary, "secondary": current.secondary or "",
                        "hands off at": f"{current.shift_end:%Y-%m-%d %H:%M %Z}",
                        "next": next_shift.primary if next_shift else ""})
    return {"open_incidents": open_incidents, "pending_approvals": pending, "planned": planned, "handoff": handoff}


def _runbook_link(runbooks: Any, check_id: str) -> str:
    """`[section](url)` of the runbook that handles a check (config/runbooks.yaml), or empty."""
    url = runbooks.for_check(check_id) if runbooks is not None else None
    return f"[{url.rsplit('#', 1)[-1]}]({url})" if url else ""


def render_daily_report(*, environment: str, started_at: datetime, outcomes: list[CheckOutcome], counts: dict[str, int],
                        store_run_id: int, context: dict[str, Any], runbooks: Any = None) -> str:
    """The daily report as markdown: a lead reads the KPIs, then what is failing and what to do about it."""
    total = len(outcomes) or 1
    if runbooks is None:
        runbooks = ops_config(environment).runbooks
    lines = [
        f"# Daily operations report — {environment} — {started_at:%Y-%m-%d %H:%M} UTC",
        "",
        f"**Health {100 * counts['ok'] / total:.0f}%** · {counts['ok']} ok · "
        f"{counts.get('unknown', 0)} unknown (nothing configured to check; not counted as ok) · {counts['warn']} warn · "
        f"{counts['crit']} crit · {counts['error']} error · open incidents {len(context['open_incidents'])} · "
        f"approvals waiting {len(context['pending_approvals'])} · store run #{store_run_id}",
        "",
        "## Health by area",
        "",
        markdown_table([{"area": area, **{s: sum(o.area == area and o.status == s for o in outcomes)
                                          for s in ("ok", "unknown", "warn", "crit", "error")}} for area in AREAS]),
        "",
        "## Failing checks",
        "",
    ]
    failing = sorted((o for o in outcomes if o.status != "ok"), key=lambda o: ("error", "crit", "warn", "unknown").index(o.status))
    if failing:
        lines.append(markdown_table([{"status": f"{STATUS_ICON[o.status]} {o.status}", "check": f"`{o.id}`",
                                      "value": "" if o.value is None else f"{o.value:g}",
                                      "threshold": "" if o.threshold is None else str(o.threshold),
                                      "message": o.message, "hint": o.hint or "",
                                      "runbook": _runbook_link(runbooks, o.id)} for o in failing]))
    else:
        lines.append("All checks passed.")
    for title, key in (("Open incidents", "open_incidents"), ("Outstanding approvals", "pending_approvals"),
                       ("Planned activities (next 24 h)", "planned"), ("On-call handoff", "handoff")):
        lines += ["", f"## {title}", "", markdown_table(context[key]) or "_None._"]
    return "\n".join(lines) + "\n"
