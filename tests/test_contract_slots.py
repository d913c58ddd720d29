"""One parameter change or upgrade per contract at a time: per-contract Prefect global concurrency limits."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid

import pytest
from sqlalchemy import select

from vvops.paths import REPO_ROOT
from vvops.procedures.slots import (ContractBusy, SlotHolder, busy_message, holder_variable, is_resumption,
                                    limit_name)
from vvops.store.models import AuditEntry

pytestmark = [pytest.mark.prefect]


def _contract() -> str:
    return f"slot-{uuid.uuid4().hex[:6]}"


def _slot_audit(engine, subject: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(AuditEntry.action, AuditEntry.details).where(AuditEntry.subject == subject)
                            .where(AuditEntry.action.like("contract_slot.%")).order_by(AuditEntry.id)).all()
    return [(action, details.get("change_id")) for action, details in rows]


def _active_slots(name: str) -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name).active_slots


def _killed_holder(*, contract: str, change_id: str, procedure: str, env: dict[str, str]) -> None:
    """A process that takes the contract's slot and is then SIGKILLed (a worker lost mid-procedure)."""
    code = ("import time\nfrom tasks.contract_slots import hold_contract_slots\n"
            f"with hold_contract_slots(contracts=[('devnet', {contract!r})], procedure={procedure!r},"
            f" change_id={change_id!r}):\n    print('held', flush=True)\n    time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env={**env, "PYTHONWARNINGS": "ignore"})
    seen: list[str] = []
    try:
        for line in holder.stdout:
            seen.append(line)
            if line.strip() == "held":
                break
        assert seen and seen[-1].strip() == "held", "".join(seen)[-3000:]
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_slot_names_holders_and_the_busy_message():
    assert limit_name(environment="devnet", contract="vault") == "vv-contract-devnet-vault"
    assert limit_name(environment="Main Net", contract="Vault_V2") == "vv-contract-main-net-vault-v2"
    assert holder_variable(environment="main-net", contract="vault") == "vv_slot_main_net_vault"
    holder = SlotHolder(change_id="chg-1", procedure="upgrade_rollout", flow_run_id="run-1", lease_id="L1",
                        since="2026-11-26T10:00:00+00:00")
    assert SlotHolder.from_variable(holder.to_variable()) == holder
    assert SlotHolder.from_variable({"change_id": "x"}) is None and SlotHolder.from_variable("junk") is None
    assert is_resumption(holder, change_id="chg-1") and not is_resumption(holder, change_id="chg-2")
    assert not is_resumption(holder, change_id="chg-1", lease_id="L1")  # our own live lease
    message = busy_message(contract="vault", environment="devnet", holder=holder, waited_seconds=61.2)
    assert message == ("vault on devnet is busy: upgrade_rollout chg-1, flow run run-1 since 2026-11-26T10:00:00+00:00;"
                       " waited 61 s. Let that change finish, or if its run is dead and you cannot wait for its lease "
                       "to lapse, free it with `vvops slots release vault --environment devnet`")


def test_a_second_change_on_the_same_contract_waits_and_says_for_whom(ops_flows, ops_store_engine):
    from tasks.contract_slots import hold_contract_slots

    contract, other = _contract(), _contract()
    with hold_contract_slots(contracts=[("devnet", contract)], procedure="parameter_change", change_id="chg-a"):
        assert _active_slots(limit_name(environment="devnet", contract=contract)) == 1
        with pytest.raises(ContractBusy, match=rf"{contract} on devnet is busy: parameter_change chg-a since .*"
                                               rf"vvops slots release {contract} --environment devnet"):
            with hold_contract_slots(contracts=[("devnet", contract)], procedure="upgrade_rollout",
                                     change_id="chg-b", timeout_seconds=1):
                pytest.fail("entered a taken slot")
        with hold_contract_slots(contracts=[("devnet", other)], procedure="upgrade_rollout", change_id="chg-c",
                                 timeout_seconds=1) as held:  # another contract is not held up
            assert held.change_id == "chg-c"
    assert _active_slots(limit_name(environment="devnet", contract=contract)) == 0
    with hold_contract_slots(contracts=[("devnet", contract)], procedure="upgrade_rollout", change_id="chg-b",
                             timeout_seconds=5) as held:
        assert held.change_id == "chg-b"
    assert _slot_audit(ops_store_engine, f"{contract}@devnet") == [
        ("contract_slot.acquired", "chg-a"), ("contract_slot.released", "chg-a"),
        ("contract_slot.acquired", "chg-b"), ("contract_slot.released", "chg-b")]


def test_a_waiting_change_starts_when_the_holder_finishes(ops_flows):
    from tasks.contract_slots import hold_contract_slots

    contract = _contract()
    order: list[str] = []
    second_waiting = threading.Event()

    def second() -> None:
        second_waiting.set()
        with hold_contract_slots(contracts=[("devnet", contract)], procedure="parameter_change", change_id="chg-2",
                                 timeout_seconds=60):
            order.append("second entered")

    with hold_contract_slots(contracts=[("devnet", contract)], procedure="parameter_change", change_id="chg-1"):
        waiter = threading.Thread(target=second)
        waiter.start()
        second_waiting.wait(10)
        waiter.join(timeout=3)  # it cannot get in while we hold the slot
        order.append("first released")
    waiter.join(timeout=60)
    assert order == ["first released", "second entered"]


def test_a_rerun_of_the_same_change_takes_over_the_slot_of_its_killed_run(ops_flows, ops_store_engine, prefect_api):
    from tasks.contract_slots import hold_contract_slots, read_holder

    contract = _contract()
    _killed_holder(contract=contract, change_id="chg-dead", procedure="upgrade_rollout",
                   env={**os.environ, "PREFECT_API_URL": prefect_api})
    assert read_holder(environment="devnet", contract=contract).change_id == "chg-dead"

    with pytest.raises(ContractBusy, match="busy: upgrade_rollout chg-dead"):  # others still wait for the lease
        with hold_contract_slots(contracts=[("devnet", contract)], procedure="parameter_change", change_id="chg-x",
                                 timeout_seconds=1):
            pass
    with hold_contract_slots(contracts=[("devnet", contract)], procedure="upgrade_rollout", change_id="chg-dead",
                             timeout_seconds=5) as held:
        assert held.change_id == "chg-dead"
    assert [a for a, _ in _slot_audit(ops_store_engine, f"{contract}@devnet")] == [
        "contract_slot.acquired", "contract_slot.taken_over", "contract_slot.acquired", "contract_slot.released"]
    assert _active_slots(limit_name(environment="devnet", contract=contract)) == 0


def test_a_parameter_change_on_a_busy_contract_fails_clearly_and_sends_nothing(ops_flows, ops_store_engine,
                                                                                devnet, fresh_devnet_state):
    from flows.parameter_change import parameter_change
    from tasks.contract_slots import hold_contract_slots

    block_before = fresh_devnet_state.block_number()
    with hold_contract_slots(contracts=[("devnet", "vault")], procedure="upgrade_rollout", change_id="chg-upgrade"):
        with pytest.raises(ContractBusy, match="vault on devnet is busy: upgrade_rollout chg-upgrade"):
            parameter_change(parameter="feeBps", new_value=31, proposer="priya", environment="devnet",
                             slot_wait_seconds=1)
    assert fresh_devnet_state.block_number() == block_before
    with ops_store_engine.connect() as conn:
        actions = conn.execute(select(AuditEntry.action).order_by(AuditEntry.id.desc()).limit(3)).scalars().all()
    assert "parameter_change.proposed" not in actions


def test_slots_release_frees_a_dead_runs_slot_and_is_audited(ops_flows, ops_store_engine, prefect_api):
    from tasks.contract_slots import hold_contract_slots, read_holder

    contract = "vault"
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    _killed_holder(contract=contract, change_id="chg-gone", procedure="parameter_change", env=env)

    vvops = [sys.executable, "-m", "vvops.cli"]
    listed = subprocess.run([*vvops, "slots", "list"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert any(line.startswith("vault") and "1/1 taken" in line and "parameter_change chg-gone" in line
               for line in listed.stdout.splitlines()), listed.stdout
    refused = subprocess.run([*vvops, "slots", "release", "vault", "--by", "nobody", "--reason", "x"], cwd=REPO_ROOT,
                             env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "'nobody' is not on the roster" in refused.stderr
    released = subprocess.run([*vvops, "slots", "release", "vault", "--by", "mei", "--reason", "worker host lost"],
                              cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert released.returncode == 0, released.stderr
    assert released.stdout.strip() == "released vv-contract-devnet-vault: lease released"
    assert read_holder(environment="devnet", contract=contract) is None
    assert _active_slots("vv-contract-devnet-vault") == 0
    with ops_store_engine.connect() as conn:
        actor, details = conn.execute(select(AuditEntry.actor, AuditEntry.details)
                                      .where(AuditEntry.action == "contract_slot.force_released")
                                      .order_by(AuditEntry.id.desc()).limit(1)).one()
    assert actor == "mei" and details["reason"] == "worker host lost"
    assert details["holder"]["change_id"] == "chg-gone"
    with hold_contract_slots(contracts=[("devnet", contract)], procedure="parameter_change", change_id="chg-next",
                             timeout_seconds=5):
        pass
