"""Store queries for the weekly and monthly reviews (→ pandas DataFrames) and the Prefect API query for failed
or late flow runs. Every loader takes an explicit [start, end) window."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from prefect import task
from sqlalchemy import select

from tasks.policies import STORE_RETRIES
from tasks.runtime import store_engine
from vvops.store import session_scope, verify_audit_chain
from vvops.store.models import (
    ApprovalDecision,
    ApprovalRequest,
    ChainAction,
    CheckResult,
    CheckRun,
    Drill,
    Incident,
    Metric,
)



def _frame(query, columns: list[str]) -> pd.DataFrame:
    with store_engine().connect() as conn:
        return pd.DataFrame(conn.execute(query).all(), columns=columns)


@task(name="load-check-results", **STORE_RETRIES)
def load_check_results(*, start: datetime, end: datetime, check_ids: list[str] | None = None) -> pd.DataFrame:
    cols = [CheckResult.check_id, CheckResult.area, CheckResult.status, CheckResult.value, CheckResult.message,
            CheckResult.details, CheckResult.duration_ms, CheckResult.created_at]
    q = select(*cols).where(CheckResult.created_at >= start, CheckResult.created_at < end)
    if check_ids:
        q = q.where(CheckResult.check_id.in_(check_ids))
    return _frame(q.order_by(CheckResult.created_at), [c.key for c in cols])


@task(name="load-check-runs", **STORE_RETRIES)
def load_check_runs(*, start: datetime, end: datetime) -> pd.DataFrame:
    cols = [CheckRun.id, CheckRun.flow_name, CheckRun.started_at, CheckRun.finished_at, CheckRun.status]
    return _frame(select(*cols).where(CheckRun.started_at >= start, CheckRun.started_at < end),
                  [c.key for c in cols])


@task(name="latest-check-result", **STORE_RETRIES)
def latest_check_result(*, check_id: str, end: datetime) -> dict[str, Any] | None:
    q = (select(CheckResult).where(CheckResult.check_id == check_id, CheckResult.created_at < end)
         .order_by(CheckResult.created_at.desc()).limit(1))
    with session_scope(store_engine()) as session:
        r = session.scalars(q).first()
        return None if r is None else {"status": r.status, "value": r.value, "details": r.details or {},
                                       "created_at": r.created_at}


@task(name="load-metrics", **STORE_RETRIES)
def load_metrics(*, start: datetime, end: datetime, names: list[str] | None = None) -> pd.DataFrame:
    """Long frame: name, labels, labels_key, ts, value."""
    cols = [Metric.name, Metric.labels, Metric.labels_key, Metric.ts, Metric.value]
    q = select(*cols).where(Metric.ts >= start, Metric.ts < end)
    if names:
        q = q.where(Metric.name.in_(names))
    df = _frame(q, [c.key for c in cols])
    if not df.empty:
        df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df


@task(name="load-incidents", **STORE_RETRIES)
def load_incidents(*, start: datetime, end: datetime, include_open_before: bool = False) -> pd.DataFrame:
    """Incidents opened in [start, end) (plus, with include_open_before, every incident with a report, for
    action items)."""
    cols = [Incident.key, Incident.title, Incident.severity, Incident.type, Incident.status, Incident.is_drill,
            Incident.opened_at, Incident.acknowledged_at, Incident.resolved_at, Incident.report]
    cond = (Incident.opened_at >= start) & (Incident.opened_at < end)
    if include_open_before:
        cond = cond | ((Incident.opened_at < end) & Incident.report.is_not(None))
    return _frame(select(*cols).where(cond), [c.key for c in cols])


@task(name="load-approvals", **STORE_RETRIES)
def load_approvals(*, start: datetime, end: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Approval requests requested before `end` and still open, or decided/expiring in [start, end); their decisions."""
    cols = [ApprovalRequest.id, ApprovalRequest.procedure, ApprovalRequest.subject, ApprovalRequest.proposer,
            ApprovalRequest.status, ApprovalRequest.flow_run_id, ApprovalRequest.requested_at,
            ApprovalRequest.expires_at, ApprovalRequest.decided_at, ApprovalRequest.details]
    cond = (ApprovalRequest.requested_at < end) & (
        ApprovalRequest.status.in_(["pending", "escalated"])
        | ((ApprovalRequest.decided_at >= start) & (ApprovalRequest.decided_at < end))
        | ((ApprovalRequest.expires_at >= start) & (ApprovalRequest.expires_at < end)))
    requests = _frame(select(*cols).where(cond), [c.key for c in cols])
    dcols = [ApprovalDecision.request_id, ApprovalDecision.approver, ApprovalDecision.decision,
             ApprovalDecision.accepted, ApprovalDecision.decided_at]
    ids = [int(i) for i in requests["id"]] if not requests.empty else []
    decisions = _frame(select(*dcols).where(ApprovalDecision.request_id.in_(ids)), [c.key for c in dcols]) \
        if ids else pd.DataFrame(columns=[c.key for c in dcols])
    return requests, decisions


@task(name="load-chain-actions", **STORE_RETRIES)
def load_chain_actions(*, start: datetime, end: datetime) -> pd.DataFrame:
    cols = [ChainAction.idempotency_key, ChainAction.description, ChainAction.status, ChainAction.signed_tx_hash,
            ChainAction.block_number, ChainAction.created_at]
    return _frame(select(*cols).where(ChainAction.created_at >= start, ChainAction.created_at < end),
                  [c.key for c in cols])


@task(name="load-drills", **STORE_RETRIES)
def load_drills(*, end: datetime) -> pd.DataFrame:
    cols = [Drill.id, Drill.kind, Drill.started_at, Drill.ok, Drill.rto_seconds]
    return _frame(select(*cols).where(Drill.started_at < end), [c.key for c in cols])


@task(name="verify-audit-chain", retries=2, retry_delay_seconds=[1, 2])
def verify_audit() -> dict:
    with session_scope(store_engine()) as session:
        result = verify_audit_chain(session)
    return {"ok": result.ok, "checked": result.checked, "first_bad_id": result.first_bad_id, "reason": result.reason}


@task(name="failed-or-late-flow-runs", retries=2, retry_delay_seconds=[1, 2])
def failed_or_late_flow_runs(*, start: datetime, end: datetime, limit: int = 200) -> list[dict[str, Any]]:
    """Flow runs that failed, crashed, timed out or ran late in [start, end) from the Prefect API ([] when none)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterState,
        FlowRunFilterStateName,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    flt = FlowRunFilter(
        expected_start_time=FlowRunFilterExpectedStartTime(after_=start, before_=end),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.FAILED, StateType.CRASHED])),
    )
    late = FlowRunFilter(
        expected_start_time=FlowRunFilterExpectedStartTime(after_=start, before_=end),
        state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Late", "TimedOut"])),
    )
    rows: dict[str, dict[str, Any]] = {}
    with get_client(sync_client=True) as client:
        for f in (flt, late):
            for run in client.read_flow_runs(flow_run_filter=f, limit=limit):
                flow_name = ""
                try:
                    flow_name = client.read_flow(run.flow_id).name
                except Exception:  # noqa: BLE001 — a deleted flow still leaves its run worth listing
                    pass
                rows[str(run.id)] = {
                    "flow": flow_name, "run": run.name, "state": run.state.name if run.state else "?",
                    "expected_start": run.expected_start_time.strftime("%Y-%m-%d %H:%M")
                    if run.expected_start_time else "",
                    "message": ((run.state.message or "") if run.state else "")[:80]}
    return sorted(rows.values(), key=lambda r: r["expected_start"])
