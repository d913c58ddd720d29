"""Procedures under the Safe profile, end to end on the devnet: the leads' Safe confirmations are the approval,
the approved SafeTx schedules on the timelock, the executor executes it exactly once."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from tests.fixtures.approval_fixtures import approval_run_id, resume_signed
from tests.fixtures.safe_fixtures import resume_safe_wait, safe_proposal_for, send_as_owner, sign_as
from vvops.safe.signatures import sign_hash
from vvops.store.models import ApprovalDecision, ApprovalRequest, AuditEntry, ChainAction
from vvops.store.safe_models import SafeTransaction

pytestmark = [pytest.mark.devnet, pytest.mark.prefect]
STRANGER_KEY = "0x" + "42" * 32


def _fee(chain, devnet) -> int:
    return chain.contract("VaultV1", devnet.contracts.vault).call("feeBps")


def test_parameter_change_through_the_safe_owners_sign_out_of_order_one_invalid(
        safe_ops, safe_devnet, ops_store_engine, no_recent_parameter_changes, flow_in_thread):
    from flows.parameter_change import parameter_change

    thread = flow_in_thread(parameter_change, parameter="feeBps", new_value=42, proposer="priya", justification="safe",
                            environment="devnet", approval_poll_interval=0.5)
    run_id = approval_run_id(ops_store_engine, "vault.feeBps: 30 → 42", timeout=900)
    pause = thread.wait_paused(run_id, timeout=600)
    proposal = safe_proposal_for(ops_store_engine, run_id)
    assert proposal.nonce == 0 and proposal.spec["to"] == safe_devnet.contracts.timelock

    resume_safe_wait(run_id, signature=sign_as(safe_devnet, "kwame", proposal.safe_tx_hash, "eth_sign"), owner="kwame")
    pause = thread.wait_paused(run_id, after=pause, timeout=600)
    resume_safe_wait(run_id, signature=sign_hash(STRANGER_KEY, proposal.safe_tx_hash))  # not an owner: refused, still waiting
    pause = thread.wait_paused(run_id, after=pause, timeout=600)
    assert _fee(safe_ops, safe_devnet) == 30
    resume_safe_wait(run_id, signature=sign_as(safe_devnet, "amara", proposal.safe_tx_hash), owner="amara")
    result = thread.join(timeout=300)

    assert result["status"] == "applied" and sorted(result["approvers"]) == ["amara", "kwame"]
    assert _fee(safe_ops, safe_devnet) == 42
    with ops_store_engine.connect() as conn:
        keys = conn.execute(select(ChainAction.idempotency_key, ChainAction.from_address).where(
            ChainAction.idempotency_key.like(f"parameter_change:{result['change_id']}:%")).order_by(ChainAction.id)).all()
        decisions = conn.execute(select(ApprovalDecision.approver, ApprovalDecision.accepted).join(ApprovalRequest)
                                 .where(ApprovalRequest.flow_run_id == run_id)).all()
        audits = conn.execute(select(AuditEntry.action, AuditEntry.details).where(
            AuditEntry.subject == f"safe:{proposal.safe_tx_hash}").order_by(AuditEntry.id)).all()
    governance = safe_devnet.accounts.governance.address
    change_id = result["change_id"]
    assert keys == [(f"parameter_change:{change_id}:schedule:exec", governance),
                    (f"parameter_change:{change_id}:execute", governance)]
    assert sorted(decisions) == [("amara", True), ("kwame", True)]
    actions = [a for a, _ in audits]
    assert actions == ["safe.proposed", "safe.confirmation.accepted", "safe.confirmation.refused",
                       "safe.confirmation.accepted", "safe.executed"]
    assert audits[2][1]["refusal_reason"] == "not_owner" and audits[1][1]["kind"] == "eth_sign"
    assert all(d["signature"].startswith("0x") for a, d in audits if a.startswith("safe.confirmation"))


SECRET = "test-signing-secret-0123456789abcdef"


def _slack_command(base: str, slack_user: str, text: str):
    import time
    from urllib.parse import urlencode

    import httpx

    from vvops.approvals.slack_signature import sign

    body = urlencode({"command": "/vvops-safe", "user_id": slack_user, "text": text}).encode()
    ts = int(time.time())
    return httpx.post(f"{base}/slack/commands", content=body, timeout=60,
                      headers={"Content-Type": "application/x-www-form-urlencoded",
                               "X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sign(SECRET, ts, body)})


def test_unpause_through_the_safe_confirmed_from_slack_and_the_cli(safe_ops, safe_devnet, ops_store_engine,
                                                                   flow_in_thread, slack_endpoint, capsys):
    from flows.unpause import unpause
    from tasks.runtime import ops_config
    from vvops.cli import main

    vault = safe_ops.contract("VaultV1", safe_devnet.contracts.vault)
    vault.transact(safe_devnet.accounts.guardian.address, "pause")
    assert vault.call("paused")
    base = slack_endpoint(signing_secret=SECRET, environment="devnet", engine=ops_store_engine,
                          people=ops_config("devnet").people)
    thread = flow_in_thread(unpause, reason="fixed", requested_by="oscar", environment="devnet",
                            approval_poll_interval=0.5)
    run_id = approval_run_id(ops_store_engine, "unpause vault: fixed", timeout=900)
    thread.wait_paused(run_id, timeout=600)
    proposal = safe_proposal_for(ops_store_engine, run_id)

    # a Slack user off the roster is refused; amara (U01AMARA01) confirms with her owner signature
    assert "not on the roster" in _slack_command(base, "U0STRANGER", "confirm x y").json()["text"]
    answer = _slack_command(base, "U01AMARA01",
                            f"confirm {proposal.safe_tx_hash} {sign_as(safe_devnet, 'amara', proposal.safe_tx_hash)}")
    assert "accepted" in answer.json()["text"] and "1 of 2" in answer.json()["text"]
    # daniel from the CLI (the eth_sign form); it resumes the run
    assert main(["safe", "confirm", proposal.safe_tx_hash, "--by", "daniel", "--signature",
                 sign_as(safe_devnet, "daniel", proposal.safe_tx_hash, "eth_sign")]) == 0
    assert "2 of 2 confirmations" in capsys.readouterr().out
    result = thread.join(timeout=300)

    assert result["status"] == "unpaused" and sorted(result["approvers"]) == ["amara", "daniel"]
    assert not vault.call("paused")
    with ops_store_engine.connect() as conn:
        sources = conn.execute(select(AuditEntry.source).where(
            AuditEntry.subject == f"safe:{proposal.safe_tx_hash}", AuditEntry.action == "safe.confirmation.accepted")
            .order_by(AuditEntry.id)).scalars().all()
    assert sources == ["slack", "cli"]


def test_upgrade_rollout_owners_execute_in_the_safe_ui_and_a_crash_before_execution_never_sends_twice(
        safe_ops, safe_devnet, ops_store_engine, flow_in_thread, monkeypatch):
    import tasks.safe as safe_tasks
    from flows.upgrade_rollout import upgrade_rollout
    from vvops.safe.signatures import combine
    from vvops.safe.tx import SafeTxSpec, exec_transaction_data

    change_id = f"safe-{uuid.uuid4().hex[:8]}"
    real_send = safe_tasks.safe_send
    crashes = []

    def crash_once(**kwargs):  # the worker dies between the threshold and the execution
        if not crashes:
            crashes.append(kwargs["idempotency_key"])
            raise RuntimeError("worker died before execTransaction")
        return real_send(**kwargs)

    monkeypatch.setattr(safe_tasks, "safe_send", crash_once)
    params = dict(proposer="priya", environment="devnet", change_id=change_id, approval_poll_interval=0.5)
    thread = flow_in_thread(upgrade_rollout, **params)
    readiness = f"upgrade readiness vault -> {safe_devnet.contracts.vault_v2_implementation} ({change_id})"
    run_id = approval_run_id(ops_store_engine, readiness, timeout=900)
    pause = thread.wait_paused(run_id, timeout=600)
    resume_signed(run_id, ops_store_engine, "daniel", reason="ready")
    pause = thread.wait_paused(run_id, after=pause, timeout=900)  # go/no-go: the Safe owners
    proposal = safe_proposal_for(ops_store_engine, run_id)
    for person in ("daniel", "kwame"):
        resume_safe_wait(run_id, signature=sign_as(safe_devnet, person, proposal.safe_tx_hash), owner=person)
        if person == "daniel":
            pause = thread.wait_paused(run_id, after=pause, timeout=600)
    with pytest.raises(RuntimeError, match="worker died"):
        thread.join(timeout=300)
    assert crashes == [f"upgrade_rollout:{change_id}:devnet:schedule"]
    with ops_store_engine.connect() as conn:
        assert conn.execute(select(SafeTransaction.status).where(
            SafeTransaction.safe_tx_hash == proposal.safe_tx_hash)).scalar() == "proposed"

    # meanwhile the owners execute it themselves in "the Safe UI"
    spec = SafeTxSpec.from_dict(proposal.spec)
    sigs = {p: sign_as(safe_devnet, p, proposal.safe_tx_hash) for p in ("daniel", "kwame")}
    send_as_owner(safe_ops, safe_devnet, "kwame", to=spec.safe, data=exec_transaction_data(spec, combine(sigs, spec=spec)))

    # the rerun of the same change asks nobody again, finds the owners' execution and finishes the upgrade
    result = flow_in_thread(upgrade_rollout, **params).join(timeout=400)
    assert result["status"] == "completed"
    impl = safe_ops.contract("VaultV1", safe_devnet.contracts.vault).call("implementation")
    assert impl == safe_devnet.contracts.vault_v2_implementation
    with ops_store_engine.connect() as conn:
        row = conn.execute(select(SafeTransaction.status, SafeTransaction.executed_by).where(
            SafeTransaction.safe_tx_hash == proposal.safe_tx_hash)).one()
        exec_rows = conn.execute(select(ChainAction.idempotency_key).where(
            ChainAction.idempotency_key.like(f"upgrade_rollout:{change_id}:%"))).scalars().all()
    assert tuple(row) == ("executed", "owners")
    assert exec_rows == [f"upgrade_rollout:{change_id}:devnet:execute"]  # no execTransaction of ours at all
