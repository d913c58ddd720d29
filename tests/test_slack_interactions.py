"""Approve from Slack end to end: a signed block_actions POST to the live endpoint resumes the paused run."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from tests.fixtures.approval_fixtures import approval_run_id
from tests.test_approvals_flow import approval_test_flow
from vvops.approvals.slack_signature import sign
from vvops.store.models import ApprovalDecision, ApprovalRequest, AuditEntry

pytestmark = [pytest.mark.prefect]

SECRET = "test-signing-secret-0123456789abcdef"


def block_actions(request_id: int, slack_user: str, action_id: str = "approval_approve") -> bytes:
    payload = {"type": "block_actions", "team": {"id": "T0VVOPS01"},
               "user": {"id": slack_user, "username": slack_user.lower()},
               "actions": [{"action_id": action_id, "block_id": f"approval:{request_id}", "value": str(request_id),
                            "type": "button", "action_ts": f"{time.time():.6f}"}]}
    return urlencode({"payload": json.dumps(payload)}).encode()


def post(base: str, body: bytes, *, secret: str = SECRET, ts: int | None = None, signature: str | None = None):
    ts = int(time.time()) if ts is None else ts
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(ts),
               "X-Slack-Signature": signature or sign(secret, ts, body)}
    return httpx.post(f"{base}/slack/interactions", content=body, headers=headers, timeout=30)


def refused_audits(engine) -> list[str]:
    with engine.connect() as conn:
        return [d["reason"] for d in conn.execute(select(AuditEntry.details)
                                                  .where(AuditEntry.action == "slack.request.refused")).scalars()]


@pytest.fixture
def endpoint(ops_flows, ops_store_engine, prefect_api, slack_endpoint):
    from tasks.runtime import ops_config

    return slack_endpoint(signing_secret=SECRET, environment="devnet", engine=ops_store_engine,
                          people=ops_config("devnet").people, prefect_api_url=prefect_api)


def test_a_signed_slack_click_resumes_the_run_as_the_rosters_person(endpoint, ops_store_engine, flow_in_thread):
    subject = f"slack change {uuid.uuid4().hex[:8]}"
    run = flow_in_thread(approval_test_flow, procedure="parameter_change", subject=subject, proposer="amara")
    run_id = approval_run_id(ops_store_engine, subject)
    key = run.wait_paused(run_id)
    with ops_store_engine.connect() as conn:
        request_id = conn.execute(select(ApprovalRequest.id).where(ApprovalRequest.subject == subject)).scalar_one()

    # an SRE clicks Approve: recorded as refused (no ops_lead role), the run is not resumed
    mei = post(endpoint, block_actions(request_id, "U01MEITAN1"))
    assert mei.status_code == 200
    assert mei.json()["results"][0] | {"decision_id": None} == {
        "ok": False, "request_id": request_id, "decision_id": None, "approver": "mei", "status": "pending",
        "message": "mei does not hold the ops_lead role", "error": "missing_role"}
    # a Slack user not on the roster
    stranger = post(endpoint, block_actions(request_id, "U09STRANGER"))
    assert stranger.json()["results"][0]["error"] == "unknown_person"
    run.wait_paused(run_id, after=None)  # still paused on the same pause

    # Daniel (ops_lead) clicks Approve
    daniel = post(endpoint, block_actions(request_id, "U01DANIEL1"))
    assert daniel.status_code == 200
    result = daniel.json()["results"][0]
    assert (result["ok"], result["approver"], result["status"], result["resume"]) == (True, "daniel", "approved", "resumed")

    outcome = run.join()
    assert (outcome["approved"], outcome["approvers"], outcome["status"]) == (True, ["daniel"], "approved")
    with ops_store_engine.connect() as conn:
        decisions = conn.execute(select(ApprovalDecision.approver, ApprovalDecision.accepted, ApprovalDecision.source)
                                 .where(ApprovalDecision.request_id == request_id).order_by(ApprovalDecision.id)).all()
        actions = conn.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.source)
                               .where(AuditEntry.subject == f"approval:{request_id}").order_by(AuditEntry.id)).all()
    # counted exactly once: the flow did not record the Slack decision again
    assert [tuple(d) for d in decisions] == [("mei", False, "slack"), ("slack:U09STRANGER", False, "slack"),
                                              ("daniel", True, "slack")]
    assert [tuple(a) for a in actions][-2:] == [("daniel", "approval.decision.accepted", "slack"),
                                                ("daniel", "approval.approved", "slack")]
    assert key


def test_forged_stale_and_replayed_requests_are_refused_and_audited(endpoint, ops_store_engine):
    from tasks.runtime import ops_config
    from vvops.approvals import service

    policy = ops_config("devnet").approval_policy("parameter_change")
    rid = service.create_request(ops_store_engine, procedure="parameter_change", subject="signature test",
                                 risk="low", proposer="amara", policy=policy, environment="devnet")
    body = block_actions(rid, "U01DANIEL1")
    before = len(refused_audits(ops_store_engine))

    forged = post(endpoint, body, secret="not-the-secret")
    stale = post(endpoint, body, ts=int(time.time()) - 301)
    unsigned = httpx.post(f"{endpoint}/slack/interactions", content=body, timeout=10)
    assert [r.status_code for r in (forged, stale, unsigned)] == [401, 401, 401]
    assert [r.json()["error"] for r in (forged, stale, unsigned)] == ["bad_signature", "stale_timestamp",
                                                                      "missing_headers"]
    assert service.get_state(ops_store_engine, rid).status == "pending"   # nothing was recorded

    ts = int(time.time())
    first = post(endpoint, body, ts=ts)
    replay = post(endpoint, body, ts=ts)
    assert first.status_code == 200 and first.json()["results"][0]["ok"] is True
    assert (replay.status_code, replay.json()["error"]) == (401, "replayed")
    assert refused_audits(ops_store_engine)[before:] == ["bad_signature", "stale_timestamp", "missing_headers",
                                                         "replayed"]
    state = service.get_state(ops_store_engine, rid)
    assert (state.status, state.approvers) == ("approved", ["daniel"])
