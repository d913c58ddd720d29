"""Safe v1.4.1 on the devnet (`--governance safe`): deployment, SafeTx hashes equal to the contract's, MultiSend."""

from __future__ import annotations

import random

import pytest
from eth_utils import keccak, to_checksum_address

from tests.fixtures.safe_fixtures import sign_as
from vvops.safe.contracts import SafeReader
from vvops.safe.signatures import combine
from vvops.safe.tx import CALL, DELEGATECALL, SafeCall, SafeTxSpec, batch, decode_multi_send, exec_transaction_data

pytestmark = [pytest.mark.devnet]
PROPOSER_ROLE = keccak(text="PROPOSER_ROLE")
EXECUTOR_ROLE = keccak(text="EXECUTOR_ROLE")


def test_the_safe_profile_devnet_has_a_2_of_3_safe_of_leads_holding_the_proposer_role(safe_devnet, safe_chain):
    from vvops.config import load_config

    safe = SafeReader(safe_chain, safe_devnet.safe["address"])
    assert safe.version() == "1.4.1" and safe.threshold() == 2 and safe.nonce() == 0
    leads = {p.id for p in load_config().people_with_role("ops_lead")}
    owners = {o["person"]: o["address"] for o in safe_devnet.safe["owners"]}
    assert set(owners) <= leads and len(owners) == 3
    assert safe.owners() == list(owners.values())
    timelock = safe_chain.contract("Timelock", safe_devnet.contracts.timelock)
    assert timelock.call("hasRole", PROPOSER_ROLE, safe.address)
    assert not timelock.call("hasRole", PROPOSER_ROLE, safe_devnet.accounts.governance.address)
    assert timelock.call("hasRole", EXECUTOR_ROLE, safe_devnet.accounts.governance.address)
    for kind in ("singleton", "proxy_factory", "fallback_handler", "multi_send", "multi_send_call_only"):
        assert safe.is_contract(safe_devnet.safe[kind]), kind
    assert "safe" in safe_devnet.summary() and "private_key" not in safe_devnet.summary()


def test_safe_tx_hash_equals_get_transaction_hash_for_many_inputs(safe_devnet, safe_chain):
    rng = random.Random(15)
    safe = SafeReader(safe_chain, safe_devnet.safe["address"])
    checked = 0
    for i in range(40):
        spec = SafeTxSpec(
            safe=safe.address, chain_id=safe_devnet.chain_id, nonce=rng.choice([0, 1, 7, 2**32, 2**256 - 1]),
            to=to_checksum_address(rng.randbytes(20)), value=rng.choice([0, 1, 10**18, 2**255]),
            data="0x" + rng.randbytes(rng.choice([0, 1, 4, 31, 32, 33, 68, 1000])).hex(),
            operation=rng.choice([CALL, DELEGATECALL]), safe_tx_gas=rng.choice([0, 21000, 2**64]),
            base_gas=rng.choice([0, 50000]), gas_price=rng.choice([0, 10**9]),
            gas_token=rng.choice(["0x" + "00" * 20, to_checksum_address(rng.randbytes(20))]),
            refund_receiver=rng.choice(["0x" + "00" * 20, to_checksum_address(rng.randbytes(20))]))
        on_chain = safe.transaction_hash(to=spec.to, value=spec.value, data=bytes.fromhex(spec.data[2:]),
                                         operation=spec.operation, safe_tx_gas=spec.safe_tx_gas,
                                         base_gas=spec.base_gas, gas_price=spec.gas_price, gas_token=spec.gas_token,
                                         refund_receiver=spec.refund_receiver, nonce=spec.nonce)
        assert spec.safe_tx_hash == on_chain, spec
        checked += 1
    assert checked == 40
    # the hash depends on the chain and the Safe (EIP-712 domain)
    assert spec.safe_tx_hash != SafeTxSpec(**{**spec.__dict__, "chain_id": 1}).safe_tx_hash


def test_a_multisend_batch_schedules_several_timelock_calls_in_one_safe_transaction(safe_devnet, fresh_safe_state):
    chain = fresh_safe_state
    timelock = chain.contract("Timelock", safe_devnet.contracts.timelock)
    vault = chain.contract("VaultV1", safe_devnet.contracts.vault)
    calls = []
    for i, fee in enumerate((40, 45)):
        calls.append(SafeCall(to=timelock.address, data=timelock.encode(
            "schedule", vault.address, 0, vault.encode("setFeeBps", fee), b"\0" * 32, keccak(text=f"batch-{i}"), 3600)))
    safe = SafeReader(chain, safe_devnet.safe["address"])
    spec = batch(safe=safe.address, chain_id=safe_devnet.chain_id, nonce=safe.nonce(), calls=calls,
                 multi_send=safe_devnet.safe["multi_send"])
    assert spec.operation == DELEGATECALL and spec.to == safe_devnet.safe["multi_send"]
    assert decode_multi_send(spec.data) == calls
    # owners sign out of order and in both forms; combine() sorts them by owner (GS026 otherwise)
    sigs = {"kwame": sign_as(safe_devnet, "kwame", spec.safe_tx_hash, "eth_sign"),
            "amara": sign_as(safe_devnet, "amara", spec.safe_tx_hash)}
    data = exec_transaction_data(spec, combine(sigs, spec=spec))
    receipt = chain.transact(sender=safe_devnet.accounts.governance.address, to=safe.address, data=data, gas=2_000_000)
    assert int(receipt["status"], 16) == 1
    assert safe.execution_of(spec.safe_tx_hash).success
    for i, fee in enumerate((40, 45)):
        op = timelock.call("hashOperation", vault.address, 0, vault.encode("setFeeBps", fee), b"\0" * 32,
                           keccak(text=f"batch-{i}"))
        assert timelock.call("getTimestamp", op) > 1
    assert safe.nonce() == spec.nonce + 1
