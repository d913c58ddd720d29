"""No orphaned timelock operations (issue 13 item 6): the ops sweep compares the operations pending on chain
with the ones we scheduled and alerts on any it did not schedule or lost track of. The event reading uses the
signatures OpenZeppelin's TimelockController shares with our Timelock."""

from __future__ import annotations

import os

import pytest
from eth_utils import keccak
from sqlalchemy import select

from vvops.procedures.timelock_ops import (CALL_EXECUTED, CALL_SALT, CALL_SCHEDULED, CANCELLED,
                                           operations_from_logs, reconcile)
from vvops.store.models import Alert


def _log(topic: str, op: str, block: int, index: int = 0, data: str = "0x") -> dict:
    return {"topics": [topic, op, "0x" + "00" * 32], "blockNumber": hex(block), "logIndex": hex(index),
            "transactionHash": "0x" + "ab" * 32, "data": data}


def test_pending_operations_from_timelock_events_batch_and_cancel():
    a, b, c = ("0x" + ch * 64 for ch in "abc")
    salt = "0x" + keccak(text="parameter_change:pc-x:schedule").hex()
    logs = [_log(CALL_SCHEDULED, a, 10), _log(CALL_SCHEDULED, a, 10, 1),      # an OZ batch: one id, two calls
            _log(CALL_SALT, a, 10, 2, data=salt),
            _log(CALL_SCHEDULED, b, 11), _log(CANCELLED, b, 12),
            _log(CALL_SCHEDULED, c, 13), _log(CALL_EXECUTED, c, 14)]
    ops = operations_from_logs(logs)
    assert (ops[a].calls, ops[a].ended, ops[a].salt) == (2, None, salt)
    assert (ops[b].ended, ops[c].ended) == ("cancelled", "executed")
    ours = {c: {"status": "scheduled", "ready_at": 0, "description": "ours"}}
    result = reconcile(ops, ours, chain_time=100, grace_s=10)
    assert [o.operation_id for o in result.unknown] == [a] and result.pending_on_chain == 1
    assert [i["ended"] for i in result.ended_elsewhere] == ["executed"]
    assert reconcile(ops, {}, chain_time=100, grace_s=10, our_salts={salt}).unknown == []


@pytest.mark.devnet
@pytest.mark.prefect
def test_the_sweep_alerts_on_an_operation_it_did_not_schedule_and_on_one_it_lost(ops_flows, ops_store_engine,
                                                                                  fresh_devnet_state):
    from prefect import flow

    from tasks.governance import schedule_on_timelock, send_action
    from tasks.timelock_watch import reconcile_timelock
    from vvops.chain.abi import contract_abi
    from vvops.devnet.timetravel import increase_time, mine

    @flow(name="timelock-watch-test")
    def scenario():
        _scenario(fresh_devnet_state, schedule_on_timelock, send_action, reconcile_timelock, contract_abi,
                  increase_time, mine)
        return True

    assert scenario()
    with ops_store_engine.connect() as conn:
        names = set(conn.execute(select(Alert.rule)).scalars())
    assert {"timelock_operation_unknown", "timelock_operation_stale"} <= names


def _scenario(fresh_devnet_state, schedule_on_timelock, send_action, reconcile_timelock, contract_abi,
              increase_time, mine):

    vault_call = contract_abi("VaultV1").encode_call("setFeeBps", 31)
    delay = 3600
    rogue_salt = os.urandom(32)
    rogue = contract_abi("Timelock").encode_call("schedule", _vault(), 0, vault_call, b"\0" * 32, rogue_salt, delay)
    send_action.fn(environment="devnet", idempotency_key=f"outside-procedures:{rogue_salt.hex()[:8]}",
                   signer_role="governance", to="timelock", data=rogue, description="scheduled by hand")
    ours = schedule_on_timelock.fn(environment="devnet", idempotency_key=f"test:{rogue_salt.hex()[:8]}:schedule",
                                   target="vault", data=vault_call)

    first = reconcile_timelock.fn(environment="devnet")
    assert len(first["unknown"]) >= 1 and ours["operation_id"] not in first["unknown"]
    assert ours["operation_id"] not in first["stale"]                # ours and not yet ready: fine

    increase_time(fresh_devnet_state, ours["delay"] + 7200)         # its run died; nobody executes it
    mine(fresh_devnet_state)
    later = reconcile_timelock.fn(environment="devnet")
    assert ours["operation_id"] in later["stale"]


def _vault() -> str:
    from tasks.runtime import ops_config
    from vvops.config import resolve_deployment

    return resolve_deployment(ops_config("devnet"), "vault").address
