"""request_approval under the Prefect test server: the run pauses, decisions resume it, the roster decides."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

import pytest
from prefect import flow
from sqlalchemy import select

from tests.fixtures.approval_fixtures import approval_run_id, signed_answer
from vvops.store.models import ApprovalDecision, ApprovalRequest, AuditEntry, NotificationOutbox

pytestmark = [pytest.mark.prefect]


@flow(name="approval-test")
def approval_test_flow(procedure: str, subject: str, proposer: str, deadline_seconds: float | None = None,
                       proposal_signature: str = "", proposal_expires: int = 0) -> dict:
    from tasks.approvals import prove_proposer, request_approval

    proof = prove_proposer(procedure=procedure, flow_fn=approval_test_flow, values=locals(), proposer=proposer,
                           environment="devnet", signature=proposal_signature,
                           expires=proposal_expires)   # unsigned: the devnet trusts a typed proposer name
    outcome = request_approval(procedure=procedure, subject=subject, risk="medium", proposer=proposer,
                               description_md="feeBps 30 → 50 through the timelock", environment="devnet",
                               poll_interval=0.5, deadline_seconds=deadline_seconds, proposer_proof=proof)
    return asdict(outcome)


def _subject() -> str:
    return f"test change {uuid.uuid4().hex[:8]}"


class Run:
    """A paused approval run and the means to answer it."""

    def __init__(self, flow_in_thread, engine, procedure="parameter_change", proposer="amara", **params):
        self.subject = _subject()
        self.thread = flow_in_thread(approval_test_flow, procedure=procedure, subject=self.subject,
                                     proposer=proposer, **params)
        self.engine = engine
        self.run_id = approval_run_id(engine, self.subject)
        self.key = self.thread.wait_paused(self.run_id)

    def answer(self, approver: str, decision: str = "approve", reason: str = "looks right", expect_pause=True):
        from prefect.flow_runs import resume_flow_run

        resume_flow_run(uuid.UUID(self.run_id),
                        run_input=signed_answer(self.engine, self.request().id, approver, decision, reason))
        if expect_pause:
            self.key = self.thread.wait_paused(self.run_id, after=self.key)

    def request(self) -> ApprovalRequest:
        with self.engine.connect() as conn:
            return conn.execute(select(ApprovalRequest).where(ApprovalRequest.subject == self.subject)).one()

    def decisions(self) -> list[tuple[str, str, bool, str | None, str]]:
        req = self.request()
        with self.engine.connect() as conn:
            rows = conn.execute(select(ApprovalDecision).where(ApprovalDecision.request_id == req.id)
                                .order_by(ApprovalDecision.id)).all()
        return [(r.approver, r.decision, r.accepted, (r.refusal_reason or "").split(":")[0] or None, r.source)
                for r in rows]

    def audit(self) -> list[tuple[str, str, str]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(
                select(AuditEntry.actor, AuditEntry.action, AuditEntry.source)
                .where(AuditEntry.subject == f"approval:{self.request().id}").order_by(AuditEntry.id))]


def test_an_ops_lead_approves_and_the_flow_continues(ops_flows, ops_store_engine, flow_in_thread):
    run = Run(flow_in_thread, ops_store_engine)
    req = run.request()
    assert (req.status, req.required_role, req.quorum, req.flow_run_id) == ("pending", "ops_lead", 1, run.run_id)
    assert req.expires_at - req.requested_at == timedelta(minutes=240)

    run.answer("daniel", expect_pause=False)

    outcome = run.thread.join()
    assert outcome == {"approved": True, "approvers": ["daniel"], "reason": "approved by daniel",
                       "request_id": req.id, "status": "approved", "rejecters": []}
    assert run.decisions() == [("daniel", "approve", True, None, "ui")]
    assert run.audit() == [("amara", "approval.requested", "flow"), ("daniel", "approval.decision.accepted", "ui"),
                           ("daniel", "approval.approved", "ui")]
    # the Slack request (outbox; held without a bot token) carries Approve/Reject buttons for this request,
    # and the outcome went into the same thread
    with ops_store_engine.connect() as conn:
        rows = {r.idempotency_key: r for r in conn.execute(select(NotificationOutbox).where(
            NotificationOutbox.thread_key == f"approval-{req.id}"))}
    request_msg = rows[f"approval-request-{req.id}"]
    buttons = [e for b in request_msg.payload["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert request_msg.kind == "approval_request"
    assert [(b["action_id"], b["value"]) for b in buttons] == [("approval_approve", str(req.id)),
                                                              ("approval_reject", str(req.id))]
    assert rows[f"approval-outcome-{req.id}"].kind == "approval_update"


def test_self_approval_is_refused_then_another_lead_approves(ops_flows, ops_store_engine, flow_in_thread):
    run = Run(flow_in_thread, ops_store_engine, proposer="kwame")

    run.answer("kwame")          # refused: the proposer; the run pauses again
    assert run.request().status == "pending"
    run.answer("amara", expect_pause=False)

    outcome = run.thread.join()
    assert (outcome["approved"], outcome["approvers"]) == (True, ["amara"])
    assert run.decisions() == [("kwame", "approve", False, "self_approval", "ui"), ("amara", "approve", True, None, "ui")]
    assert ("kwame", "approval.decision.refused", "ui") in run.audit()


def test_an_unauthorised_decision_is_refused_and_the_run_keeps_waiting(ops_flows, ops_store_engine, flow_in_thread):
    from prefect.client.orchestration import get_client

    run = Run(flow_in_thread, ops_store_engine)

    run.answer("mei", reason="I am only an SRE")   # no ops_lead role
    run.answer("nobody")                           # not on the roster

    with get_client(sync_client=True) as client:
        assert client.read_flow_run(uuid.UUID(run.run_id)).state.is_paused()
    assert run.request().status == "pending"
    from eth_account import Account

    from tests.fixtures.approval_fixtures import person_key

    assert [d[:4] for d in run.decisions()] == [("mei", "approve", False, "missing_role"),
                                                (Account.from_key(person_key("nobody")).address, "approve", False,
                                                 "unknown_signer")]
    run.answer("daniel", "reject", reason="cleanup", expect_pause=False)   # end the run
    assert run.thread.join()["approved"] is False


def test_a_quorum_of_two_needs_two_distinct_leads_and_duplicates_are_refused(ops_flows, ops_store_engine,
                                                                             flow_in_thread):
    run = Run(flow_in_thread, ops_store_engine, procedure="unpause", proposer="amara")  # unpause: quorum 2
    assert run.request().quorum == 2

    run.answer("daniel")
    run.answer("daniel")                     # duplicate: refused
    assert run.request().status == "pending"
    run.answer("kwame", expect_pause=False)

    outcome = run.thread.join()
    assert (outcome["approved"], outcome["approvers"]) == (True, ["daniel", "kwame"])
    assert [d[:4] for d in run.decisions()] == [("daniel", "approve", True, None), ("daniel", "approve", False, "duplicate"),
                                                ("kwame", "approve", True, None)]


def test_one_reject_from_an_authorised_lead_stops_the_procedure(ops_flows, ops_store_engine, flow_in_thread):
    run = Run(flow_in_thread, ops_store_engine, procedure="unpause")
    run.answer("daniel")
    run.answer("kwame", "reject", reason="root cause not understood", expect_pause=False)

    outcome = run.thread.join()
    assert (outcome["approved"], outcome["status"], outcome["rejecters"]) == (False, "rejected", ["kwame"])
    assert outcome["reason"] == "rejected by kwame: root cause not understood"
    assert run.request().status == "rejected"


def test_expiry_fails_closed_rejected_expired(ops_flows, ops_store_engine, flow_in_thread):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import FlowPauseTimeout

    run = Run(flow_in_thread, ops_store_engine, deadline_seconds=2)

    with pytest.raises(FlowPauseTimeout):
        run.thread.join()
    req = run.request()
    assert (req.status, req.details["outcome_reason"]) == ("rejected", "expired")
    assert [a[1] for a in run.audit()][-2:] == ["approval.rejected", "approval.expired"]
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(uuid.UUID(run.run_id)).state.is_failed()


def test_the_sweep_escalates_an_overdue_request_exactly_once(ops_flows, ops_store_engine):
    from flows.approval_sweep import approval_escalation_sweep
    from tasks.runtime import ops_config
    from vvops.approvals import service

    policy = ops_config("devnet").approval_policy("parameter_change")   # escalate after 60 of 240 minutes
    requested = datetime.now(timezone.utc) - timedelta(minutes=61)
    rid = service.create_request(ops_store_engine, procedure="parameter_change", subject=_subject(), risk="low",
                                 proposer="amara", policy=policy, environment="devnet", now=requested)
    fresh = service.create_request(ops_store_engine, procedure="parameter_change", subject=_subject(), risk="low",
                                   proposer="amara", policy=policy, environment="devnet")

    first = approval_escalation_sweep()
    second = approval_escalation_sweep()

    assert rid in first["escalated"] and fresh not in first["escalated"]
    assert rid not in second["escalated"]
    assert service.get_state(ops_store_engine, rid).status == "escalated"
    assert service.get_state(ops_store_engine, fresh).status == "pending"
    with ops_store_engine.connect() as conn:
        actions = conn.execute(select(AuditEntry.action, AuditEntry.details)
                               .where(AuditEntry.subject == f"approval:{rid}").order_by(AuditEntry.id)).all()
    escalations = [d for a, d in actions if a == "approval.escalated"]
    assert len(escalations) == 1 and escalations[0]["targets"]   # the ops lead of the day (rotation ops-lead)
    with ops_store_engine.connect() as conn:
        pages = conn.execute(select(NotificationOutbox.kind, NotificationOutbox.idempotency_key)
                             .where(NotificationOutbox.idempotency_key.like(f"approval-escalation-{rid}-%"))).all()
    assert sorted(pages) == sorted(("escalation_page", f"approval-escalation-{rid}-{t}") for t in escalations[0]["targets"])
    # still open after escalation: a lead can approve it
    from vvops.identity import IdentityContext, TypedNameProof

    result = service.record_decision(ops_store_engine, request_id=rid, decision="approve", reason="ok", source="api",
                                     proof=TypedNameProof("daniel"),
                                     identity=IdentityContext.from_config(ops_config("devnet")))
    assert result.state.status == "approved"

    # past the total deadline the sweep fails it closed
    late = service.create_request(ops_store_engine, procedure="parameter_change", subject=_subject(), risk="low",
                                  proposer="amara", policy=policy, environment="devnet",
                                  now=datetime.now(timezone.utc) - timedelta(minutes=241))
    assert late in approval_escalation_sweep()["expired"]
    state = service.get_state(ops_store_engine, late)
    assert (state.status, state.outcome_reason) == ("rejected", "expired")
