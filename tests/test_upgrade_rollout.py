"""Upgrade rollout end to end on the devnet: checklist, rehearsal, approvals, staged timelock upgrade with
checkpoints, rollback by Prefect transaction, exactly-once after a killed worker."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.fixtures.approval_fixtures import approval_run_id, resume_signed
from tests.fixtures.approval_fixtures import wait_paused as _wait_paused
from vvops.store.models import ApprovalRequest, AuditEntry, Backup, ChainAction, Incident

pytestmark = [pytest.mark.devnet, pytest.mark.prefect]

ROOT = Path(__file__).resolve().parents[1]




LEADS = ["amara", "daniel", "kwame"]


def _approve(engine, subject: str, approver: str, after: str | None = None) -> str:
    """Answer the request with as many distinct leads as its quorum asks (config: 1 on devnet, 2 on mainnet)."""
    run_id = approval_run_id(engine, subject, timeout=90)
    with engine.connect() as conn:
        quorum = conn.execute(select(ApprovalRequest.quorum).where(ApprovalRequest.subject == subject)).scalar()
    people = [approver] + [p for p in LEADS if p != approver]
    for person in people[:quorum]:
        after = _wait_paused(run_id, after=after)
        resume_signed(run_id, engine, person, reason="ok")
    return after


def _approve_both(engine, change_id: str, address: str) -> None:
    key = _approve(engine, f"upgrade readiness vault -> {address} ({change_id})", "amara")
    _approve(engine, f"upgrade go/no-go vault -> {address} ({change_id})", "daniel", after=key)


def _actions(engine, change_id: str) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(ChainAction.idempotency_key, ChainAction.status, ChainAction.signed_tx_hash)
                            .where(ChainAction.idempotency_key.like(f"upgrade_rollout:{change_id}:%"))
                            .order_by(ChainAction.id)).all()
    return [tuple(r) for r in rows]


def test_a_compatible_upgrade_is_rehearsed_approved_staged_and_verified(ops_flows, ops_store_engine, devnet,
                                                                         fresh_devnet_state, flow_in_thread):
    from flows.upgrade_rollout import upgrade_rollout
    from prefect.variables import Variable

    vault = fresh_devnet_state.contract("VaultV1", devnet.contracts.vault)
    before = {k: vault.call(k) for k in ("feeBps", "totalAssets", "totalLiabilities", "owner", "guardian")}
    change_id = f"chg-{uuid.uuid4().hex[:8]}"
    v2 = devnet.contracts.vault_v2_implementation

    run = flow_in_thread(upgrade_rollout, proposer="mei", change_id=change_id, approval_poll_interval=0.5)
    _approve_both(ops_store_engine, change_id, v2)
    result = run.join(timeout=120)

    assert result["status"] == "completed"
    assert result["previous_implementation"] == devnet.contracts.vault_v1_implementation
    assert vault.call("implementation") == v2 and vault.call("version") == "2.0.0"
    assert {k: vault.call(k) for k in before} == before                     # state kept
    assert all(result["verification"]["checks"].values())
    assert [k for k, s, _ in _actions(ops_store_engine, change_id)] == [
        f"upgrade_rollout:{change_id}:devnet:schedule", f"upgrade_rollout:{change_id}:devnet:execute"]
    assert {s for _, s, _ in _actions(ops_store_engine, change_id)} == {"mined"}
    with ops_store_engine.connect() as conn:
        kinds = set(conn.execute(select(Backup.kind).where(Backup.details["change_id"].as_string() == change_id)).scalars())
        actions = conn.execute(select(AuditEntry.action).where(AuditEntry.details["change_id"].as_string() == change_id)
                               .order_by(AuditEntry.id)).scalars().all()
    assert kinds == {"chain-state", "store"}
    assert actions[:3] == ["contract_slot.acquired", "upgrade.checklist", "upgrade.rehearsal"]
    assert "upgrade.checkpoint" in actions
    assert actions[-3:] == ["upgrade.stabilisation", "upgrade.completed", "contract_slot.released"]
    window = Variable.get("vv_stabilisation_until")["devnet"]
    assert window["change_id"] == change_id and window["hours"] == 24


def test_an_incompatible_layout_stops_before_any_transaction_or_approval(ops_flows, ops_store_engine, devnet):
    from flows.upgrade_rollout import upgrade_rollout

    change_id = f"chg-{uuid.uuid4().hex[:8]}"
    with pytest.raises(RuntimeError, match="storage layout compatible"):
        upgrade_rollout(proposer="mei", new_artifact="VaultV2Incompatible", change_id=change_id,
                        new_implementation="from-devnet:vault_v2_incompatible_implementation")
    assert _actions(ops_store_engine, change_id) == []
    with ops_store_engine.connect() as conn:
        assert conn.execute(select(ApprovalRequest.id).where(ApprovalRequest.subject.like(f"%({change_id})"))).all() == []
        assert conn.execute(select(Backup.id).where(Backup.details["change_id"].as_string() == change_id)).all() == []


def test_code_that_is_not_the_approved_artifact_stops_the_rollout(ops_flows, ops_store_engine, devnet):
    from flows.upgrade_rollout import upgrade_rollout

    change_id = f"chg-{uuid.uuid4().hex[:8]}"
    with pytest.raises(RuntimeError, match="bytecode matches the approved artifact"):
        upgrade_rollout(proposer="mei", new_implementation=devnet.contracts.vault_v1_implementation, change_id=change_id)
    assert _actions(ops_store_engine, change_id) == []


def test_a_failed_checkpoint_rolls_back_to_the_previous_implementation_and_opens_an_incident(
        ops_flows, ops_store_engine, devnet, fresh_devnet_state, flow_in_thread):
    from flows.upgrade_rollout import upgrade_rollout

    vault = fresh_devnet_state.contract("VaultV1", devnet.contracts.vault)
    change_id = f"chg-{uuid.uuid4().hex[:8]}"
    v2 = devnet.contracts.vault_v2_implementation
    # The rehearsal passes; then, while the go/no-go is pending, feeBps is changed behind the procedure's back:
    # the stage's checkpoint ("state preserved" against the pre-upgrade snapshot) fails after the upgrade tx.
    run = flow_in_thread(upgrade_rollout, proposer="mei", change_id=change_id, approval_poll_interval=0.5,
                         expected_version="2.0.0", stages=["devnet"])
    key = _approve(ops_store_engine, f"upgrade readiness vault -> {v2} ({change_id})", "amara")
    # between the go/no-go and the stage: a parameter changes under our feet (the checkpoint's "state preserved")
    subject = f"upgrade go/no-go vault -> {v2} ({change_id})"
    run_id = approval_run_id(ops_store_engine, subject, timeout=90)
    _wait_paused(run_id, after=key)
    from vvops.devnet.timetravel import impersonate, set_balance

    set_balance(fresh_devnet_state, devnet.contracts.timelock, 10**20)
    with impersonate(fresh_devnet_state, devnet.contracts.timelock) as timelock:
        fresh_devnet_state.transact(sender=timelock, to=devnet.contracts.vault, data=vault.encode("setFeeBps", 77))
    resume_signed(run_id, ops_store_engine, "daniel", reason="ok")
    with pytest.raises(RuntimeError, match="checkpoint failed on devnet: state preserved.*rolled back"):
        run.join(timeout=120)

    assert vault.call("implementation") == devnet.contracts.vault_v1_implementation
    assert vault.call("version") == "1.0.0"
    keys = [k for k, s, _ in _actions(ops_store_engine, change_id)]
    assert keys == [f"upgrade_rollout:{change_id}:devnet:{s}" for s in
                    ("schedule", "execute", "rollback-schedule", "rollback-execute")]
    with ops_store_engine.connect() as conn:
        incident = conn.execute(select(Incident).where(Incident.title.contains(change_id))).one()
        actions = conn.execute(select(AuditEntry.action).where(AuditEntry.details["change_id"].as_string() == change_id)
                               ).scalars().all()
    assert incident.severity == "P1" and incident.status == "open"
    assert "upgrade.rolled_back" in actions and "upgrade.failed" in actions


def test_a_worker_killed_after_the_upgrade_tx_does_not_send_it_again_on_rerun(
        ops_flows, ops_store_engine, devnet, fresh_devnet_state, prefect_api):
    from flows.upgrade_rollout import upgrade_rollout

    vault = fresh_devnet_state.contract("VaultV1", devnet.contracts.vault)
    change_id = f"chg-{uuid.uuid4().hex[:8]}"
    v2 = devnet.contracts.vault_v2_implementation
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "VVOPS_FAULT_INJECT": "upgrade_rollout:after-execute"}
    code = ("from flows.upgrade_rollout import upgrade_rollout\n"
            f"upgrade_rollout(proposer='mei', change_id={change_id!r}, approval_poll_interval=0.5)\n")
    worker = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        _approve_both(ops_store_engine, change_id, v2)
        worker.wait(timeout=120)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == -9, worker.stdout.read()[-3000:]
    first = _actions(ops_store_engine, change_id)
    assert [k.rsplit(":", 1)[1] for k, _, _ in first] == ["schedule", "execute"]
    assert vault.call("version") == "2.0.0"
    block_before = fresh_devnet_state.block_number()

    result = upgrade_rollout(proposer="mei", change_id=change_id, approval_poll_interval=0.5)  # approvals reused

    assert result["status"] == "completed"
    assert _actions(ops_store_engine, change_id) == first            # same rows, same hashes: nothing re-sent
    assert result["stages"][0]["sent_now"] is False
    assert fresh_devnet_state.block_number() == block_before       # not one transaction mined by the rerun


def test_rollout_rules_stages_keys_checkpoint_and_stabilisation():
    from datetime import datetime, timezone

    from vvops.procedures.upgrades import (evaluate_checkpoint, in_stabilisation, rollout_stages,
                                           stabilisation_window, upgrade_key)

    assert rollout_stages("devnet") == ["devnet"]
    assert rollout_stages("mainnet", ["testnet", "mainnet"]) == ["testnet", "mainnet"]
    with pytest.raises(ValueError):
        rollout_stages("x", ["a", "a"])
    assert upgrade_key("chg-1", "devnet", "execute") == "upgrade_rollout:chg-1:devnet:execute"
    before = {"owner": "0xA", "feeBps": 30, "totalAssets": 10}
    good = evaluate_checkpoint(stage="devnet", expected_implementation="0xAbC", implementation="0xabc",
                               expected_version="2.0.0", version="2.0.0", before=before,
                               after={**before, "totalAssets": 12}, invariants_ok=True, health_problems=[])
    assert good.ok
    bad = evaluate_checkpoint(stage="devnet", expected_implementation="0xabc", implementation="0xdef",
                              expected_version="2.0.0", version="1.0.0", before=before, after={**before, "feeBps": 31},
                              invariants_ok=False, health_problems=["x"])
    assert len(bad.failed) == 5 and bad.details["state_changed"] == {"feeBps": ["30", "31"]}
    t = datetime(2026, 5, 1, tzinfo=timezone.utc)
    window = stabilisation_window(completed_at=t, hours=24)
    assert in_stabilisation(window, t.replace(hour=23)) and not in_stabilisation(window, t.replace(day=3))
