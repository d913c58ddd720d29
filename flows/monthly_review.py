"""Monthly Activities / Compliance Verification: the audit chain verifies end to end, with the month's incidents."""

from __future__ import annotations

from datetime import datetime, timezone

from prefect import flow, task
from sqlalchemy import func, select

from tasks.reports import publish_markdown
from tasks.runtime import store_engine
from vvops.store import session_scope, verify_audit_chain
from vvops.store.models import Incident


@task(name="verify-audit-chain", retries=2, retry_delay_seconds=[1, 2])
def verify_audit() -> dict:
    with session_scope(store_engine()) as session:
        result = verify_audit_chain(session)
    return {"ok": result.ok, "checked": result.checked, "first_bad_id": result.first_bad_id, "reason": result.reason}


@task(name="count-incidents", retries=2, retry_delay_seconds=[1, 2])
def count_incidents(*, start: datetime, end: datetime) -> dict[str, int]:
    query = (select(Incident.severity, func.count(Incident.id))
             .where(Incident.opened_at >= start, Incident.opened_at < end, Incident.is_drill.is_(False))
             .group_by(Incident.severity))
    with session_scope(store_engine()) as session:
        return {severity: count for severity, count in session.execute(query).all()}


def month_bounds(moment: datetime) -> tuple[datetime, datetime]:
    """The calendar month (UTC) before the one `moment` falls in: the month a review on the 1st covers."""
    first_this = moment.astimezone(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    first_prev = (first_this.replace(year=first_this.year - 1, month=12) if first_this.month == 1
                  else first_this.replace(month=first_this.month - 1))
    return first_prev, first_this


@flow(name="monthly-review", log_prints=True)
def monthly_review(environment: str = "devnet", as_of: datetime | None = None) -> dict:
    """Verify the audit chain and count the previous month's incidents by severity."""
    start, end = month_bounds(as_of or datetime.now(timezone.utc))
    chain = verify_audit()
    incidents = count_incidents(start=start, end=end)
    verdict = "✅ verifies" if chain["ok"] else f"❌ broken at row {chain['first_bad_id']}: {chain['reason']}"
    rows = "\n".join(f"| {sev} | {incidents.get(sev, 0)} |" for sev in ("P0", "P1", "P2", "P3"))
    publish_markdown(key="monthly-review", description=f"Monthly review {start:%Y-%m}",
                     markdown=f"# Monthly review — {environment} — {start:%B %Y}\n\n## Compliance\n\n"
                     f"Audit chain: {verdict} ({chain['checked']} entries)\n\n## Incidents\n\n| severity | count |\n"
                     f"| --- | --- |\n{rows}\n")
    return {"month": f"{start:%Y-%m}", "audit_chain": chain, "incidents": incidents}
