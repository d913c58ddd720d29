"""Human approval inside a flow: `request_approval(...)` stores the request, tells Slack, and pauses the run
with a form in the Prefect UI until the roster's rules say approved or rejected.

How it works
- The ops store is the source of truth (vvops/approvals/service.py). Each resume of the paused run brings
  one decision: from the UI form or the API (`decision`, `reason` and `signature`: an EIP-712 signature of
  the request's Decision statement, shown in the form, by the signer's roster address; recorded here with
  source "ui"), or from Slack / `vvops approve` (already proven and recorded in the store; they resume the
  run with `signature: "recorded:<how>"`, and the flow only re-reads the store, so such a decision counts
  exactly once and a resume carrying that marker adds nothing). Nothing in the run input is believed:
  a typed `approver` counts only where the environment's `identity.proofs` lists `typed_name` (devnet).
  A refused decision (bad or expired signature, unknown signer, wrong role, self-approval, duplicate) is
  stored and audited, and the run pauses again: it keeps waiting.
- The proposer is proven before anything runs (`prove_proposer`): an EIP-712 Proposal signature over the
  procedure's parameters (`vvops propose`), or a typed name where allowed; a procedure whose policy
  excludes the proposer refuses (audited `proposal.refused`) to start without that proof.
- Deadlines: every pause carries the REMAINING TOTAL deadline (policy `expiry_minutes` from the request
  time). Escalation after `escalate_after_minutes` is done outside the paused run by the
  `approval-escalation-sweep` flow (flows/approval_sweep.py), because a pause that times out ends the run
  Failed in Prefect 3.9 even when the flow catches `FlowPauseTimeout`.
- Expiry fails closed: when the total deadline passes, the request is stored as `rejected` with
  `details.outcome_reason = "expired"` (audited `approval.rejected` + `approval.expired`) before the run
  ends; Prefect then shows the run Failed ("paused and never resumed"). The store and the audit log say
  "rejected: expired"; the sweep does the same for a request whose run died.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import pydantic
from prefect import get_run_logger, pause_flow_run
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput
from prefect.runtime import flow_run as runtime_flow_run
from pydantic import Field

from tasks.runtime import ops_config, store_engine
from vvops.approvals import policy as rules
from vvops.approvals import service
from vvops.identity import Eip712Proof, IdentityContext, Refused, TypedNameProof, prove, proposal_statement
from vvops.identity.statements import proposal_parameters
from vvops.identity.proofs import NO_PROOF

APPROVE_ACTION_ID = "approval_approve"
REJECT_ACTION_ID = "approval_reject"
RECORDED = "recorded:"
"""Signature-field marker of a resume whose decision is already proven and stored (Slack, `vvops approve`)."""



class ProposerNotProven(PermissionError):
    """The procedure's proposer is not proven (audited `proposal.refused`); nothing was started."""


class ApprovalDecisionInput(RunInput):
    """The decision form (every environment): the decision, why, and the signature proving who decided."""

    decision: Literal["approve", "reject"] = Field(description="approve or reject")
    reason: str = Field(min_length=1, max_length=2000, description="why (kept in the audit log)")
    signature: str = Field(min_length=1, max_length=200, description=(
        "your EIP-712 signature (0x...) of the Decision shown above for the decision you choose, by the "
        "address config/team.yaml lists for you (cast wallet sign --data, your wallet, or `vvops approve`)"))


class DevnetDecisionInput(RunInput):
    """The decision form where config allows typed names (the devnet): a signature, or your person id."""

    decision: Literal["approve", "reject"] = Field(description="approve or reject")
    reason: str = Field(min_length=1, max_length=2000, description="why (kept in the audit log)")
    signature: str = Field(default="", max_length=200, description=(
        "your EIP-712 signature (0x...) of the Decision shown above; or leave empty and type your id below"))
    approver: str = Field(default="", max_length=64, description=(
        "devnet only: your person id from config/team.yaml, trusted as typed because this environment's "
        "config allows it (identity.proofs: typed_name); every other environment needs the signature"))


def form_with_description(base: type[RunInput], description: str) -> type[RunInput]:
    """A form class to pause with: required fields stay required (no with_initial_data, which marks every
    field optional); the markdown description is shown above it."""
    model = pydantic.create_model(base.__name__, __base__=base)
    model._description = description
    return model


def decision_form(*, typed_names: bool, description: str) -> type[RunInput]:
    """The decision form of this environment (typed names only where config allows them)."""
    return form_with_description(DevnetDecisionInput if typed_names else ApprovalDecisionInput, description)


@dataclass(frozen=True)
class ApprovalOutcome:
    approved: bool
    approvers: list[str]
    reason: str
    request_id: int
    status: str = "pending"
    rejecters: list[str] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _flow_run_id() -> str | None:
    run_id = runtime_flow_run.get_id()
    return str(run_id) if run_id else None


def describe(*, state: service.RequestState, risk: str, description_md: str, eligible: list[str],
             refusal: str | None = None, typed_names: bool = False) -> str:
    """The markdown shown above the Resume form: the decision, what runs on approve, what to sign."""
    proof = state.details.get("proposer_proof") or {}
    proposed = f"{state.proposer} (proven by {proof.get('proof') or proof.get('kind') or 'no proof'})"
    lines = [f"## Decide: {state.subject}", "",
             "| | |", "| --- | --- |",
             f"| Procedure | {state.procedure} |", f"| Risk | {risk} |", f"| Proposed by | {proposed} |",
             f"| Needs | {state.quorum} approval(s) from `{state.required_role}`"
             + (" (not the proposer)" if state.details.get("proposer_excluded", True) else "") + " |",
             f"| Approved so far | {', '.join(state.approvers) or 'nobody'} |",
             f"| May decide | {', '.join(eligible) or 'nobody on the roster'} |",
             f"| Expires | {state.expires_at.isoformat() if state.expires_at else 'never'} (then rejected: expired) |",
             f"| Request | #{state.id} |", "", "### What happens on approve", "", description_md.strip() or "-"]
    if refusal:
        lines += ["", f"> **Last decision refused:** {refusal}"]
    lines += ["", "### Sign your decision", "",
              "Sign the EIP-712 typed data for your decision with the key of the address config/team.yaml lists "
              "for you, and paste the signature. From a terminal: "
              f"`vvops approve {state.id} --decision approve|reject --reason ...` signs and submits in one step; "
              "with Foundry: `cast wallet sign --data \"$(cat decision.json)\"`.", ""]
    for decision in rules.DECISIONS:
        lines += [f"**{decision}**: digest `{service.statement_for(state, decision).digest()}`", "", "```json",
                  service.statement_for(state, decision).json(), "```", ""]
    if typed_names:
        lines += ["> This environment's config trusts typed names (`identity.proofs: typed_name`, devnet only): "
                  "you may leave the signature empty and type your person id as `approver` instead."]
    return "\n".join(lines)


def notify_safely(*, kind: str, channel_purpose: str, payload: dict[str, Any], idempotency_key: str,
                  thread_key: str | None, environment: str) -> bool:
    """Hand a message to the Slack outbox (tasks/notify.py); a missing or failing notifier never stops the flow."""
    logger = get_run_logger()
    try:
        from tasks.notify import notify  # built beside this module; optional until it lands
    except ImportError:
        logger.warning("tasks.notify is not available: %s message %s not sent", kind, idempotency_key)
        return False
    try:
        notify(kind=kind, channel_purpose=channel_purpose, payload=payload, idempotency_key=idempotency_key,
               thread_key=thread_key, environment=environment)
        return True
    except Exception as error:  # noqa: BLE001 - delivery problems are the outbox's to retry, not ours to fail on
        logger.warning("could not queue %s message %s: %s", kind, idempotency_key, error)
        return False


def _ui_url() -> str:
    from prefect.settings import PREFECT_UI_URL

    return (PREFECT_UI_URL.value() or "http://127.0.0.1:4200").rstrip("/")


def approval_request_payload(*, state: service.RequestState, risk: str, description_md: str,
                             people: Any = (), eligible: list[str] = ()) -> dict[str, Any]:
    """The fields of vvops.notify.messages.approval_request (Approve/Reject buttons carry the request id)."""
    by_id = {p.id: p for p in people}
    mentions = [f"<@{by_id[i].slack_user_id}>" for i in eligible if i in by_id and by_id[i].slack_user_id]
    return {"request_id": state.id, "procedure": state.procedure, "subject": state.subject, "risk": risk,
            "proposer": state.proposer, "on_approve": description_md, "ui_url": _ui_url(),
            "flow_run_id": state.flow_run_id or "", "required_role": state.required_role, "quorum": state.quorum,
            "expires_at": state.expires_at.isoformat() if state.expires_at else None, "mentions": mentions}


def notify_outcome(state: service.RequestState, environment: str) -> None:
    """A reply in the request's Slack thread: approved, rejected or expired."""
    status = "expired" if state.outcome_reason == "expired" else state.status
    by = ", ".join(state.approvers if state.status == "approved" else state.rejecters) or None
    notify_safely(kind="approval_update", channel_purpose=state.details.get("channel") or "approvals",
                  payload={"request_id": state.id, "status": status, "by": by, "reason": state.outcome_reason},
                  idempotency_key=f"approval-outcome-{state.id}", thread_key=f"approval-{state.id}",
                  environment=environment)


def _outcome(state: service.RequestState) -> ApprovalOutcome:
    return ApprovalOutcome(approved=state.status == "approved", approvers=list(state.approvers),
                           reason=state.outcome_reason or state.status, request_id=state.id, status=state.status,
                           rejecters=list(state.rejecters))


def identity_context(environment: str) -> IdentityContext:
    return IdentityContext.from_config(ops_config(environment))


def _proposal_seen(engine, digest: str) -> set[str]:
    """Flow runs that already used this signed proposal (one proposal starts one run; its reruns reuse it)."""
    from sqlalchemy import select

    from vvops.store import session_scope
    from vvops.store.models import AuditEntry

    with session_scope(engine) as session:
        rows = session.scalars(select(AuditEntry.details).where(AuditEntry.subject == f"proposal:{digest}",
                                                                AuditEntry.action == "proposal.proven"))
        return {str((d or {}).get("flow_run_id")) for d in rows}


def prove_proposer(*, procedure: str, flow_fn: Any, values: dict[str, Any], proposer: str, environment: str,
                   signature: str = "", expires: int = 0, required: bool | None = None) -> dict[str, Any]:
    """Prove who proposes this run before anything happens; returns the proof (kind and evidence) kept with the
    approval request. Raises ProposerNotProven (audited `proposal.refused`) when the proposer is not proven
    and the procedure's policy excludes the proposer (`required` overrides)."""
    from vvops.identity.statements import content_hash

    from tasks.store import audit

    cfg = ops_config(environment)
    ctx = IdentityContext.from_config(cfg)
    params = proposal_parameters(flow_fn, values)
    statement = proposal_statement(procedure=procedure, proposer=proposer, parameters=params,
                                   environment=environment, chain_id=ctx.chain_id, expires=int(expires or 0))
    run_id = _flow_run_id() or "local"
    engine = store_engine()
    digest = statement.digest()
    if signature:
        seen = _proposal_seen(engine, digest)
        if seen - {run_id}:
            proven: Any = Refused("replayed", f"this signed proposal already started flow run {sorted(seen)[0]}",
                                  "eip712", proposer)
        elif run_id in seen:  # a rerun of the same run: proven when it started
            return {"proof": "eip712", "digest": digest, "rerun": True}
        else:
            proven = prove(Eip712Proof(signature, claimed=proposer), statement, ctx)
    elif ctx.typed_names:
        proven = prove(TypedNameProof(proposer), statement, ctx)
    else:
        proven = Refused(NO_PROOF, f"{proposer!r} did not sign the proposal: {environment} needs a signed proposal "
                                   "(`vvops propose`) or a start from Slack", "", proposer)
    must = cfg.approval_policy(procedure).proposer_excluded if required is None else required
    details = {"procedure": procedure, "claimed_proposer": proposer, "parameters_hash": content_hash(params),
               "proof": proven.kind, **proven.evidence}
    if isinstance(proven, Refused):
        audit(actor=proposer[:200] or "(unknown)", action="proposal.refused", subject=f"proposal:{digest}",
              details={**details, "refusal_reason": proven.reason, "message": proven.message, "enforced": must})
        if must:
            raise ProposerNotProven(f"{procedure} not started: proposer not proven ({proven.reason}: {proven.message})")
        return {"proof": "unproven", "refusal_reason": proven.reason}
    audit(actor=proven.person, action="proposal.proven", subject=f"proposal:{digest}", details=details)
    return {"proof": proven.kind, **proven.evidence}


def request_approval(*, procedure: str, subject: str, risk: str, proposer: str, description_md: str,
                     environment: str, details: dict[str, Any] | None = None, severity: str | None = None,
                     poll_interval: float = 10, deadline_seconds: float | None = None,
                     proposer_proof: dict[str, Any] | None = None, execution: Any = None) -> ApprovalOutcome:
    """Ask the roster to approve `procedure` and wait (paused) for the decision; call it inside a flow.

    `risk`: low | medium | high | critical. `severity`: an incident severity the policy may auto-approve
    (e.g. P0 for emergency_pause). `deadline_seconds` overrides the policy's expiry (tests and drills).
    `proposer_proof`: from `prove_proposer` (required when the policy excludes the proposer). `execution`:
    what runs on approve (target and calldata); its hash is in every signed decision.
    Returns when approved, rejected (one authorised reject) or expired (rejected: expired; Prefect then
    marks the run Failed).
    """
    logger = get_run_logger()
    cfg = ops_config(environment)
    policy = cfg.approval_policy(procedure)
    ctx = IdentityContext.from_config(cfg)
    if policy.proposer_excluded and (proposer_proof or {}).get("proof") in (None, "unproven"):
        raise ProposerNotProven(f"{procedure}: the proposer {proposer!r} must be proven before asking for approval "
                                "(the policy excludes the proposer from approving)")
    engine = store_engine()
    run_id = _flow_run_id()
    request_id = service.create_request(engine, procedure=procedure, subject=subject, risk=risk, proposer=proposer,
                                        policy=policy, environment=environment, flow_run_id=run_id,
                                        details=details, deadline_seconds=deadline_seconds, chain_id=ctx.chain_id,
                                        execution=execution, proposer_proof=proposer_proof)
    state = service.get_state(engine, request_id)
    logger.info("approval request #%s for %s: %s (needs %s x %s)", request_id, procedure, subject, policy.quorum,
                policy.approver_role)

    if policy.auto_approves(severity):
        service.auto_approve(engine, request_id, reason=f"auto-approved for severity {severity}")
        state = service.get_state(engine, request_id)
        notify_outcome(state, environment)
        return _outcome(state)

    eligible = rules.eligible_approvers(cfg.people, role=state.required_role, proposer=proposer,
                                        proposer_excluded=bool(state.details.get("proposer_excluded", True)))
    notify_safely(kind="approval_request", channel_purpose=policy.channel,
                  payload=approval_request_payload(state=state, risk=risk, description_md=description_md,
                                                   people=cfg.people, eligible=eligible),
                  idempotency_key=f"approval-request-{request_id}", thread_key=f"approval-{request_id}",
                  environment=environment)

    refusal: str | None = None
    while state.is_open:
        remaining = rules.remaining_seconds(state.expires_at, _now()) if state.expires_at else 86400 * 365
        if remaining <= 0:
            service.expire_request(engine, request_id, force=True)
            state = service.get_state(engine, request_id)
            break
        form = decision_form(typed_names=ctx.typed_names,
                             description=describe(state=state, risk=risk, description_md=description_md,
                                                  eligible=eligible, refusal=refusal, typed_names=ctx.typed_names))
        try:
            answer = pause_flow_run(wait_for_input=form, timeout=max(1, math.ceil(remaining)),
                                    poll_interval=poll_interval)
        except FlowPauseTimeout:
            service.expire_request(engine, request_id, force=True)
            state = service.get_state(engine, request_id)
            logger.error("approval request #%s expired: rejected (fail closed)", request_id)
            notify_outcome(state, environment)
            raise
        refusal = _apply(engine, state, answer, ctx)
        state = service.get_state(engine, request_id)
        if refusal:
            logger.warning("approval request #%s: decision refused (%s); still waiting", request_id, refusal)

    notify_outcome(state, environment)
    outcome = _outcome(state)
    logger.info("approval request #%s %s: %s", request_id, outcome.status, outcome.reason)
    return outcome


def _apply(engine, state: service.RequestState, answer: Any, ctx: IdentityContext) -> str | None:
    """Count one resume's decision (after proving who made it); returns a refusal message or None."""
    signature = (getattr(answer, "signature", "") or "").strip()
    if signature.startswith(RECORDED):
        return None  # proven and stored by the Slack endpoint or `vvops approve`: the store already counts it
    typed = (getattr(answer, "approver", "") or "").strip()
    if signature:
        proof: Any = Eip712Proof(signature, claimed=typed or None)
    elif typed:
        proof = TypedNameProof(typed)
    else:
        proof = None
    result = service.record_decision(engine, request_id=state.id, decision=answer.decision,
                                     reason=answer.reason or None, source="ui", proof=proof, identity=ctx,
                                     context={"via": "prefect-run-input"})
    return None if result.accepted else f"{result.refusal_reason}: {result.message}"
