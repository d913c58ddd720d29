"""Team activities the playbook leaves to people: each cadence report lists them with who confirmed them when."""

from __future__ import annotations

from datetime import datetime

from prefect import task
from sqlalchemy import select

from tasks.policies import STORE_RETRIES
from tasks.runtime import store_engine
from vvops.coverage.checklists import CONFIRM_ACTION, checklist_for, evidence_from_audit, render_checklist
from vvops.store.models import AuditEntry


@task(name="team-checklist", **STORE_RETRIES)
def checklist_markdown(*, cadence: str, since: datetime) -> str:
    """The cadence's checklist with confirmations (`vvops checklist confirm`) recorded since `since`."""
    query = select(AuditEntry.action, AuditEntry.subject, AuditEntry.actor, AuditEntry.at).where(
        AuditEntry.action == CONFIRM_ACTION, AuditEntry.at >= since)
    with store_engine().connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    return render_checklist(checklist_for(cadence), evidence_from_audit(rows), title=f"Team checklist ({cadence})")
