"""Exactly-once on-chain actions against a real anvil: stored before broadcast, never sent twice, replaced/reverts reported."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from vvops.chain.actions import (ActionReplaced, ActionReverted, ChainActions, IdempotencyConflict)
from vvops.chain.rpc import RpcClient
from vvops.chain.signing import LocalKeySigner
from vvops.chain.abi import contract_abi
from vvops.store.models import ChainAction

pytestmark = [pytest.mark.devnet]


class Crash(BaseException):
    """Stands in for the worker dying (a BaseException: nothing in the code under test catches it)."""


@pytest.fixture
def actions(devnet, fresh_devnet_state, ops_store_engine):
    signer = LocalKeySigner.from_devnet("governance", devnet.to_dict())
    rpc = RpcClient([devnet.rpc_url])
    yield ChainActions(rpc, ops_store_engine, signer, chain_id=devnet.chain_id, receipt_timeout_s=20)
    rpc.close()


def _approve(devnet, amount: int = 1) -> tuple[str, bytes]:
    return devnet.contracts.asset, contract_abi("MockAsset").encode_call("approve", devnet.accounts.spare.address, amount)


def _key() -> str:
    return f"test:{uuid.uuid4().hex}"


def _nonce(chain, address) -> int:
    return int(chain.request("eth_getTransactionCount", [address, "latest"]), 16)


def _row(engine, key) -> ChainAction:
    with engine.connect() as conn:
        return conn.execute(select(ChainAction).where(ChainAction.idempotency_key == key)).one()


def test_a_keyed_action_is_stored_mined_and_never_sent_twice(actions, devnet, fresh_devnet_state, ops_store_engine):
    to, data = _approve(devnet)
    key = _key()
    before = _nonce(fresh_devnet_state, actions.signer.address)

    first = actions.send(idempotency_key=key, to=to, data=data, description="approve 1")
    again = actions.send(idempotency_key=key, to=to, data=data, description="approve 1")

    assert first.status == "mined" and first.sent_now and first.block_number
    assert (again.status, again.tx_hash, again.sent_now) == ("mined", first.tx_hash, False)
    assert again.receipt["transactionHash"] == first.tx_hash
    assert _nonce(fresh_devnet_state, actions.signer.address) == before + 1
    row = _row(ops_store_engine, key)
    assert (row.status, row.nonce, row.signed_tx_hash, row.selector) == ("mined", before, first.tx_hash, "0x095ea7b3")
    assert row.raw_tx.startswith("0x02")  # EIP-1559, signed locally


def test_a_crash_after_broadcast_is_recovered_by_waiting_for_the_receipt(actions, devnet, fresh_devnet_state,
                                                                         ops_store_engine, monkeypatch):
    to, data = _approve(devnet)
    key = _key()
    before = _nonce(fresh_devnet_state, actions.signer.address)

    def crash(self, result):
        raise Crash("worker killed after broadcast")

    with monkeypatch.context() as m:
        m.setattr(ChainActions, "_wait", crash)
        with pytest.raises(Crash):
            actions.send(idempotency_key=key, to=to, data=data)
    assert _row(ops_store_engine, key).status == "broadcast"
    assert _nonce(fresh_devnet_state, actions.signer.address) == before + 1

    rerun = ChainActions(actions.rpc, ops_store_engine, actions.signer, chain_id=devnet.chain_id)
    result = rerun.send(idempotency_key=key, to=to, data=data)

    assert (result.status, result.sent_now) == ("mined", False)
    assert result.tx_hash == _row(ops_store_engine, key).signed_tx_hash
    assert _nonce(fresh_devnet_state, actions.signer.address) == before + 1  # nothing new sent


def test_a_crash_before_broadcast_sends_the_stored_signed_tx_not_a_new_one(actions, devnet, fresh_devnet_state,
                                                                           ops_store_engine, monkeypatch):
    to, data = _approve(devnet)
    key = _key()
    before = _nonce(fresh_devnet_state, actions.signer.address)
    with monkeypatch.context() as m:
        m.setattr(ChainActions, "_broadcast", lambda *a: (_ for _ in ()).throw(Crash("killed before broadcast")))
        with pytest.raises(Crash):
            actions.send(idempotency_key=key, to=to, data=data)
    stored = _row(ops_store_engine, key)
    assert (stored.status, stored.nonce) == ("pending", before)
    assert _nonce(fresh_devnet_state, actions.signer.address) == before

    result = actions.send(idempotency_key=key, to=to, data=data)

    assert result.status == "mined" and result.tx_hash == stored.signed_tx_hash
    assert _nonce(fresh_devnet_state, actions.signer.address) == before + 1


def test_a_nonce_taken_by_another_transaction_is_reported_as_replaced(actions, devnet, fresh_devnet_state,
                                                                      ops_store_engine, monkeypatch):
    to, data = _approve(devnet)
    key = _key()
    with monkeypatch.context() as m:
        m.setattr(ChainActions, "_broadcast", lambda *a: (_ for _ in ()).throw(Crash("killed before broadcast")))
        with pytest.raises(Crash):
            actions.send(idempotency_key=key, to=to, data=data)
    nonce = _row(ops_store_engine, key).nonce
    # someone else (e.g. an operator by hand) uses the same account and nonce
    fresh_devnet_state.transact(sender=actions.signer.address, to=to, data=_approve(devnet, 2)[1], nonce=nonce)

    with pytest.raises(ActionReplaced, match=rf"nonce {nonce} .* used by another transaction"):
        actions.send(idempotency_key=key, to=to, data=data)

    row = _row(ops_store_engine, key)
    assert row.status == "replaced" and "can never be mined" in row.error
    # the next action picks the next free nonce
    assert actions.send(idempotency_key=_key(), to=to, data=data).nonce == nonce + 1


def test_a_revert_is_decoded_and_nothing_is_stored_or_sent(actions, devnet, fresh_devnet_state, ops_store_engine):
    key = _key()
    before = _nonce(fresh_devnet_state, actions.signer.address)
    data = contract_abi("VaultV1").encode_call("setFeeBps", 50)  # governance is not the owner (the timelock is)

    with pytest.raises(ActionReverted, match=r"would revert: NotOwner\(\)"):
        actions.send(idempotency_key=key, to=devnet.contracts.vault, data=data)

    assert actions.lookup(key) is None
    assert _nonce(fresh_devnet_state, actions.signer.address) == before


def test_a_key_reused_for_another_transaction_is_refused(actions, devnet, fresh_devnet_state):
    to, data = _approve(devnet)
    key = _key()
    actions.send(idempotency_key=key, to=to, data=data)
    with pytest.raises(IdempotencyConflict, match="already used for a different transaction"):
        actions.send(idempotency_key=key, to=to, data=_approve(devnet, 7)[1])


@pytest.mark.prefect
def test_send_action_task_reruns_with_the_same_key_send_nothing(ops_flows, devnet, fresh_devnet_state):
    from prefect import flow

    from tasks.governance import send_action

    to, data = _approve(devnet)
    key = _key()

    @flow(name="send-action-twice")
    def twice() -> list[dict]:
        return [send_action(environment="devnet", idempotency_key=key, signer_role="governance", to=to,
                            data="0x" + data.hex(), description="approve 1") for _ in range(2)]

    before = _nonce(fresh_devnet_state, devnet.accounts.governance.address)
    first, second = twice()
    assert first["status"] == second["status"] == "mined"
    assert (first["sent_now"], second["sent_now"], second["tx_hash"]) == (True, False, first["tx_hash"])
    assert _nonce(fresh_devnet_state, devnet.accounts.governance.address) == before + 1
