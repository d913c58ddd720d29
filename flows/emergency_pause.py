"""Emergency Response Plans / Smart Contract Incidents: the circuit breaker (guardian pause).

Policy `approval_policy("emergency_pause")`: a P0 (severity in `auto_approve_severities`) pauses at once and
the approval is recorded as automatic; any other severity waits for one ops_lead (the requester may approve:
in an emergency anyone on the role may act alone). The guardian key signs `pause()` exactly once (key
`emergency_pause:<run>:pause`), the flow reads `paused()` back, audits every step, adds a `containment`
event to the incident timeline (when an incident key is given) and posts to the procedure's Slack thread.

Unpausing is a separate procedure (flows/unpause.py): two leads and the owner (timelock) path.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, get_run_logger, task
from sqlalchemy import select

from tasks.chain import read_contract_state
from tasks.governance import guardian_pause, procedure_update
from tasks.preflight import preflight
from tasks.reports import publish_markdown
from tasks.runtime import ops_config, store_engine
from tasks.store import STORE_RETRIES, audit, current_flow_run_id
from vvops.store import append_audit, session_scope
from vvops.store.models import ChainAction, Incident, IncidentEvent
from vvops.watcher.containment import FAST_PATH_DESCRIPTION

PROCEDURE = "emergency_pause"


@task(name="incident-timeline-event", **STORE_RETRIES)
def incident_timeline_event(*, incident_key: str, kind: str, actor: str, message: str,
                            data: dict[str, Any] | None = None) -> bool:
    """Append an event to an incident's timeline (False when no incident has that key)."""
    with session_scope(store_engine(), immediate=True) as session:
        incident = session.scalar(select(Incident).where(Incident.key == incident_key))
        if incident is None:
            return False
        session.add(IncidentEvent(incident_id=incident.id, kind=kind, actor=actor, message=message,
                                  data={**(data or {}), "flow_run_id": current_flow_run_id()}))
        append_audit(session, actor=actor, action=f"incident.{kind}", subject=incident_key, source="flow",
                     details={"message": message})
        return True


@flow(name="emergency-pause", log_prints=True)
def emergency_pause(
    reason: str,
    requested_by: str,
    severity: Literal["P0", "P1", "P2", "P3"] = "P1",
    contract: str | None = None,
    incident_key: str | None = None,
    environment: str = "devnet",
    approval_poll_interval: float = 10,
    approval_deadline_seconds: float | None = None,
    idempotency_key: str | None = None,
) -> dict:
    """Circuit breaker: approval per policy (auto for P0), guardian pause exactly once, verified on chain.
    `idempotency_key` (incident-response passes the containment key of its alert): when the watcher's fast path
    already sent the pause under that key, the flow follows it to its receipt and records it, sending nothing."""
    if (not_ready := preflight(environment)) is not None:
        return not_ready
    logger = get_run_logger()
    run_id = current_flow_run_id() or "local"
    key = idempotency_key or f"{PROCEDURE}:{run_id}:pause"
    contract = contract or ops_config(environment).contract_for("pause-target").name
    state = read_contract_state(environment=environment, contract=contract)
    guardian = state["values"].get("guardian")
    already = bool(state["values"].get("paused"))
    fast_path = sent_by_fast_path(idempotency_key=key)
    audit(actor=requested_by, action="emergency_pause.requested", subject=contract,
          details={"reason": reason, "severity": severity, "already_paused": already, "guardian": guardian,
                   "incident": incident_key, "fast_path": fast_path})
    base = {"contract": contract, "guardian": guardian, "severity": severity, "incident": incident_key}
    if fast_path:
        logger.info("the watcher's containment fast path sent this pause (%s): recording it", fast_path)
        base.update(approval_request_id=None, approvers=[], approval=f"automatic containment: {fast_path}")
        return _pause_and_record(environment=environment, contract=contract, key=key, base=base, severity=severity,
                                 reason=reason, requested_by=requested_by, incident_key=incident_key, fast_path=True)
    if already:
        logger.warning("%s is already paused: nothing to do", contract)
        return {**base, "status": "already_paused", "paused": True, "already_paused": True}
    procedure_update(environment=environment, procedure=PROCEDURE, step="requested", actor=requested_by,
                     message=f"pause {contract} ({severity}): {reason}")

    from tasks.approvals import request_approval

    outcome = request_approval(
        procedure=PROCEDURE, subject=f"pause {contract} ({severity}): {reason}", risk="critical",
        proposer=requested_by, environment=environment, severity=severity,
        description_md=f"The guardian calls `pause()` on `{contract}` ({state['address']}): deposits and "
                       f"withdrawals stop until two leads unpause it through the timelock.\n\nReason: {reason}",
        details={"contract": contract, "incident": incident_key}, poll_interval=approval_poll_interval,
        deadline_seconds=approval_deadline_seconds)
    base.update(approval_request_id=outcome.request_id, approvers=outcome.approvers, approval=outcome.reason)
    if not outcome.approved:
        audit(actor=requested_by, action="emergency_pause.rejected", subject=contract,
              details={"reason": outcome.reason, "request_id": outcome.request_id})
        procedure_update(environment=environment, procedure=PROCEDURE, step="rejected",
                         message=f"not approved ({outcome.reason}); {contract} stays live")
        return {**base, "status": "rejected", "paused": False, "already_paused": False}

    return _pause_and_record(environment=environment, contract=contract, key=key, base=base, severity=severity,
                             reason=reason, requested_by=requested_by, incident_key=incident_key, fast_path=False)


@task(name="containment-fast-path-lookup", **STORE_RETRIES)
def sent_by_fast_path(*, idempotency_key: str) -> str | None:
    """The description of the pause stored under this key by the watcher's containment fast path, if any."""
    with session_scope(store_engine()) as session:
        description = session.scalar(select(ChainAction.description).where(
            ChainAction.idempotency_key == idempotency_key))
    if description is None or not description.startswith(FAST_PATH_DESCRIPTION):
        return None
    return description


def _pause_and_record(*, environment: str, contract: str, key: str, base: dict[str, Any], severity: str, reason: str,
                      requested_by: str, incident_key: str | None, fast_path: bool) -> dict[str, Any]:
    """guardian_pause under `key` (sends, or follows what the fast path sent), verify, audit, timeline, Slack."""
    approval = base.get("approval")
    sent = guardian_pause(environment=environment, contract=contract, idempotency_key=key)
    after = read_contract_state(environment=environment, contract=contract)
    paused = bool(after["values"].get("paused"))
    actor = "watcher" if fast_path else "guardian"
    audit(actor=actor, action="emergency_pause.paused" if paused else "emergency_pause.verification_failed",
          subject=contract, details={"tx_hash": sent.get("tx_hash"), "block_number": sent.get("block_number"),
                                     "paused": paused, "approval": approval, "idempotency_key": key,
                                     "fast_path": fast_path})
    if incident_key:
        how = "by the watcher's containment fast path" if fast_path else "by the guardian"
        incident_timeline_event(incident_key=incident_key, kind="containment", actor=actor,
                                message=f"{contract} paused {how} ({approval})",
                                data={"tx_hash": sent.get("tx_hash"), "paused": paused, "fast_path": fast_path,
                                      "block_number": sent.get("block_number"), "idempotency_key": key})
    procedure_update(environment=environment, procedure=PROCEDURE, step="paused" if paused else "failed",
                     message=f"{contract} paused={paused} (tx {sent.get('tx_hash')})")
    publish_markdown(key="emergency-pause-report", description=f"{contract} paused={paused}",
                     markdown=f"# Emergency pause of {contract}\n\n| | |\n| --- | --- |\n| severity | {severity} |\n"
                              f"| reason | {reason} |\n| requested by | {requested_by} |\n"
                              f"| approval | {approval} |\n| guardian | {base.get('guardian')} |\n"
                              f"| tx | `{sent.get('tx_hash')}` (block {sent.get('block_number')}) |\n"
                              f"| sent by | {'watcher fast path' if fast_path else 'this run'} |\n"
                              f"| paused() | {paused} |\n| incident | {incident_key or '-'} |\n")
    if not paused:
        raise RuntimeError(f"{contract}: pause transaction {sent.get('tx_hash')} mined but paused() is false")
    return {**base, "status": "paused", "paused": True, "already_paused": False, "tx_hash": sent.get("tx_hash"),
            "block_number": sent.get("block_number"), "fast_path": fast_path}
