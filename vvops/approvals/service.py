"""Approval requests and decisions in the ops store: every change is one transaction with its audit entry.

- `create_request` stores a pending request (deadlines from the policy) and audits `approval.requested`.
- `record_decision` first proves who decided (`vvops.identity`: an EIP-712 signature over the request's
  Decision statement, a verified Slack action, or a typed name where the environment allows it), then
  validates the decision with `policy.validate_decision`; it stores it either way (accepted, or refused with
  the reason: bad signature, wrong signer, expired, self-approval, unknown person...), audits it
  (`approval.decision.accepted` / `.refused`, with the proof), and closes the request when the quorum is
  reached or an authorised person rejects.
- `expire_request` fails a request closed: status `rejected`, `details.outcome_reason = "expired"`,
  audited as `approval.expired`.
- `due_for_escalation` / `mark_escalated` serve the escalation sweep (exactly once per request).

The store is the source of truth; the paused Prefect run only waits and re-reads it (see tasks/approvals.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from vvops.identity import IdentityContext, Refused, decision_statement, prove
from vvops.identity.statements import Statement, content_hash
from vvops.store import append_audit, session_scope
from vvops.store.models import ApprovalDecision, ApprovalRequest

from . import policy as rules

ACTOR_SYSTEM = "vvops-approvals"


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc)


def subject_of(request_id: int) -> str:
    return f"approval:{request_id}"


@dataclass(frozen=True)
class RequestState:
    id: int
    procedure: str
    subject: str
    status: str
    quorum: int
    required_role: str
    proposer: str
    approvers: list[str]
    rejecters: list[str]
    expires_at: datetime | None
    flow_run_id: str | None
    outcome_reason: str | None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.status in rules.OPEN_STATUSES


@dataclass(frozen=True)
class DecisionResult:
    decision_id: int | None
    accepted: bool
    refusal_reason: str | None
    message: str
    state: RequestState


def _view(req: ApprovalRequest) -> rules.RequestView:
    return rules.RequestView(proposer=req.proposer, required_role=req.required_role, quorum=req.quorum,
                             proposer_excluded=bool((req.details or {}).get("proposer_excluded", True)),
                             status=req.status, expires_at=req.expires_at)


def _votes(req: ApprovalRequest) -> list[rules.Vote]:
    return [rules.Vote(d.approver, d.decision) for d in req.decisions if d.accepted]


def _state(req: ApprovalRequest) -> RequestState:
    t = rules.tally(req.quorum, _votes(req))
    details = dict(req.details or {})
    return RequestState(id=req.id, procedure=req.procedure, subject=req.subject, status=req.status,
                        quorum=req.quorum, required_role=req.required_role, proposer=req.proposer,
                        approvers=t.approvers, rejecters=t.rejecters, expires_at=req.expires_at,
                        flow_run_id=req.flow_run_id, outcome_reason=details.get("outcome_reason"), details=details)


def create_request(engine: Engine, *, procedure: str, subject: str, risk: str, proposer: str, policy: Any,
                   environment: str, flow_run_id: str | None = None, details: dict[str, Any] | None = None,
                   now: datetime | None = None, deadline_seconds: float | None = None,
                   actor: str | None = None, source: str = "flow", chain_id: int = 0, execution: Any = None,
                   proposer_proof: dict[str, Any] | None = None) -> int:
    """Store a pending request for `procedure` under `policy` (an ApprovalPolicy); returns its id.

    `deadline_seconds` replaces the policy's expiry (tests, drills); escalation stays from the policy.
    `execution` is what will run when approved (its hash is part of every signed decision); `proposer_proof`
    how the proposer was proven (kind and evidence), kept with the request and in the audit log.
    """
    at = _now(now).replace(microsecond=0)  # signed decisions carry the expiry in whole seconds
    expires = at + timedelta(seconds=deadline_seconds) if deadline_seconds is not None else rules.expires_at(at, policy)
    expires = expires.replace(microsecond=0)
    escalate = rules.escalate_at(at, policy)
    stored = {**(details or {}), "environment": environment, "proposer_excluded": bool(policy.proposer_excluded),
              "escalation_policy": policy.escalation_policy,
              "escalate_at": escalate.isoformat() if escalate else None,
              "channel": getattr(policy, "channel", "approvals"), "chain_id": int(chain_id),
              "execution_hash": content_hash(execution if execution is not None else details or {}),
              "proposer_proof": proposer_proof}
    with session_scope(engine, immediate=True) as session:
        req = ApprovalRequest(procedure=procedure, subject=subject, risk=risk, proposer=proposer,
                              required_role=policy.approver_role, quorum=policy.quorum, status="pending",
                              flow_run_id=flow_run_id, requested_at=at, expires_at=expires, details=stored)
        session.add(req)
        session.flush()
        append_audit(session, actor=actor or proposer, action="approval.requested", subject=subject_of(req.id),
                     source=source, at=at,
                     details={"procedure": procedure, "subject": subject, "risk": risk, "proposer": proposer,
                              "required_role": req.required_role, "quorum": req.quorum,
                              "expires_at": expires, "escalate_at": escalate, "flow_run_id": flow_run_id,
                              "environment": environment, "execution_hash": stored["execution_hash"],
                              "proposer_proof": proposer_proof})
        return req.id


def statement_for(state: RequestState | ApprovalRequest, decision: str) -> Statement:
    """The EIP-712 Decision a person signs to `decision` on this request."""
    details = state.details or {}
    return decision_statement(request_id=state.id, procedure=state.procedure, subject=state.subject,
                              decision=decision, environment=str(details.get("environment") or ""),
                              chain_id=int(details.get("chain_id") or 0),
                              execution_hash=str(details.get("execution_hash") or "0x" + "00" * 32),
                              expires=state.expires_at or datetime(1970, 1, 1, tzinfo=timezone.utc))


def set_flow_run(engine: Engine, request_id: int, flow_run_id: str) -> None:
    with session_scope(engine, immediate=True) as session:
        session.execute(update(ApprovalRequest).where(ApprovalRequest.id == request_id)
                        .values(flow_run_id=flow_run_id))


def get_state(engine: Engine, request_id: int) -> RequestState:
    with session_scope(engine) as session:
        req = session.get(ApprovalRequest, request_id)
        if req is None:
            raise KeyError(f"no approval request {request_id}")
        return _state(req)


def get_decision(engine: Engine, decision_id: int) -> ApprovalDecision | None:
    with session_scope(engine) as session:
        return session.get(ApprovalDecision, decision_id)


def _close(session, req: ApprovalRequest, status: str, reason: str, at: datetime, actor: str, source: str,
           extra: dict[str, Any] | None = None) -> None:
    req.status = status
    req.decided_at = at
    req.details = {**(req.details or {}), "outcome_reason": reason}
    t = rules.tally(req.quorum, _votes(req))
    append_audit(session, actor=actor, action=f"approval.{status}", subject=subject_of(req.id), source=source,
                 at=at, details={"procedure": req.procedure, "subject": req.subject, "reason": reason,
                                 "approvers": t.approvers, "rejecters": t.rejecters, "quorum": req.quorum,
                                 "flow_run_id": req.flow_run_id, **(extra or {})})


def record_decision(engine: Engine, *, request_id: int, decision: str, reason: str | None, source: str,
                    proof: Any, identity: IdentityContext, now: datetime | None = None,
                    context: dict[str, Any] | None = None) -> DecisionResult:
    """Prove the person, validate and store one decision (accepted or refused, always audited); close the
    request when decided. `proof`: a vvops.identity proof; `identity`: the roster and what the environment
    trusts."""
    at = _now(now)
    if source not in rules.SOURCES:
        raise ValueError(f"source must be one of {rules.SOURCES}")
    decision = (decision or "").strip().lower()
    with session_scope(engine, immediate=True) as session:
        req = session.get(ApprovalRequest, request_id)
        if req is None:
            raise KeyError(f"no approval request {request_id}")
        proven = prove(proof, statement_for(req, decision), identity, at.timestamp())
        proof_audit = {"proof": proven.kind or getattr(proof, "kind", None), **proven.evidence}
        if isinstance(proven, Refused):
            ev = proven.evidence
            approver = proven.person or ev.get("signer") or (f"slack:{ev['slack_user_id'] or 'unknown'}"
                                                             if "slack_user_id" in ev else "(unproven)")
            verdict = rules.Verdict(False, proven.reason, proven.message)
        else:
            approver = proven.person
            verdict = rules.validate_decision(approver=approver, decision=decision, request=_view(req),
                                              accepted=_votes(req), people=identity.people, now=at)
        row = ApprovalDecision(request_id=req.id, approver=approver[:200],
                               decision=decision if decision in rules.DECISIONS else "reject",
                               reason=reason, source=source, accepted=verdict.accepted,
                               refusal_reason=None if verdict.accepted else f"{verdict.refusal_reason}: {verdict.message}",
                               decided_at=at)
        # validation ran under the write lock (immediate transaction), so the partial unique index on accepted
        # decisions per approver is only a backstop here
        req.decisions.append(row)
        session.flush()
        action = "approval.decision.accepted" if verdict.accepted else "approval.decision.refused"
        append_audit(session, actor=approver[:200], action=action, subject=subject_of(req.id), source=source, at=at,
                     details={"decision": decision, "reason": reason, "decision_id": row.id,
                              "refusal_reason": verdict.refusal_reason, "message": verdict.message,
                              "procedure": req.procedure, "flow_run_id": req.flow_run_id, **proof_audit,
                              **(context or {})})
        if verdict.accepted:
            t = rules.tally(req.quorum, _votes(req))
            if t.status == "approved":
                _close(session, req, "approved", f"approved by {', '.join(t.approvers)}", at, approver[:200], source)
            elif t.status == "rejected":
                _close(session, req, "rejected", f"rejected by {', '.join(t.rejecters)}: {reason or 'no reason given'}",
                       at, approver[:200], source)
        session.flush()
        return DecisionResult(row.id, verdict.accepted, verdict.refusal_reason, verdict.message, _state(req))


def expire_request(engine: Engine, request_id: int, *, now: datetime | None = None, source: str = "flow",
                   force: bool = False) -> bool:
    """Fail an open request closed (rejected, reason "expired") once its deadline passed; True if it changed."""
    at = _now(now)
    with session_scope(engine, immediate=True) as session:
        req = session.get(ApprovalRequest, request_id)
        if req is None or req.status not in rules.OPEN_STATUSES:
            return False
        if not force and not rules.is_expired(req.expires_at, at):
            return False
        _close(session, req, "rejected", "expired", at, ACTOR_SYSTEM, source,
               extra={"expires_at": req.expires_at, "outcome": "rejected: expired"})
        # the event name says what happened; _close wrote approval.rejected, add the specific one too
        append_audit(session, actor=ACTOR_SYSTEM, action="approval.expired", subject=subject_of(req.id),
                     source=source, at=at, details={"procedure": req.procedure, "expires_at": req.expires_at,
                                                    "flow_run_id": req.flow_run_id})
        return True


@dataclass(frozen=True)
class EscalationDue:
    id: int
    procedure: str
    subject: str
    risk: str
    proposer: str
    environment: str | None
    escalation_policy: str | None
    requested_at: datetime
    expires_at: datetime | None
    flow_run_id: str | None
    approvers: list[str]
    quorum: int
    channel: str = "approvals"


def _parse(ts: str | None) -> datetime | None:
    return datetime.fromisoformat(ts) if ts else None


def due_for_escalation(engine: Engine, *, now: datetime | None = None) -> list[EscalationDue]:
    """Pending requests past their escalation time that were not escalated yet and have not expired."""
    at = _now(now)
    out = []
    with session_scope(engine) as session:
        for req in session.scalars(select(ApprovalRequest).where(ApprovalRequest.status == "pending",
                                                                 ApprovalRequest.escalated_at.is_(None))
                                   .order_by(ApprovalRequest.id)):
            details = req.details or {}
            if rules.needs_escalation(status=req.status, escalate_deadline=_parse(details.get("escalate_at")),
                                      escalated_at=req.escalated_at, expires=req.expires_at, now=at):
                t = rules.tally(req.quorum, _votes(req))
                out.append(EscalationDue(req.id, req.procedure, req.subject, req.risk, req.proposer,
                                         details.get("environment"), details.get("escalation_policy"),
                                         req.requested_at, req.expires_at, req.flow_run_id, t.approvers, req.quorum,
                                         details.get("channel") or "approvals"))
    return out


def mark_escalated(engine: Engine, request_id: int, *, now: datetime | None = None,
                   targets: list[str] | None = None, source: str = "flow") -> bool:
    """Mark a pending request escalated (once: a second call, or a concurrent sweep, gets False)."""
    at = _now(now)
    with session_scope(engine, immediate=True) as session:
        changed = session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == request_id, ApprovalRequest.status == "pending",
                   ApprovalRequest.escalated_at.is_(None))
            .values(status="escalated", escalated_at=at)
        ).rowcount
        if not changed:
            return False
        append_audit(session, actor=ACTOR_SYSTEM, action="approval.escalated", subject=subject_of(request_id),
                     source=source, at=at, details={"targets": targets or []})
        return True


def overdue_open(engine: Engine, *, now: datetime | None = None) -> list[int]:
    """Open requests past their total deadline (their paused run died or timed out without closing them)."""
    at = _now(now)
    with session_scope(engine) as session:
        return list(session.scalars(select(ApprovalRequest.id).where(
            ApprovalRequest.status.in_(rules.OPEN_STATUSES), ApprovalRequest.expires_at <= at)))


def find_request_by_flow_run(engine: Engine, flow_run_id: str) -> list[RequestState]:
    with session_scope(engine) as session:
        return [_state(r) for r in session.scalars(select(ApprovalRequest)
                                                   .where(ApprovalRequest.flow_run_id == flow_run_id))]


def auto_approve(engine: Engine, request_id: int, *, reason: str, now: datetime | None = None,
                 source: str = "flow") -> bool:
    """Close an open request approved without votes (a policy's auto_approve_severities); audited."""
    at = _now(now)
    with session_scope(engine, immediate=True) as session:
        req = session.get(ApprovalRequest, request_id)
        if req is None or req.status not in rules.OPEN_STATUSES:
            return False
        _close(session, req, "approved", reason, at, ACTOR_SYSTEM, source, extra={"auto": True})
        return True


def audit_event(engine: Engine, *, actor: str, action: str, request_id: int | None, source: str,
                details: dict[str, Any] | None = None, subject: str | None = None) -> int:
    """Append one approval-related audit entry on its own (e.g. a refused Slack request)."""
    with session_scope(engine, immediate=True) as session:
        return append_audit(session, actor=actor[:200] or "(unknown)", action=action,
                            subject=subject or (subject_of(request_id) if request_id is not None else "approval:?"),
                            source=source, details=details or {}).id
