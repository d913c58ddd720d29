"""Read the status page's evidence from the ops store: check results and incidents of the uptime window, with
the contracts their alerts name and their public updates.

Public updates are template sentences tied to the incident's own lifecycle timestamps (opened, mitigated,
resolved), which say nothing internal, plus any statement a person approved for the public (timeline events of
kind `public_statement`). Internal titles, messages and evidence never leave the store through the page.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import selectinload

from vvops.status_page.model import CheckRow, IncidentRow
from vvops.store.db import session_scope
from vvops.store.models import CheckResult, CheckRun, Incident

LIFECYCLE_TEXT = {
    "investigating": "We are investigating reports of a problem. Funds safety is our first priority; "
                     "we will post an update as soon as we know more.",
    "monitoring": "A fix or containment is in place and we are monitoring the results.",
    "resolved": "This incident has been resolved.",
}


def _aware(dt: datetime | None) -> datetime | None:
    return None if dt is None else (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc))


def _updates(incident: Incident) -> tuple[dict, ...]:
    updates = [{"at": _aware(incident.opened_at).isoformat(), "status": "investigating",
                "body": LIFECYCLE_TEXT["investigating"]}]
    if incident.mitigated_at:
        updates.append({"at": _aware(incident.mitigated_at).isoformat(), "status": "monitoring",
                        "body": LIFECYCLE_TEXT["monitoring"]})
    for event in incident.events:
        if event.kind == "public_statement" and event.data.get("approved_by"):
            updates.append({"at": _aware(event.at).isoformat(), "status": event.data.get("status", "update"),
                            "body": event.message})
    if incident.resolved_at:
        updates.append({"at": _aware(incident.resolved_at).isoformat(), "status": "resolved",
                        "body": LIFECYCLE_TEXT["resolved"]})
    return tuple(sorted(updates, key=lambda u: u["at"], reverse=True))


def read_evidence(engine: Engine, *, environment: str, now: datetime, days: int
                  ) -> tuple[list[CheckRow], list[IncidentRow]]:
    since = now - timedelta(days=days)
    with session_scope(engine) as session:
        rows = session.execute(
            select(CheckResult.check_id, CheckResult.status, CheckResult.created_at)
            .join(CheckRun, CheckRun.id == CheckResult.run_id)
            .where(CheckRun.environment == environment, CheckResult.created_at >= since)
        ).all()
        checks = [CheckRow(check_id, status, _aware(at)) for check_id, status, at in rows]
        found = session.scalars(
            select(Incident).options(selectinload(Incident.alerts), selectinload(Incident.events))
            .where(or_(Incident.opened_at >= since, Incident.status.in_(("open", "mitigated"))))
        ).all()
        incidents = []
        for incident in found:
            named = [a.labels.get("contract") for a in incident.alerts] + [e.data.get("contract") for e in incident.events]
            contracts = sorted({str(name) for name in named if name})
            incidents.append(IncidentRow(
                key=incident.key, severity=incident.severity, type=incident.type, status=incident.status,
                opened_at=_aware(incident.opened_at), resolved_at=_aware(incident.resolved_at),
                contracts=tuple(contracts), is_drill=incident.is_drill, updates=_updates(incident)))
    return checks, incidents
