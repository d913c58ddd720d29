"""The OpenZeppelin reference protocol under the Safe profile (`vvops devnet up --protocol openzeppelin --governance
safe`, environment devnet-oz): the Safe holds the TimelockController's PROPOSER_ROLE, the leads' Safe confirmations
are the approval, the executor sends execTransaction once and executes on the OpenZeppelin timelock; a run waiting
for confirmations notices the owners' own execution without anyone resuming it."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from tests.fixtures.approval_fixtures import approval_run_id, resume_signed
from tests.fixtures.safe_fixtures import resume_safe_wait, safe_proposal_for, send_as_owner, sign_as
from vvops.safe.signatures import sign_hash
from vvops.store.models import ApprovalDecision, ApprovalRequest, AuditEntry, ChainAction
from vvops.store.safe_models import SafeTransaction

pytestmark = [pytest.mark.devnet, pytest.mark.prefect, pytest.mark.timeout(900)]
ENV = "devnet-oz"
STRANGER_KEY = "0x" + "42" * 32
LEADS = ["amara", "daniel", "kwame"]


def _audits(engine, safe_tx_hash: str) -> list[tuple[str, dict]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(AuditEntry.action, AuditEntry.details).where(
            AuditEntry.subject == f"safe:{safe_tx_hash}").order_by(AuditEntry.id)).all()]


def _keys(engine, prefix: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(ChainAction.idempotency_key, ChainAction.from_address).where(
            ChainAction.idempotency_key.like(f"{prefix}%")).order_by(ChainAction.id)).all()]


def test_the_safe_holds_the_openzeppelin_timelocks_proposer_role_and_the_access_review_expects_it(
        oz_safe_ops, oz_safe_devnet):
    from tasks.chain import check_contract_state

    timelock = oz_safe_ops.contract("TimelockController", oz_safe_devnet.contracts["oz_timelock"])
    safe, gov = oz_safe_devnet.safe["address"], oz_safe_devnet.accounts.governance.address
    held = {(role, who): timelock.call("hasRole", timelock.call(role), who)
            for role in ("PROPOSER_ROLE", "CANCELLER_ROLE", "EXECUTOR_ROLE") for who in (safe, gov)}
    assert held == {("PROPOSER_ROLE", safe): True, ("CANCELLER_ROLE", safe): True, ("EXECUTOR_ROLE", safe): True,
                    ("PROPOSER_ROLE", gov): False, ("CANCELLER_ROLE", gov): False, ("EXECUTOR_ROLE", gov): True}
    outcomes = check_contract_state(environment=ENV, contract="oz_timelock")["outcomes"]
    roles = {o.id.rsplit(".", 1)[-1]: o.status for o in outcomes if ".role." in o.id}
    assert roles == {"DEFAULT_ADMIN_ROLE": "ok", "PROPOSER_ROLE": "ok", "CANCELLER_ROLE": "ok", "EXECUTOR_ROLE": "ok"}


def test_parameter_change_on_the_openzeppelin_vault_through_the_safe_one_signature_refused(
        oz_safe_ops, oz_safe_devnet, ops_store_engine, no_recent_parameter_changes, flow_in_thread):
    from flows.parameter_change import parameter_change

    vault = oz_safe_ops.contract("OZVaultV1", oz_safe_devnet.contracts["oz_vault"])
    thread = flow_in_thread(parameter_change, parameter="feeBps", new_value=42, proposer="priya", justification="safe",
                            environment=ENV, approval_poll_interval=0.5)
    run_id = approval_run_id(ops_store_engine, "oz_vault.feeBps: 30 → 42", timeout=600)
    pause = thread.wait_paused(run_id, timeout=600)
    proposal = safe_proposal_for(ops_store_engine, run_id)
    assert proposal.spec["to"] == oz_safe_devnet.contracts["oz_timelock"]
    assert proposal.spec["safe"] == oz_safe_devnet.safe["address"]

    resume_safe_wait(run_id, signature=sign_as(oz_safe_devnet, "kwame", proposal.safe_tx_hash, "eth_sign"), owner="kwame")
    pause = thread.wait_paused(run_id, after=pause, timeout=600)
    resume_safe_wait(run_id, signature=sign_hash(STRANGER_KEY, proposal.safe_tx_hash))  # not an owner: refused, still waiting
    thread.wait_paused(run_id, after=pause, timeout=600)
    assert vault.call("feeBps") == 30
    resume_safe_wait(run_id, signature=sign_as(oz_safe_devnet, "amara", proposal.safe_tx_hash), owner="amara")
    result = thread.join(timeout=300)

    assert result["status"] == "applied" and sorted(result["approvers"]) == ["amara", "kwame"]
    assert vault.call("feeBps") == 42
    governance = oz_safe_devnet.accounts.governance.address
    prefix = f"parameter_change:{result['change_id']}"
    assert _keys(ops_store_engine, f"{prefix}:") == [(f"{prefix}:schedule:exec", governance),
                                                      (f"{prefix}:execute", governance)]
    with ops_store_engine.connect() as conn:
        decisions = conn.execute(select(ApprovalDecision.approver, ApprovalDecision.accepted).join(ApprovalRequest)
                                 .where(ApprovalRequest.flow_run_id == run_id)).all()
    assert sorted(decisions) == [("amara", True), ("kwame", True)]
    audits = _audits(ops_store_engine, proposal.safe_tx_hash)
    assert [a for a, _ in audits] == ["safe.proposed", "safe.confirmation.accepted", "safe.confirmation.refused",
                                      "safe.confirmation.accepted", "safe.executed"]
    assert audits[2][1]["refusal_reason"] == "not_owner"


def test_unpause_of_the_openzeppelin_vault_confirmed_from_the_cli(oz_safe_ops, oz_safe_devnet, ops_store_engine,
                                                                  flow_in_thread, capsys):
    from flows.unpause import unpause
    from vvops.cli import main

    vault = oz_safe_ops.contract("OZVaultV1", oz_safe_devnet.contracts["oz_vault"])
    vault.transact(oz_safe_devnet.accounts.guardian.address, "pause")
    assert vault.call("paused")
    thread = flow_in_thread(unpause, reason="fixed", requested_by="oscar", environment=ENV,
                            approval_poll_interval=0.5)
    run_id = approval_run_id(ops_store_engine, "unpause oz_vault: fixed", timeout=600)
    pause = thread.wait_paused(run_id, timeout=600)
    safe_tx_hash = safe_proposal_for(ops_store_engine, run_id).safe_tx_hash

    assert main(["safe", "confirm", safe_tx_hash, "-e", ENV, "--signature", sign_hash(STRANGER_KEY, safe_tx_hash)]) == 1
    assert main(["safe", "confirm", safe_tx_hash, "-e", ENV, "--by", "amara", "--signature",
                 sign_as(oz_safe_devnet, "amara", safe_tx_hash)]) == 0
    thread.wait_paused(run_id, after=pause, timeout=600)
    assert vault.call("paused")
    assert main(["safe", "confirm", safe_tx_hash, "-e", ENV, "--by", "daniel", "--signature",
                 sign_as(oz_safe_devnet, "daniel", safe_tx_hash, "eth_sign")]) == 0
    assert "2 of 2 confirmations" in capsys.readouterr().out
    result = thread.join(timeout=300)

    assert result["status"] == "unpaused" and sorted(result["approvers"]) == ["amara", "daniel"]
    assert not vault.call("paused")
    audits = _audits(ops_store_engine, safe_tx_hash)
    assert [a for a, _ in audits] == ["safe.proposed", "safe.confirmation.refused", "safe.confirmation.accepted",
                                      "safe.confirmation.accepted", "safe.executed"]
    assert audits[1][1]["refusal_reason"] == "not_owner"


def test_uups_upgrade_the_owners_execute_in_the_safe_ui_and_the_waiting_run_goes_on_by_itself(
        oz_safe_ops, oz_safe_devnet, ops_store_engine, flow_in_thread):
    from flows.upgrade_rollout import upgrade_rollout
    from vvops.chain.proxies import read_proxy_slots
    from vvops.chain.rpc import RpcClient
    from vvops.safe.signatures import combine
    from vvops.safe.tx import SafeTxSpec, exec_transaction_data

    v2 = oz_safe_devnet.contracts["oz_vault_v2_implementation"]
    change_id = f"ozsafe-{uuid.uuid4().hex[:8]}"
    thread = flow_in_thread(upgrade_rollout, proposer="priya", contract="oz_vault", environment=ENV,
                            change_id=change_id, new_implementation="from-devnet:oz_vault_v2_implementation",
                            new_artifact="OZVaultV2", approval_poll_interval=0.5)
    readiness = f"upgrade readiness oz_vault -> {v2} ({change_id})"
    run_id = approval_run_id(ops_store_engine, readiness, timeout=600)
    with ops_store_engine.connect() as conn:
        quorum = conn.execute(select(ApprovalRequest.quorum).where(ApprovalRequest.subject == readiness)).scalar()
    pause = None
    for person in LEADS[:quorum]:
        pause = thread.wait_paused(run_id, after=pause, timeout=600)
        resume_signed(run_id, ops_store_engine, person, reason="ready")
    thread.wait_paused(run_id, after=pause, timeout=900)  # go/no-go: the Safe owners
    proposal = safe_proposal_for(ops_store_engine, run_id)

    # the owners sign and execute in "the Safe UI"; nobody tells the run
    spec = SafeTxSpec.from_dict(proposal.spec)
    sigs = {p: sign_as(oz_safe_devnet, p, proposal.safe_tx_hash) for p in ("daniel", "kwame")}
    send_as_owner(oz_safe_ops, oz_safe_devnet, "kwame", to=spec.safe,
                  data=exec_transaction_data(spec, combine(sigs, spec=spec)))
    result = thread.join(timeout=400)

    assert result["status"] == "completed"
    with RpcClient([oz_safe_devnet.rpc_url]) as rpc:
        assert read_proxy_slots(rpc, oz_safe_devnet.contracts["oz_vault"], "uups").implementation == v2
    assert oz_safe_ops.contract("OZVaultV2", oz_safe_devnet.contracts["oz_vault"]).call("version") == "2.0.0"
    with ops_store_engine.connect() as conn:
        row = conn.execute(select(SafeTransaction.status, SafeTransaction.executed_by).where(
            SafeTransaction.safe_tx_hash == proposal.safe_tx_hash)).one()
    assert tuple(row) == ("executed", "owners")
    assert [k for k, _ in _keys(ops_store_engine, f"upgrade_rollout:{change_id}:")] == [
        f"upgrade_rollout:{change_id}:{ENV}:execute"]  # no execTransaction of ours


def test_a_crash_between_the_threshold_and_execution_on_the_openzeppelin_vault_executes_once_on_rerun(
        oz_safe_ops, oz_safe_devnet, ops_store_engine, no_recent_parameter_changes, flow_in_thread, monkeypatch):
    import tasks.safe as safe_tasks
    from flows.parameter_change import parameter_change

    vault = oz_safe_ops.contract("OZVaultV1", oz_safe_devnet.contracts["oz_vault"])
    before = vault.call("feeBps")
    new_value = before + 4
    real_send, crashes, worker = safe_tasks.safe_send, [], {"dead": True}

    def dies_until_restarted(**kwargs):  # after the owners reached the threshold, before execTransaction; the task's
        if worker["dead"]:               # own retries die too: the worker process is gone
            crashes.append(kwargs["idempotency_key"])
            raise RuntimeError("worker died before execTransaction")
        return real_send(**kwargs)

    monkeypatch.setattr(safe_tasks, "safe_send", dies_until_restarted)
    params = dict(parameter="feeBps", new_value=new_value, proposer="priya", justification="crash",
                  environment=ENV, approval_poll_interval=0.5, change_id=f"ozsafe-crash-{uuid.uuid4().hex[:8]}")
    thread = flow_in_thread(parameter_change, **params)
    run_id = approval_run_id(ops_store_engine, f"oz_vault.feeBps: {before} → {new_value}", timeout=600)
    pause = thread.wait_paused(run_id, timeout=600)
    proposal = safe_proposal_for(ops_store_engine, run_id)
    resume_safe_wait(run_id, signature=sign_as(oz_safe_devnet, "amara", proposal.safe_tx_hash), owner="amara")
    thread.wait_paused(run_id, after=pause, timeout=600)
    resume_safe_wait(run_id, signature=sign_as(oz_safe_devnet, "daniel", proposal.safe_tx_hash), owner="daniel")
    with pytest.raises(RuntimeError, match="worker died"):
        thread.join(timeout=300)
    assert crashes and vault.call("feeBps") == before
    worker["dead"] = False

    result = flow_in_thread(parameter_change, **params).join(timeout=400)  # nobody is asked again

    assert result["status"] == "applied" and vault.call("feeBps") == new_value
    prefix = f"parameter_change:{params['change_id']}"
    executions = [key for key, _ in _keys(ops_store_engine, f"{prefix}:") if key.endswith(":exec")]
    assert executions == [f"{prefix}:schedule:exec"]  # one execTransaction, from the rerun
    assert [a for a, _ in _audits(ops_store_engine, proposal.safe_tx_hash)].count("safe.executed") == 1
