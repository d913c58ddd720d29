"""Human approval inside a flow: `request_approval(...)` stores the request, tells Slack, and pauses the run
with a form in the Prefect UI until the roster's rules say approved or rejected.

How it works
- The ops store is the source of truth (vvops/approvals/service.py). Each resume of the paused run brings
  one decision: from the UI form (`decision`, `approver`, `reason`: recorded here with source "ui") or from
  Slack (the endpoint in vvops/slack_app has already verified and recorded it, and resumes the run with
  `slack_decision_id`; the flow only re-reads the store, so a Slack decision counts exactly once).
  A refused decision (wrong role, self-approval, duplicate, unknown person) is stored and audited, and the
  run pauses again: it keeps waiting.
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

from prefect import get_run_logger, pause_flow_run
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput
from prefect.runtime import flow_run as runtime_flow_run
from pydantic import Field

from tasks.runtime import ops_config, store_engine
from vvops.approvals import policy as rules
from vvops.approvals import service

APPROVE_ACTION_ID = "approval_approve"
REJECT_ACTION_ID = "approval_reject"


class ApprovalDecisionInput(RunInput):
    """The form a lead fills in the Prefect UI to decide on a paused procedure."""

    decision: Literal["approve", "reject"] = Field(description="approve or reject")
    approver: str = Field(description="your person id from config/team.yaml (e.g. amara)")
    reason: str = Field(default="", description="why (kept in the audit log)")
    slack_decision_id: int | None = Field(
        default=None, description="set by the Slack endpoint for a decision made in Slack; leave empty")


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
             refusal: str | None = None) -> str:
    """The markdown shown above the Resume form."""
    lines = [f"## Approval needed: {state.subject}", "",
             f"- **Procedure:** {state.procedure}", f"- **Risk:** {risk}",
             f"- **Proposed by:** {state.proposer}",
             f"- **Needs:** {state.quorum} approval(s) from role `{state.required_role}`"
             + (" (not the proposer)" if state.details.get("proposer_excluded", True) else ""),
             f"- **Approved so far:** {', '.join(state.approvers) or 'nobody'}",
             f"- **May decide:** {', '.join(eligible) or 'nobody on the roster'}",
             f"- **Expires:** {state.expires_at.isoformat() if state.expires_at else 'never'} "
             "(then it is rejected: expired)",
             f"- **Request:** #{state.id}", "", "### What happens on approve", "", description_md.strip() or "-"]
    if refusal:
        lines += ["", f"> Last decision refused: {refusal}"]
    lines += ["", "Fill in `decision`, your person id as `approver` and a `reason`, then submit. "
              "Leave `slack_decision_id` empty."]
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


def request_approval(*, procedure: str, subject: str, risk: str, proposer: str, description_md: str,
                     environment: str, details: dict[str, Any] | None = None, severity: str | None = None,
                     poll_interval: float = 10, deadline_seconds: float | None = None) -> ApprovalOutcome:
    """Ask the roster to approve `procedure` and wait (paused) for the decision; call it inside a flow.

    `risk`: low | medium | high | critical. `severity`: an incident severity the policy may auto-approve
    (e.g. P0 for emergency_pause). `deadline_seconds` overrides the policy's expiry (tests and drills).
    Returns when approved, rejected (one authorised reject) or expired (rejected: expired; Prefect then
    marks the run Failed).
    """
    logger = get_run_logger()
    cfg = ops_config(environment)
    policy = cfg.approval_policy(procedure)
    engine = store_engine()
    run_id = _flow_run_id()
    request_id = service.create_request(engine, procedure=procedure, subject=subject, risk=risk, proposer=proposer,
                                        policy=policy, environment=environment, flow_run_id=run_id,
                                        details=details, deadline_seconds=deadline_seconds)
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
        form = ApprovalDecisionInput.with_initial_data(
            description=describe(state=state, risk=risk, description_md=description_md, eligible=eligible,
                                 refusal=refusal),
            decision="approve", approver="", reason="")
        try:
            answer = pause_flow_run(wait_for_input=form, timeout=max(1, math.ceil(remaining)),
                                    poll_interval=poll_interval)
        except FlowPauseTimeout:
            service.expire_request(engine, request_id, force=True)
            state = service.get_state(engine, request_id)
            logger.error("approval request #%s expired: rejected (fail closed)", request_id)
            notify_outcome(state, environment)
            raise
        refusal = _apply(engine, state, answer, cfg.people)
        state = service.get_state(engine, request_id)
        if refusal:
            logger.warning("approval request #%s: decision refused (%s); still waiting", request_id, refusal)

    notify_outcome(state, environment)
    outcome = _outcome(state)
    logger.info("approval request #%s %s: %s", request_id, outcome.status, outcome.reason)
    return outcome


def _apply(engine, state: service.RequestState, answer: ApprovalDecisionInput, people) -> str | None:
    """Count one resume's decision; returns a refusal message or None."""
    if answer.slack_decision_id is not None:
        stored = service.get_decision(engine, answer.slack_decision_id)
        if stored is None or stored.request_id != state.id:
            service.audit_event(engine, actor=answer.approver or "(unknown)", action="approval.decision.refused",
                                request_id=state.id, source="ui",
                                details={"refusal_reason": "unknown_decision_id",
                                         "slack_decision_id": answer.slack_decision_id})
            return f"decision #{answer.slack_decision_id} does not belong to request #{state.id}"
        return None if stored.accepted else stored.refusal_reason  # already validated, stored and audited
    result = service.record_decision(engine, request_id=state.id, approver=answer.approver, decision=answer.decision,
                                     reason=answer.reason or None, source="ui", people=people,
                                     context={"via": "prefect-run-input"})
    return None if result.accepted else result.message
