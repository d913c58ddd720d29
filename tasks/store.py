"""Tasks that write to the ops store: check runs and their results, incidents, the audit log."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from prefect import task
from prefect.runtime import flow_run
from sqlalchemy import func, select

from tasks.policies import STORE_RETRIES
from tasks.runtime import store_engine
from vvops.checks import CheckOutcome, worst_status
from vvops.store import append_audit, session_scope
from vvops.metrics import MetricPoint
from vvops.store.models import CheckResult, CheckRun, Incident, IncidentEvent, Metric



def current_flow_run_id() -> str | None:
    run_id = flow_run.get_id()
    return str(run_id) if run_id else None


@task(name="record-check-run", **STORE_RETRIES)
def record_check_run(*, flow_name: str, environment: str, outcomes: list[CheckOutcome], started_at: datetime,
                     finished_at: datetime | None = None) -> int:
    """Persist one run with one result row per check (dated `finished_at`, default now); its status is the worst
    check status."""
    finished_at = finished_at or datetime.now(timezone.utc)
    with session_scope(store_engine()) as session:
        run = CheckRun(
            flow_name=flow_name, flow_run_id=current_flow_run_id(), environment=environment,
            started_at=started_at, finished_at=finished_at,
            status=worst_status([o.status for o in outcomes]),
        )
        run.results = [
            CheckResult(check_id=o.id, area=o.area, status=o.status, value=o.value, threshold=o.threshold,
                        message=o.message, hint=o.hint, details=o.details, served_by=o.served_by,
                        duration_ms=o.duration_ms, created_at=finished_at)
            for o in outcomes
        ]
        session.add(run)
        session.flush()
        return run.id


@task(name="audit", **STORE_RETRIES)
def audit(*, actor: str, action: str, subject: str, details: dict[str, Any] | None = None, source: str = "flow") -> int:
    """Append one entry to the hash-chained audit log; returns its id."""
    details = {**(details or {}), "flow_run_id": current_flow_run_id()}
    with session_scope(store_engine(), immediate=True) as session:
        return append_audit(session, actor=actor, action=action, subject=subject, source=source, details=details).id


@task(name="open-incident", **STORE_RETRIES)
def open_incident(*, title: str, incident_type: str, severity: str, commander: str | None, opened_by: str,
                  is_drill: bool = False, data: dict[str, Any] | None = None) -> str:
    """Create an incident with its first timeline event and audit entry; returns its key (INC-0001)."""
    with session_scope(store_engine(), immediate=True) as session:
        number = (session.scalar(select(func.count(Incident.id))) or 0) + 1
        incident = Incident(key=f"INC-{number:04d}", title=title, type=incident_type, severity=severity,
                            commander=commander, is_drill=is_drill)
        incident.events = [IncidentEvent(kind="opened", actor=opened_by, message=title,
                                          data={**(data or {}), "flow_run_id": current_flow_run_id()})]
        session.add(incident)
        session.flush()
        append_audit(session, actor=opened_by, action="incident.opened", subject=incident.key, source="flow",
                     details={"severity": severity, "type": incident_type, "title": title, "is_drill": is_drill})
        return incident.key


@task(name="count-open-incidents", **STORE_RETRIES)
def count_open_incidents() -> int:
    with session_scope(store_engine()) as session:
        return session.scalar(select(func.count(Incident.id)).where(Incident.status.in_(("open", "mitigated")),
                                                                    Incident.is_drill.is_(False))) or 0


@task(name="last-check-run", **STORE_RETRIES)
def last_check_run_started(*, flow_name: str, environment: str) -> datetime | None:
    """When the newest check run of a flow in an environment started, or None."""
    with session_scope(store_engine()) as session:
        started = session.scalar(select(func.max(CheckRun.started_at)).where(CheckRun.flow_name == flow_name,
                                                                             CheckRun.environment == environment))
    return started.replace(tzinfo=timezone.utc) if started is not None and started.tzinfo is None else started


@task(name="record-metrics", **STORE_RETRIES)
def record_metrics(*, points: list[MetricPoint]) -> int:
    """Append metric points to the time-series table; returns how many were stored."""
    if not points:
        return 0
    with session_scope(store_engine()) as session:
        session.add_all(Metric(name=p.name, value=float(p.value), labels=dict(p.labels),
                               labels_key=Metric.make_labels_key(p.labels), ts=p.ts) for p in points)
    return len(points)
