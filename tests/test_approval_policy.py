"""The approval rules as pure functions: roster, role, separation of duties, duplicates, quorum, deadlines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from freezegun import freeze_time

from vvops.approvals import policy as rules

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class P:
    id: str
    roles: tuple[str, ...]
    active: bool = True


PEOPLE = [P("amara", ("ops_lead",)), P("daniel", ("ops_lead", "protocol_specialist")), P("kwame", ("ops_lead", "sre")),
          P("mei", ("sre",)), P("gone", ("ops_lead",), active=False)]


def request(**kw) -> rules.RequestView:
    base = dict(proposer="amara", required_role="ops_lead", quorum=1, proposer_excluded=True,
                expires_at=NOW + timedelta(hours=4))
    return rules.RequestView(**{**base, **kw})


def check(approver, decision="approve", req=None, accepted=()):
    return rules.validate_decision(approver=approver, decision=decision, request=req or request(),
                                   accepted=list(accepted), people=PEOPLE, now=NOW)


def test_an_ops_lead_who_did_not_propose_may_approve():
    assert check("daniel") == rules.Verdict(True, None, "approve by daniel accepted")


@pytest.mark.parametrize("approver, reason", [("mei", rules.MISSING_ROLE), ("mallory", rules.UNKNOWN_PERSON),
                                              ("gone", rules.INACTIVE_PERSON), ("", rules.UNKNOWN_PERSON)])
def test_people_without_the_role_or_off_the_roster_are_refused(approver, reason):
    verdict = check(approver)
    assert (verdict.accepted, verdict.refusal_reason) == (False, reason)


def test_the_proposer_cannot_approve_their_own_change_but_may_withdraw_it():
    assert check("amara").refusal_reason == rules.SELF_APPROVAL
    assert check("amara", "reject").accepted
    assert check("amara", req=request(proposer_excluded=False)).accepted  # emergency_pause: anyone on the role


def test_a_second_decision_by_the_same_person_is_a_duplicate():
    verdict = check("daniel", "reject", req=request(quorum=2), accepted=[rules.Vote("daniel", "approve")])
    assert (verdict.accepted, verdict.refusal_reason) == (False, rules.DUPLICATE)


def test_closed_expired_and_malformed_decisions_are_refused():
    assert check("daniel", req=request(status="approved")).refusal_reason == rules.CLOSED
    assert check("daniel", req=request(expires_at=NOW)).refusal_reason == rules.EXPIRED
    assert check("daniel", "maybe").refusal_reason == rules.BAD_DECISION
    assert check("daniel", req=request(status="escalated")).accepted  # escalated is still open


def test_quorum_of_two_needs_two_distinct_people():
    one = rules.tally(2, [rules.Vote("daniel", "approve")])
    assert (one.status, one.missing) == ("pending", 1)
    same_twice = rules.tally(2, [rules.Vote("daniel", "approve"), rules.Vote("daniel", "approve")])
    assert same_twice.status == "pending"
    two = rules.tally(2, [rules.Vote("daniel", "approve"), rules.Vote("kwame", "approve")])
    assert (two.status, two.approvers) == ("approved", ["daniel", "kwame"])


def test_one_reject_stops_the_procedure_even_after_approvals():
    result = rules.tally(2, [rules.Vote("daniel", "approve"), rules.Vote("kwame", "reject")])
    assert (result.status, result.rejecters) == ("rejected", ["kwame"])


def test_eligible_approvers_leave_out_the_proposer_and_inactive_people():
    assert rules.eligible_approvers(PEOPLE, role="ops_lead", proposer="amara", proposer_excluded=True) == ["daniel", "kwame"]


@dataclass(frozen=True)
class Policy:
    expiry_minutes: int = 240
    escalate_after_minutes: int | None = 60
    approver_role: str = "ops_lead"
    quorum: int = 1
    proposer_excluded: bool = True


def test_deadlines_follow_the_policy_and_the_clock():
    with freeze_time("2026-03-01 12:00:00"):
        requested = datetime.now(timezone.utc)
    policy = Policy()
    expires, escalate = rules.expires_at(requested, policy), rules.escalate_at(requested, policy)
    assert (expires, escalate) == (requested + timedelta(hours=4), requested + timedelta(hours=1))
    assert rules.escalate_at(requested, Policy(escalate_after_minutes=None)) is None

    def due(**kw):
        args = dict(status="pending", escalate_deadline=escalate, escalated_at=None, expires=expires)
        return rules.needs_escalation(**{**args, **kw}, now=datetime.now(timezone.utc))

    with freeze_time("2026-03-01 12:59:59"):
        assert not due()
        assert rules.remaining_seconds(expires, datetime.now(timezone.utc)) == 3 * 3600 + 1
    with freeze_time("2026-03-01 13:00:00"):
        assert due()
        assert not due(escalated_at=datetime.now(timezone.utc))
        assert not due(status="approved")
    with freeze_time("2026-03-01 16:00:00"):
        now = datetime.now(timezone.utc)
        assert rules.is_expired(expires, now) and not due()
        assert rules.remaining_seconds(expires, now) == 0
