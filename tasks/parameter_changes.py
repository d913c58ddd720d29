"""Tasks of a parameter change that keep it to its limits and make it resumable.

- `open_change`: the change id names the change (environment, contract, parameter, value); a rerun of a change
  that has not finished finds it and resumes — what is stored (approval, scheduled operation) is reused, nothing
  is scheduled twice. A finished change makes the next identical proposal a new change (`...#2`).
- `enforce_limits`: the relative-change limit and the cooldown of `procedures.yaml` against the value on chain
  and the parameter's last executed change; a refusal is audited with the rule that refused it.
- `refuse_proposal`: audit a refused proposal (`parameter_change.refused`, with `rule`) and raise it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

from prefect import task
from sqlalchemy import func, select

from tasks.policies import STORE_RETRIES
from tasks.runtime import ops_config, store_engine
from tasks.store import current_flow_run_id
from vvops.procedures.parameters import ProposalRejected, check_change_limits
from vvops.store import session_scope
from vvops.store.change_models import APPLIED_STATUSES, OPEN_STATUSES, ParameterChange
from vvops.store.refusals import audit_refusal

RESUMABLE_PAST_APPROVAL = ("approved", "scheduled", "executed")


def change_base_id(environment: str, contract: str, parameter: str, new_value: int) -> str:
    digest = hashlib.sha256(f"{environment}|{contract}|{parameter}|{new_value}".encode()).hexdigest()[:12]
    return f"pc-{parameter[:40]}-{digest}"


@task(name="open-parameter-change", **STORE_RETRIES)
def open_change(*, environment: str, contract: str, parameter: str, new_value: int, proposer: str,
                change_id: str | None = None) -> dict[str, Any]:
    """The change this run works on: an unfinished one with the same id (resumed), or a new one."""
    base = change_id or change_base_id(environment, contract, parameter, new_value)
    with session_scope(store_engine(), immediate=True) as session:
        rows = session.scalars(select(ParameterChange).where(
            (ParameterChange.change_id == base) | ParameterChange.change_id.like(base + "#%"))).all()
        open_rows = [r for r in rows if r.status in OPEN_STATUSES]
        if open_rows:
            row = max(open_rows, key=lambda r: r.created_at)
            if (row.environment, row.contract, row.parameter, row.new_value) != (environment, contract, parameter,
                                                                                  str(new_value)):
                raise ProposalRejected(f"change id {row.change_id} is {row.contract}.{row.parameter} = "
                                       f"{row.new_value} on {row.environment}, not this change", "parameters.change_id")
            row.flow_run_id = current_flow_run_id()
            return {"change_id": row.change_id, "status": row.status, "resumed": True,
                    "previous_value": row.previous_value,
                    "approvers": (row.approvers or "").split(",") if row.approvers else []}
        new_id = base if not rows else f"{base}#{len(rows) + 1}"
        session.add(ParameterChange(change_id=new_id, environment=environment, contract=contract, parameter=parameter,
                                    new_value=str(new_value), proposer=proposer, status="proposed",
                                    flow_run_id=current_flow_run_id()))
        return {"change_id": new_id, "status": "proposed", "resumed": False, "previous_value": None, "approvers": []}


@task(name="mark-parameter-change", **STORE_RETRIES)
def mark_change(change_id: str, status: str, **fields: Any) -> None:
    with session_scope(store_engine(), immediate=True) as session:
        row = session.get(ParameterChange, change_id)
        if row is None:
            return
        row.status = status
        for key, value in fields.items():
            setattr(row, key, value)
        if status == "executed" and row.executed_at is None:
            row.executed_at = datetime.now(timezone.utc)


def _last_change_at(environment: str, contract: str, parameter: str, change_id: str) -> datetime | None:
    with session_scope(store_engine()) as session:
        return session.scalar(select(func.max(ParameterChange.executed_at)).where(
            ParameterChange.environment == environment, ParameterChange.contract == contract,
            ParameterChange.parameter == parameter, ParameterChange.change_id != change_id,
            ParameterChange.status.in_(APPLIED_STATUSES)))


@task(name="refuse-proposal", **STORE_RETRIES)
def record_refusal(*, proposer: str, subject: str, change_id: str | None, rule: str, reason: str,
                   details: dict[str, Any]) -> None:
    with session_scope(store_engine(), immediate=True) as session:
        audit_refusal(session, actor=proposer, action="parameter_change.refused", subject=subject, source="flow",
                      rule=rule, reason=reason,
                      details={**details, "change_id": change_id, "flow_run_id": current_flow_run_id()})
        if change_id and (row := session.get(ParameterChange, change_id)) is not None:
            row.status = "refused"


def refuse_proposal(error: ProposalRejected, *, proposer: str, subject: str, change_id: str | None = None,
                    details: dict[str, Any] | None = None) -> ProposalRejected:
    """Audit the refusal with its rule; returns the error for the caller to raise."""
    record_refusal(proposer=proposer, subject=subject, change_id=change_id, rule=error.rule, reason=str(error),
                   details=details or {})
    return error


def enforce_limits(*, environment: str, contract: str, parameter: str, current: int | None, new_value: int,
                   change_id: str, proposer: str, now: datetime | None = None) -> None:
    """Relative change and cooldown from procedures.yaml; audited and raised when refused."""
    limits = ops_config(environment).procedures.parameter_changes
    try:
        check_change_limits(parameter=parameter, current=None if current is None else int(current),
                            new_value=new_value, max_relative_change_pct=limits.max_relative_change_pct,
                            cooldown_hours=limits.cooldown_hours,
                            last_change_at=_last_change_at(environment, contract, parameter, change_id),
                            now=now or datetime.now(timezone.utc))
    except ProposalRejected as error:
        raise refuse_proposal(error, proposer=proposer, subject=f"{contract}.{parameter}", change_id=change_id,
                              details={"current_value": str(current), "new_value": str(new_value)}) from None


def setter_type(abi: Any, contract_cfg: Any, parameter: str) -> str | None:
    """The Solidity type of the setter's single argument (`uint16`...), from the contract's ABI."""
    spec = contract_cfg.parameters.get(parameter)
    if spec is None or not spec.setter:
        return None
    try:
        inputs = abi.function(spec.setter).get("inputs", [])
    except KeyError:
        return None
    return inputs[0].get("type") if len(inputs) == 1 else None


def resumed_approval(change: dict[str, Any]):
    """The approval a resumed change already holds (stored when it was approved; not asked again)."""
    from tasks.approvals import ApprovalOutcome

    return ApprovalOutcome(approved=True, approvers=list(change["approvers"]), status="approved", request_id=0,
                           reason=f"approved earlier; change {change['change_id']} resumed at {change['status']}")
