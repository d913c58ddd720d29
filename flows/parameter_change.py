"""Protocol Operations / Parameter Change Process, end to end on the chain.

validate bounds and type → impact analysis on a throwaway anvil fork of the chain (health checks and invariants
before/after; nothing touches the chain itself; "not simulated" said plainly when no fork can be made) → approval (parameter_change policy: ops_lead, proposer excluded) → governance submission
(timelock.schedule, key `parameter_change:<change id>:schedule`; a rerun of the same change resumes it) → wait for the delay (devnet: time travel) →
execute (`...:execute`) → post-change verification (value read back, no health check worse than before) → on
failure roll back to the previous value through the same timelock path (`...:rollback:schedule/execute`) and
open an incident → audit every step, report (markdown artifact) and tell the procedure's Slack thread.

A rejected (or expired) approval sends nothing. Every transaction is exactly-once by its key: a retry of the
same flow run never sends twice. The rollback is an explicit branch rather than a Prefect rollback hook: it is
itself a keyed on-chain procedure that must also run when the verification is repeated after a crash, and
hooks only run inside the live process.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, get_run_logger

from tasks.chain import contract_state_outcomes, read_contract_state
from tasks.contract_slots import hold_contract_slots
from tasks.governance import procedure_update, run_through_timelock
from tasks.preflight import preflight
from tasks.simulation import simulate_on_fork
from tasks.reports import publish_markdown
from tasks.runtime import ops_config
from tasks.parameter_changes import (RESUMABLE_PAST_APPROVAL, enforce_limits, mark_change, open_change,
                                     refuse_proposal, resumed_approval, setter_type)
from tasks.store import audit, open_incident
from vvops.chain.abi import contract_abi
from vvops.procedures.impact import ImpactReport, diff_health, not_simulated
from vvops.procedures.parameters import ProposalRejected, ProposedValue, validate_parameter_change

PROCEDURE = "parameter_change"


class ParameterChangeRolledBack(RuntimeError):
    """Post-change verification failed; the previous value was restored and an incident opened."""


def _outcome_dicts(environment: str, state: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": o.id, "status": o.status, "message": o.message}
            for o in contract_state_outcomes(environment, state, open_incident=False)]


def _health(environment: str, contract: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    state = read_contract_state(environment=environment, contract=contract)
    return state["values"], _outcome_dicts(environment, state)


def _impact(environment: str, contract: str, setter_data: str) -> ImpactReport:
    sim = simulate_on_fork(environment=environment, contract=contract, calls=[{"to": contract, "data": setter_data}])
    if not sim["simulated"]:
        return not_simulated(sim["not_simulated"])
    return diff_health(before_values=sim["before"], after_values=sim["after"], outcomes_before=sim["outcomes_before"],
                       outcomes_after=sim["outcomes_after"], error=sim["error"])


def _verify(*, environment: str, contract: str, getter: str, expected: int, values_before: dict[str, Any],
            outcomes_before: list[dict[str, Any]]) -> tuple[bool, str, ImpactReport]:
    values, outcomes = _health(environment, contract)
    report = diff_health(before_values=values_before, after_values=values, outcomes_before=outcomes_before,
                         outcomes_after=outcomes)
    problems = []
    if values.get(getter) != expected:
        problems.append(f"{getter} reads {values.get(getter)} on chain, expected {expected}")
    problems += [f"{c.check_id} {c.before} → {c.after}" for c in report.regressions]
    return not problems, "; ".join(problems) or f"{getter} = {expected}; health checks pass", report


@flow(name="parameter-change", log_prints=True)
def parameter_change(
    parameter: str,
    new_value: ProposedValue,
    proposer: str,
    justification: str = "",
    risk: Literal["low", "medium", "high", "critical"] = "medium",
    contract: str | None = None,
    environment: str = "devnet",
    approval_poll_interval: float = 10,
    approval_deadline_seconds: float | None = None,
    slot_wait_seconds: float | None = 3600,
    change_id: str | None = None,
    proposal_signature: str = "",
    proposal_expires: int = 0,
) -> dict:
    """Change one bounded parameter through the timelock, with impact analysis, approval, verification, rollback."""
    if (not_ready := preflight(environment)) is not None:
        return not_ready

    from tasks.approvals import prove_proposer, request_approval

    # 0. Who proposes it, proven (a signed proposal from `vvops propose`, or a typed name where config allows)
    proposer_proof = prove_proposer(procedure=PROCEDURE, flow_fn=parameter_change, values=locals(), proposer=proposer,
                                    environment=environment, signature=proposal_signature, expires=proposal_expires)
    logger = get_run_logger()
    cfg = ops_config(environment)
    contract = contract or cfg.contract_for("parameter-target").name
    subject = f"{contract}.{parameter}"

    # 1. Change Preparation: type, Solidity type, bounds; the change id (a rerun of the same change resumes it)
    abi = contract_abi(cfg.contract(contract).abi_source)
    try:
        proposal = validate_parameter_change(contract=cfg.contract(contract), parameter=parameter, new_value=new_value,
                                             solidity_type=setter_type(abi, cfg.contract(contract), parameter))
    except ProposalRejected as exc:
        raise refuse_proposal(exc, proposer=proposer, subject=subject, details={"new_value": str(new_value)}) from None
    change = open_change(environment=environment, contract=contract, parameter=parameter,
                         new_value=proposal.new_value, proposer=proposer, change_id=change_id)
    change_id = change["change_id"]
    key_prefix = f"{PROCEDURE}:{change_id}"
    # One change per contract at a time: held from reading the current value until verified or rolled back
    with hold_contract_slots(contracts=[(environment, contract)], procedure=PROCEDURE, change_id=change_id,
                             timeout_seconds=slot_wait_seconds):
        spec = cfg.contract(contract).parameters[parameter]
        state = read_contract_state(environment=environment, contract=contract)
        current = state["values"].get(spec.getter)
        past_approval = change["status"] in RESUMABLE_PAST_APPROVAL
        if change["resumed"]:
            audit(actor=proposer, action="parameter_change.resumed", subject=subject,
                  details={"change_id": change_id, "status": change["status"]})
        if past_approval and change.get("previous_value") is not None:
            current = int(change["previous_value"])  # the value before this change, even if it already executed
        else:
            enforce_limits(environment=environment, contract=contract, parameter=parameter, current=current,
                           new_value=proposal.new_value, change_id=change_id, proposer=proposer)
            mark_change(change_id, "proposed", previous_value=None if current is None else str(current))
        audit(actor=proposer, action="parameter_change.proposed", subject=subject,
              details={"current_value": str(current), "new_value": str(proposal.new_value), "risk": risk,
                       "justification": justification, "environment": environment})
        procedure_update(environment=environment, procedure=PROCEDURE, step="proposed", actor=proposer,
                         message=f"{subject}: {current} → {proposal.new_value} ({risk} risk)")
        if current == proposal.new_value and not past_approval:
            mark_change(change_id, "no_change")
            audit(actor=proposer, action="parameter_change.no_change", subject=subject, details={"value": str(current)})
            return {"status": "no_change", "contract": contract, "parameter": parameter, "current_value": current,
                    "new_value": proposal.new_value}

        # 2. Technical impact analysis on a throwaway fork of the chain
        setter_data = "0x" + abi.encode_call(spec.setter, proposal.new_value).hex()
        impact = _impact(environment, contract, setter_data)
        from tasks.amounts import formatter_for

        shown = formatter_for(environment, contract, state["values"])   # token amounts with their symbol
        old, new = shown(spec.getter, current), shown(spec.getter, proposal.new_value)
        unit = "" if getattr(spec, "decimals", None) is not None else f" {spec.unit}"   # amounts carry their symbol
        impact_md = impact.markdown(f"Impact of {subject} {old} → {new}", format_value=shown)
        publish_markdown(key="parameter-change-impact", description=f"{subject}: {impact.summary()}"[:500],
                         markdown=impact_md)
        audit(actor="ops", action="parameter_change.impact_analysed", subject=subject,
              details={"ok": impact.ok, "simulated": impact.simulated, "summary": impact.summary(),
                       "regressions": [c.check_id for c in impact.regressions]})
        if impact.error:
            raise ProposalRejected(f"{subject} = {proposal.new_value} fails on a fork of the chain: {impact.error}")

        # 3. Approval (roles and quorum from config, proposer excluded); where a Safe proposes on the timelock,
        #    the leads' Safe confirmations of the schedule ARE the approval (tasks/safe.py)
        from tasks.safe import approve_timelock_call

        warning = "" if impact.simulated else f"**⚠ NOT SIMULATED** — {impact.not_simulated_reason}.\n\n"
        description_md = (f"{warning}Set `{subject}` from **{old}** to **{new}**{unit} through the "
                          f"timelock (bounds [{shown(spec.getter, proposal.minimum)}, "
                          f"{shown(spec.getter, proposal.maximum)}]).\n\n**Justification:** "
                          f"{justification or '-'}\n\n{impact_md}")
        outcome = resumed_approval(change) if past_approval else approve_timelock_call(
            schedule_key=f"{key_prefix}:schedule", target=contract, data=setter_data,
            procedure=PROCEDURE, subject=f"{subject}: {current} → {proposal.new_value}", risk=risk,
            proposer=proposer, description_md=description_md, environment=environment,
            details={"contract": contract, "parameter": parameter, "current": str(current),
                     "new_value": str(proposal.new_value), "simulated": impact.simulated,
                     "impact": impact.summary(), "change_id": change_id},
            poll_interval=approval_poll_interval, deadline_seconds=approval_deadline_seconds,
            proposer_proof=proposer_proof,
            execution={"contract": contract, "address": state["address"], "data": setter_data})
        base = {"change_id": change_id, "contract": contract, "parameter": parameter, "previous_value": current,
                "new_value": proposal.new_value,
                "approval_request_id": outcome.request_id, "approvers": outcome.approvers,
                "impact": impact.summary()}
        if not outcome.approved:
            mark_change(change_id, "rejected")
            audit(actor=proposer, action="parameter_change.rejected", subject=subject,
                  details={"reason": outcome.reason, "request_id": outcome.request_id})
            procedure_update(environment=environment, procedure=PROCEDURE, step="rejected",
                             message=f"{subject}: not approved ({outcome.reason}); nothing sent")
            _report(subject, {**base, "status": "rejected", "reason": outcome.reason}, impact_md)
            return {**base, "status": "rejected", "reason": outcome.reason}
        audit(actor=", ".join(outcome.approvers), action="parameter_change.approved", subject=subject,
              details={"request_id": outcome.request_id})
        if not past_approval:
            mark_change(change_id, "approved", approvers=",".join(outcome.approvers)[:500])
        procedure_update(environment=environment, procedure=PROCEDURE, step="approved",
                         message=f"approved by {', '.join(outcome.approvers)}; queueing on the timelock")

        # 4-6. Governance submission, delay, execution
        applied = run_through_timelock(environment=environment, key_prefix=key_prefix, target=contract,
                                       data=setter_data, description=f"{subject} {current} → {proposal.new_value}")
        mark_change(change_id, "executed", operation_id=applied["schedule"]["operation_id"])
        audit(actor="governance", action="parameter_change.executed", subject=subject,
              details={"schedule_tx": applied["schedule"]["tx_hash"], "execute_tx": applied["execute"]["tx_hash"],
                       "operation_id": applied["schedule"]["operation_id"], "waited": applied["wait"]["mode"]})
        procedure_update(environment=environment, procedure=PROCEDURE, step="executed",
                         message=f"executed in block {applied['execute']['block_number']}; verifying")

        # 7. Post-change verification (expected change: the parameter itself)
        ok, detail, _ = _verify(environment=environment, contract=contract, getter=spec.getter,
                                expected=proposal.new_value, values_before=state["values"],
                                outcomes_before=_outcome_dicts(environment, state))
        txs = {"schedule": applied["schedule"]["tx_hash"], "execute": applied["execute"]["tx_hash"]}
        if ok:
            mark_change(change_id, "verified")
            audit(actor="ops", action="parameter_change.verified", subject=subject, details={"detail": detail})
            procedure_update(environment=environment, procedure=PROCEDURE, step="verified", message=detail)
            result = {**base, "status": "applied", "verification": detail, "transactions": txs}
            _report(subject, result, impact_md)
            return result

        # 8. Roll back through the same path, open an incident
        logger.error("verification of %s failed: %s — rolling back to %s", subject, detail, current)
        audit(actor="ops", action="parameter_change.verification_failed", subject=subject, details={"detail": detail})
        procedure_update(environment=environment, procedure=PROCEDURE, step="verification-failed",
                         message=f"{detail}; rolling back to {current}")
        rollback_data = "0x" + abi.encode_call(spec.setter, int(current)).hex()
        rolled = run_through_timelock(environment=environment, key_prefix=f"{key_prefix}:rollback", target=contract,
                                      data=rollback_data, description=f"rollback {subject} → {current}")
        back_ok, back_detail, _ = _verify(environment=environment, contract=contract, getter=spec.getter,
                                          expected=int(current), values_before=state["values"],
                                          outcomes_before=_outcome_dicts(environment, state))
        incident = open_incident(
            title=f"Parameter change {subject} → {proposal.new_value} failed verification"
                  + ("; rolled back" if back_ok else "; ROLLBACK DID NOT VERIFY"),
            incident_type="technical", severity="P2" if back_ok else "P1", commander=None, opened_by="parameter-change",
            data={"detail": detail, "rollback": back_detail, "previous_value": str(current),
                  "new_value": str(proposal.new_value), "rollback_execute_tx": rolled["execute"]["tx_hash"]})
        mark_change(change_id, "rolled_back")
        audit(actor="ops", action="parameter_change.rolled_back", subject=subject,
              details={"verified": back_ok, "detail": back_detail, "incident": incident,
                       "execute_tx": rolled["execute"]["tx_hash"]})
        procedure_update(environment=environment, procedure=PROCEDURE, step="rolled-back",
                         message=f"rolled back to {current} ({back_detail}); incident {incident}")
        result = {**base, "status": "rolled_back", "verification": detail, "rollback_verified": back_ok,
                  "rollback": back_detail, "incident": incident,
                  "transactions": {**txs, "rollback_schedule": rolled["schedule"]["tx_hash"],
                                   "rollback_execute": rolled["execute"]["tx_hash"]}}
        _report(subject, result, impact_md)
        raise ParameterChangeRolledBack(f"{subject}: verification failed ({detail}); rolled back to {current} "
                                        f"({'verified' if back_ok else 'NOT verified'}); incident {incident}")


def _report(subject: str, result: dict[str, Any], impact_md: str) -> None:
    rows = "\n".join(f"| {k} | {v} |" for k, v in result.items() if k not in ("transactions", "impact"))
    txs = "\n".join(f"- {k}: `{v}`" for k, v in (result.get("transactions") or {}).items()) or "- none (nothing sent)"
    publish_markdown(key="parameter-change-report", description=f"{subject}: {result['status']}",
                     markdown=f"# Parameter change {subject}: {result['status']}\n\n| | |\n| --- | --- |\n{rows}\n\n"
                              f"## Transactions\n\n{txs}\n\n{impact_md}\n")
