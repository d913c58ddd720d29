"""Procedures on the OpenZeppelin reference protocol (environment devnet-oz): upgrades per proxy kind through the
OpenZeppelin TimelockController, a bad V2 stopped, a parameter change, the guardian pause and the unpause.

Issue 12: `upgradeTo(address)` (removed in OpenZeppelin 5), the hard-coded timelock ABI and the fixed contract
names `vault`/`timelock` made each of these fail on the old code.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from tests.fixtures.approval_fixtures import approval_run_id
from tests.fixtures.approval_fixtures import wait_paused as _wait_paused
from vvops.store.models import ApprovalRequest, ChainAction

pytestmark = [pytest.mark.devnet, pytest.mark.prefect, pytest.mark.timeout(900)]

ENV = "devnet-oz"
LEADS = ["amara", "daniel", "kwame"]


def _answer(run_id: str, approver: str, decision: str = "approve", after: str | None = None) -> str:
    from prefect.flow_runs import resume_flow_run

    after = _wait_paused(run_id, after=after)
    resume_flow_run(uuid.UUID(run_id), run_input={"decision": decision, "approver": approver, "reason": "test"})
    return after


def _approve(engine, subject: str, approver: str, after: str | None = None) -> str:
    run_id = approval_run_id(engine, subject, timeout=120)
    with engine.connect() as conn:
        quorum = conn.execute(select(ApprovalRequest.quorum).where(ApprovalRequest.subject == subject)).scalar()
    for person in ([approver] + [p for p in LEADS if p != approver])[:quorum]:
        after = _answer(run_id, person, after=after)
    return after


def _keys(engine, prefix: str) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(ChainAction.idempotency_key).where(
            ChainAction.idempotency_key.like(f"{prefix}%")).order_by(ChainAction.id)).scalars())


@pytest.mark.parametrize("contract", ["oz_vault", "oz_vault_transparent", "oz_vault_beacon"])
def test_a_compatible_v2_is_rolled_out_through_the_timelock_for_each_proxy_kind(
        contract, ops_flows, oz_ops_home, ops_store_engine, oz_devnet, fresh_devnet_state, flow_in_thread):
    from flows.upgrade_rollout import upgrade_rollout
    from vvops.chain.proxies import read_proxy_slots
    from vvops.chain.rpc import RpcClient

    address = oz_devnet.contracts[contract]
    vault = fresh_devnet_state.contract("OZVaultV2", address)
    before = {k: vault.call(k) for k in ("feeBps", "totalAssets", "totalSupply", "depositCap")}
    v2 = oz_devnet.contracts["oz_vault_v2_implementation"]
    change_id = f"chg-{uuid.uuid4().hex[:8]}"
    run = flow_in_thread(upgrade_rollout, proposer="mei", contract=contract, environment=ENV, change_id=change_id,
                         new_implementation="from-devnet:oz_vault_v2_implementation", new_artifact="OZVaultV2",
                         approval_poll_interval=0.5)
    key = _approve(ops_store_engine, f"upgrade readiness {contract} -> {v2} ({change_id})", "amara")
    _approve(ops_store_engine, f"upgrade go/no-go {contract} -> {v2} ({change_id})", "daniel", after=key)
    result = run.join(timeout=180)

    assert result["status"] == "completed"
    assert result["previous_implementation"] == oz_devnet.contracts["oz_vault_v1_implementation"]
    with RpcClient([oz_devnet.rpc_url]) as rpc:
        kind = {"oz_vault": "uups", "oz_vault_transparent": "transparent", "oz_vault_beacon": "beacon"}[contract]
        assert read_proxy_slots(rpc, address, kind).implementation == v2
    assert vault.call("version") == "2.0.0"
    assert {k: vault.call(k) for k in before} == before
    assert _keys(ops_store_engine, f"upgrade_rollout:{change_id}:") == [
        f"upgrade_rollout:{change_id}:{ENV}:schedule", f"upgrade_rollout:{change_id}:{ENV}:execute"]


def test_a_v2_that_shifts_storage_stops_before_any_approval_or_transaction(ops_flows, oz_ops_home, ops_store_engine,
                                                                          oz_devnet):
    from flows.upgrade_rollout import upgrade_rollout

    change_id = f"chg-{uuid.uuid4().hex[:8]}"
    with pytest.raises(RuntimeError, match="storage layout compatible"):
        upgrade_rollout(proposer="mei", contract="oz_vault", environment=ENV, change_id=change_id,
                        new_artifact="OZVaultV2Incompatible",
                        new_implementation="from-devnet:oz_vault_v2_incompatible_implementation")
    assert _keys(ops_store_engine, f"upgrade_rollout:{change_id}:") == []
    with ops_store_engine.connect() as conn:
        assert conn.execute(select(ApprovalRequest.id).where(ApprovalRequest.subject.like(f"%({change_id})"))).all() == []


def test_a_parameter_change_goes_through_the_openzeppelin_timelock(ops_flows, oz_ops_home, ops_store_engine,
                                                                   no_recent_parameter_changes, oz_devnet,
                                                                   fresh_devnet_state, flow_in_thread):
    from flows.parameter_change import parameter_change

    vault = fresh_devnet_state.contract("OZVaultV1", oz_devnet.contracts["oz_vault"])
    thread = flow_in_thread(parameter_change, parameter="feeBps", new_value=45, proposer="priya", justification="test",
                            environment=ENV, approval_poll_interval=0.5)
    run_id = approval_run_id(ops_store_engine, "oz_vault.feeBps: 30 → 45", timeout=120)
    _answer(run_id, "daniel")
    result = thread.join(timeout=180)

    assert result["status"] == "applied" and (result["previous_value"], result["new_value"]) == (30, 45)
    assert vault.call("feeBps") == 45
    change_id = result["change_id"]
    assert _keys(ops_store_engine, f"parameter_change:{change_id}:") == [f"parameter_change:{change_id}:schedule",
                                                                           f"parameter_change:{change_id}:execute"]


def test_the_guardian_pauses_and_two_leads_unpause_through_the_timelock(ops_flows, oz_ops_home, ops_store_engine,
                                                                        oz_devnet, fresh_devnet_state, flow_in_thread):
    from flows.emergency_pause import emergency_pause
    from flows.unpause import unpause

    vault = fresh_devnet_state.contract("OZVaultV1", oz_devnet.contracts["oz_vault"])
    paused = emergency_pause(reason=f"drain {uuid.uuid4().hex[:6]}", requested_by="lukas", severity="P0",
                             environment=ENV)
    assert paused["status"] == "paused" and paused["contract"] == "oz_vault" and vault.call("paused")
    with ops_store_engine.connect() as conn:
        sender = conn.execute(select(ChainAction.from_address).where(
            ChainAction.signed_tx_hash == paused["tx_hash"])).scalar()
    assert sender == oz_devnet.accounts.guardian.address   # GUARDIAN_ROLE, not an ownable guardian() getter

    reason = f"fixed {uuid.uuid4().hex[:6]}"
    thread = flow_in_thread(unpause, reason=reason, requested_by="lukas", environment=ENV, approval_poll_interval=0.5)
    run_id = approval_run_id(ops_store_engine, f"unpause oz_vault: {reason}", timeout=120)
    key = _answer(run_id, "amara")
    _answer(run_id, "daniel", after=key)
    result = thread.join(timeout=180)
    assert result["status"] == "unpaused" and not vault.call("paused")
