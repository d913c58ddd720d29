"""Emergency Response Plans / recovery: unpause a paused contract — two leads, through the owner (timelock).

The guardian can pause but never unpause: `unpause()` is owner-only, and the owner is the timelock. Policy
`approval_policy("unpause")`: two ops_leads, proposer excluded. Then timelock schedule/execute with keys
`unpause:<run>:schedule` / `unpause:<run>:execute` (exactly once), `paused()` read back, audit, incident
timeline event (`recovery`) and the procedure's Slack thread.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.emergency_pause import incident_timeline_event
from tasks.chain import read_contract_state
from tasks.governance import procedure_update, run_through_timelock
from tasks.preflight import preflight
from tasks.reports import publish_markdown
from tasks.runtime import ops_config
from tasks.store import audit, current_flow_run_id
from vvops.chain.abi import contract_abi

PROCEDURE = "unpause"


@flow(name="unpause", log_prints=True)
def unpause(
    reason: str,
    requested_by: str,
    contract: str | None = None,
    incident_key: str | None = None,
    environment: str = "devnet",
    approval_poll_interval: float = 10,
    approval_deadline_seconds: float | None = None,
    proposal_signature: str = "",
    proposal_expires: int = 0,
) -> dict:
    """Two leads approve, then the timelock (owner) unpauses; verified on chain."""
    if (not_ready := preflight(environment)) is not None:
        return not_ready

    from tasks.approvals import prove_proposer, request_approval

    proposer_proof = prove_proposer(procedure=PROCEDURE, flow_fn=unpause, values=locals(), proposer=requested_by,
                                    environment=environment, signature=proposal_signature, expires=proposal_expires)
    logger = get_run_logger()
    run_id = current_flow_run_id() or "local"
    cfg = ops_config(environment)
    contract = contract or cfg.contract_for("pause-target").name
    state = read_contract_state(environment=environment, contract=contract)
    audit(actor=requested_by, action="unpause.requested", subject=contract,
          details={"reason": reason, "paused": state["values"].get("paused"), "incident": incident_key})
    if not state["values"].get("paused"):
        logger.warning("%s is not paused: nothing to do", contract)
        return {"contract": contract, "status": "not_paused", "paused": False}
    procedure_update(environment=environment, procedure=PROCEDURE, step="requested", actor=requested_by,
                     message=f"unpause {contract}: {reason}")

    # where a Safe proposes on the timelock, the leads' Safe confirmations of the schedule ARE the approval
    from tasks.safe import approve_timelock_call

    data = "0x" + contract_abi(cfg.contract(contract).abi_source).encode_call("unpause").hex()
    outcome = approve_timelock_call(
        schedule_key=f"{PROCEDURE}:{run_id}:schedule", target=contract, data=data,
        procedure=PROCEDURE, subject=f"unpause {contract}: {reason}", risk="high", proposer=requested_by,
        environment=environment,
        description_md=f"The timelock (owner) calls `unpause()` on `{contract}` ({state['address']}) after its "
                       f"delay; deposits and withdrawals resume.\n\nReason: {reason}",
        details={"contract": contract, "incident": incident_key}, poll_interval=approval_poll_interval,
        deadline_seconds=approval_deadline_seconds, proposer_proof=proposer_proof,
        execution={"contract": contract, "address": state["address"], "data": data})
    base = {"contract": contract, "approval_request_id": outcome.request_id, "approvers": outcome.approvers,
            "incident": incident_key}
    if not outcome.approved:
        audit(actor=requested_by, action="unpause.rejected", subject=contract,
              details={"reason": outcome.reason, "request_id": outcome.request_id})
        procedure_update(environment=environment, procedure=PROCEDURE, step="rejected",
                         message=f"not approved ({outcome.reason}); {contract} stays paused")
        return {**base, "status": "rejected", "paused": True}

    applied = run_through_timelock(environment=environment, key_prefix=f"{PROCEDURE}:{run_id}", target=contract,
                                   data=data, description=f"unpause {contract}")
    paused = bool(read_contract_state(environment=environment, contract=contract)["values"].get("paused"))
    audit(actor=", ".join(outcome.approvers), action="unpause.done" if not paused else "unpause.verification_failed",
          subject=contract, details={"execute_tx": applied["execute"]["tx_hash"], "paused": paused})
    if incident_key:
        incident_timeline_event(incident_key=incident_key, kind="recovery", actor=", ".join(outcome.approvers),
                                message=f"{contract} unpaused through the timelock",
                                data={"tx_hash": applied["execute"]["tx_hash"], "paused": paused})
    procedure_update(environment=environment, procedure=PROCEDURE, step="unpaused" if not paused else "failed",
                     message=f"{contract} paused={paused} (tx {applied['execute']['tx_hash']})")
    publish_markdown(key="unpause-report", description=f"{contract} paused={paused}",
                     markdown=f"# Unpause of {contract}\n\n- approvers: {', '.join(outcome.approvers)}\n"
                              f"- schedule tx: `{applied['schedule']['tx_hash']}`\n"
                              f"- execute tx: `{applied['execute']['tx_hash']}`\n- paused(): {paused}\n")
    if paused:
        raise RuntimeError(f"{contract}: unpause executed ({applied['execute']['tx_hash']}) but paused() is still true")
    return {**base, "status": "unpaused", "paused": False, "execute_tx": applied["execute"]["tx_hash"]}
