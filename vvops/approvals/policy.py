"""The approval rules as pure functions: who may decide, when a quorum is reached, when a request is due.

Nothing here touches the store, Prefect or the clock: callers pass the roster, the request, the decisions
already accepted and `now`. `vvops.approvals.service` applies these rules inside a store transaction.

Rules (procedures.yaml `approvals.<procedure>` for the environment):
- only active people holding `approver_role` may decide;
- the proposer may not approve their own change when `proposer_excluded` (a reject by them is accepted:
  withdrawing a change is always safe);
- each person decides once (a second decision from the same person is refused as a duplicate);
- `quorum` accepted approvals from distinct people approve the request; one accepted reject rejects it;
- nothing is decided on a closed or expired request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

OPEN_STATUSES = ("pending", "escalated")
DECISIONS = ("approve", "reject")
SOURCES = ("ui", "slack", "api")

# refusal reasons (stable strings, shown to the person and kept in the audit log)
UNKNOWN_PERSON = "unknown_person"
INACTIVE_PERSON = "inactive_person"
MISSING_ROLE = "missing_role"
SELF_APPROVAL = "self_approval"
DUPLICATE = "duplicate"
CLOSED = "request_closed"
EXPIRED = "request_expired"
BAD_DECISION = "invalid_decision"


class PersonLike(Protocol):
    id: str
    roles: Sequence[str]
    active: bool


class PolicyLike(Protocol):
    approver_role: str
    quorum: int
    proposer_excluded: bool
    expiry_minutes: int
    escalate_after_minutes: int | None


@dataclass(frozen=True)
class RequestView:
    """What the rules need to know about a request."""

    proposer: str
    required_role: str
    quorum: int
    proposer_excluded: bool
    status: str = "pending"
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Vote:
    """An accepted decision."""

    approver: str
    decision: str


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    refusal_reason: str | None = None
    message: str = ""


@dataclass(frozen=True)
class Tally:
    """The state of a request given its accepted decisions."""

    status: str  # pending | approved | rejected
    approvers: list[str] = field(default_factory=list)
    rejecters: list[str] = field(default_factory=list)
    quorum: int = 1

    @property
    def missing(self) -> int:
        return max(0, self.quorum - len(self.approvers))


def validate_decision(*, approver: str, decision: str, request: RequestView, accepted: Iterable[Vote],
                      people: Iterable[PersonLike], now: datetime) -> Verdict:
    """Whether `approver`'s `decision` counts on `request`; a refusal carries a stable reason and a message."""
    if decision not in DECISIONS:
        return Verdict(False, BAD_DECISION, f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    if request.status not in OPEN_STATUSES:
        return Verdict(False, CLOSED, f"the request is already {request.status}")
    if request.expires_at is not None and now >= request.expires_at:
        return Verdict(False, EXPIRED, f"the request expired at {request.expires_at.isoformat()}")
    person = next((p for p in people if p.id == approver), None)
    if person is None:
        return Verdict(False, UNKNOWN_PERSON, f"{approver!r} is not on the roster")
    if not getattr(person, "active", True):
        return Verdict(False, INACTIVE_PERSON, f"{approver} is not an active member of the team")
    if request.required_role not in person.roles:
        return Verdict(False, MISSING_ROLE, f"{approver} does not hold the {request.required_role} role")
    if decision == "approve" and request.proposer_excluded and approver == request.proposer:
        return Verdict(False, SELF_APPROVAL, f"{approver} proposed this change and cannot approve it")
    if any(v.approver == approver for v in accepted):
        return Verdict(False, DUPLICATE, f"{approver} has already decided on this request")
    return Verdict(True, None, f"{decision} by {approver} accepted")


def tally(quorum: int, accepted: Iterable[Vote]) -> Tally:
    """One reject rejects; `quorum` approvals of distinct people approve; otherwise still pending."""
    approvers: list[str] = []
    rejecters: list[str] = []
    for vote in accepted:
        bucket = approvers if vote.decision == "approve" else rejecters
        if vote.approver not in bucket:
            bucket.append(vote.approver)
    if rejecters:
        return Tally("rejected", approvers, rejecters, quorum)
    if len(approvers) >= quorum:
        return Tally("approved", approvers, rejecters, quorum)
    return Tally("pending", approvers, rejecters, quorum)


def eligible_approvers(people: Iterable[PersonLike], *, role: str, proposer: str,
                       proposer_excluded: bool) -> list[str]:
    """Who could still approve (active, holding the role, not the proposer when excluded)."""
    return [p.id for p in people if role in p.roles and getattr(p, "active", True)
            and not (proposer_excluded and p.id == proposer)]


# ---------------------------------------------------------------------------- deadlines


def expires_at(requested_at: datetime, policy: PolicyLike) -> datetime:
    """When the request fails closed (the total deadline the paused run waits for)."""
    return requested_at + timedelta(minutes=policy.expiry_minutes)


def escalate_at(requested_at: datetime, policy: PolicyLike) -> datetime | None:
    """When the escalation target is notified if nobody has decided (None: never)."""
    if not policy.escalate_after_minutes:
        return None
    return requested_at + timedelta(minutes=policy.escalate_after_minutes)


def remaining_seconds(deadline: datetime, now: datetime) -> float:
    """Seconds left until `deadline` (0 when passed)."""
    return max(0.0, (deadline - now).total_seconds())


def is_expired(deadline: datetime | None, now: datetime) -> bool:
    return deadline is not None and now >= deadline


def needs_escalation(*, status: str, escalate_deadline: datetime | None, escalated_at: datetime | None,
                     expires: datetime | None, now: datetime) -> bool:
    """A still-open request past its escalation time, not escalated yet and not expired."""
    return (status == "pending" and escalated_at is None and escalate_deadline is not None
            and now >= escalate_deadline and not is_expired(expires, now))
