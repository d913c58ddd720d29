"""Safe proposals in the ops store: signatures verified against the current owners, refusals audited, executed once,
owners' own execution found, a used nonce marks the proposal superseded. Real anvil, real Safe 1.4.1, real store."""

from __future__ import annotations

import uuid

import pytest
from eth_utils import keccak
from sqlalchemy import func, select

from tests.fixtures.safe_fixtures import send_as_owner, sign_as
from vvops.chain.signing import LocalKeySigner
from vvops.safe import proposals
from vvops.safe.execute import SafeTxSuperseded, ThresholdNotMet, execute
from vvops.safe.signatures import combine, sign_hash
from vvops.safe.tx import SafeCall, exec_transaction_data
from vvops.store.models import AuditEntry, ChainAction

pytestmark = [pytest.mark.devnet]
STRANGER_KEY = "0x" + "42" * 32


def _schedule_call(devnet, chain, fee: int, salt: str) -> SafeCall:
    timelock = chain.contract("Timelock", devnet.contracts.timelock)
    vault = chain.contract("VaultV1", devnet.contracts.vault)
    return SafeCall(to=timelock.address, data=timelock.encode("schedule", vault.address, 0, vault.encode("setFeeBps", fee),
                                                              b"\0" * 32, keccak(text=salt), 3600))


def _propose(safe_env, devnet, chain, fee=41):
    engine, rpc, gov, reader = safe_env
    key = f"test:{uuid.uuid4().hex}"
    row = proposals.propose(engine, reader, gov, idempotency_key=key, calls=[_schedule_call(devnet, chain, fee, key)],
                            description=f"feeBps -> {fee}")
    return key, row.safe_tx_hash


def _audit(engine, action: str) -> list[dict]:
    with engine.connect() as conn:
        return [d for d in conn.execute(select(AuditEntry.details).where(AuditEntry.action == action)).scalars()]


def test_signatures_are_verified_refused_and_audited_then_executed_exactly_once(safe_env, safe_devnet,
                                                                              fresh_safe_state):
    engine, rpc, gov, reader = safe_env
    key, safe_tx_hash = _propose(safe_env, safe_devnet, fresh_safe_state)
    assert proposals.propose(engine, reader, gov, idempotency_key=key,
                             calls=[_schedule_call(safe_devnet, fresh_safe_state, 41, key)],
                             description="again").safe_tx_hash == safe_tx_hash  # idempotent by key
    other_hash = "0x" + keccak(text="another SafeTx").hex()

    def add(sig, person=None, source="cli"):
        return [(v.accepted, v.reason) for v, _ in proposals.add_signature(
            engine, reader, gov, key, signature=sig, source=source, person=person)]

    assert add(sign_hash(STRANGER_KEY, safe_tx_hash)) == [(False, "not_owner")]
    assert add(sign_as(safe_devnet, "amara", other_hash), person="amara") == [(False, "wrong_owner")]
    assert add(sign_as(safe_devnet, "amara", other_hash)) == [(False, "not_owner")]
    assert add("0x1234") == [(False, "malformed")]
    assert add(sign_as(safe_devnet, "kwame", safe_tx_hash, "eth_sign"), person="kwame") == [(True, None)]
    assert add(sign_as(safe_devnet, "kwame", safe_tx_hash), person="kwame") == [(False, "duplicate")]
    with pytest.raises(ThresholdNotMet, match="1 of 2"):
        execute(engine, rpc, gov, key, LocalKeySigner.from_devnet("governance", safe_devnet.to_dict()))
    assert add(sign_as(safe_devnet, "amara", safe_tx_hash), source="ui") == [(True, None)]  # out of address order

    refused = _audit(engine, "safe.confirmation.refused")
    assert [r["refusal_reason"] for r in refused] == ["not_owner", "wrong_owner", "not_owner", "malformed", "duplicate"]
    accepted = _audit(engine, "safe.confirmation.accepted")
    assert [(a["person"], a["kind"]) for a in accepted] == [("kwame", "eth_sign"), ("amara", "eip712")]
    assert all(a["signature"].startswith("0x") and len(a["signature"]) == 132 for a in accepted)

    signer = LocalKeySigner.from_devnet("governance", safe_devnet.to_dict())
    first = execute(engine, rpc, gov, key, signer)
    assert first["status"] == "executed" and first["executed_by"] == "ops" and first["sent_now"]
    assert set(first["confirmed_by"].values()) == {"amara", "kwame"}
    again = execute(engine, rpc, gov, key, signer)
    assert again["sent_now"] is False and again["tx_hash"] == first["tx_hash"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ChainAction)).scalar() == 1
    assert reader.nonce() == 1
    # late signatures are refused: the proposal is closed
    assert add(sign_as(safe_devnet, "daniel", safe_tx_hash), person="daniel") == [(False, "closed")]


def test_owners_executing_it_themselves_is_found_and_nothing_is_sent(safe_env, safe_devnet, fresh_safe_state):
    engine, rpc, gov, reader = safe_env
    key, safe_tx_hash = _propose(safe_env, safe_devnet, fresh_safe_state, fee=42)
    sigs = {p: sign_as(safe_devnet, p, safe_tx_hash) for p in ("daniel", "amara")}
    for person, sig in sigs.items():
        proposals.add_signature(engine, reader, gov, key, signature=sig, source="slack", person=person)
    state = proposals.state(engine, reader, key)
    # "the Safe UI": an owner sends execTransaction with the signatures directly
    send_as_owner(fresh_safe_state, safe_devnet, "daniel", to=gov.address,
                  data=exec_transaction_data(state.spec, combine(state.confirmed, spec=state.spec)))
    out = execute(engine, rpc, gov, key, LocalKeySigner.from_devnet("governance", safe_devnet.to_dict()))
    assert out["status"] == "executed" and out["executed_by"] == "owners" and not out["sent_now"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ChainAction)).scalar() == 0
    assert _audit(engine, "safe.executed")[0]["executed_by"] == "owners"


def test_a_nonce_used_by_another_transaction_marks_the_proposal_superseded(safe_env, safe_devnet, fresh_safe_state):
    engine, rpc, gov, reader = safe_env
    key, safe_tx_hash = _propose(safe_env, safe_devnet, fresh_safe_state, fee=43)
    # the owners execute something else at the same nonce (e.g. a rejection transaction: a call to the Safe itself)
    from vvops.safe.tx import SafeTxSpec

    other = SafeTxSpec(safe=gov.address, chain_id=gov.chain_id, nonce=reader.nonce(), to=gov.address)
    sigs = {p: sign_as(safe_devnet, p, other.safe_tx_hash) for p in ("amara", "daniel")}
    send_as_owner(fresh_safe_state, safe_devnet, "amara", to=gov.address,
                  data=exec_transaction_data(other, combine(sigs, spec=other)))
    for person in ("amara", "daniel"):
        proposals.add_signature(engine, reader, gov, key, signature=sign_as(safe_devnet, person, safe_tx_hash),
                                source="cli", person=person)
    with pytest.raises(SafeTxSuperseded, match="superseded"):
        execute(engine, rpc, gov, key, LocalKeySigner.from_devnet("governance", safe_devnet.to_dict()))
    assert proposals.state(engine, reader, key).status == "superseded"
    # a new proposal takes the next free nonce
    key2, _ = _propose(safe_env, safe_devnet, fresh_safe_state, fee=43)
    assert proposals.state(engine, reader, key2).nonce == reader.nonce()


def test_a_contract_owner_confirms_through_eip1271(safe_env, safe_devnet, fresh_safe_state):
    """A nested Safe (1 of 1: amara) becomes an owner; its EIP-1271 signature counts, a bad one is refused."""
    import eth_abi
    from safe_eth.safe.safe_signature import SafeSignature, SafeSignatureContract

    from vvops.devnet.safe_deploy import deploy_safe
    from vvops.safe.tx import SafeTxSpec

    engine, rpc, gov, reader = safe_env
    chain = fresh_safe_state
    amara_address = next(o["address"] for o in safe_devnet.safe["owners"] if o["person"] == "amara")
    nested = deploy_safe(chain, owners=[amara_address], threshold=1, salt_nonce=7)
    # the main Safe adds the nested Safe as a third... fourth owner (amara + daniel sign)
    add = SafeTxSpec(safe=gov.address, chain_id=gov.chain_id, nonce=reader.nonce(), to=gov.address,
                     data="0x" + keccak(text="addOwnerWithThreshold(address,uint256)")[:4].hex()
                     + eth_abi.encode(["address", "uint256"], [nested["address"], 2]).hex())
    sigs = {p: sign_as(safe_devnet, p, add.safe_tx_hash) for p in ("amara", "daniel")}
    send_as_owner(chain, safe_devnet, "daniel", to=gov.address, data=exec_transaction_data(add, combine(sigs, spec=add)))
    assert nested["address"] in reader.owners()

    key, safe_tx_hash = _propose(safe_env, safe_devnet, chain, fee=47)
    spec = proposals.state(engine, reader, key).spec
    # the nested Safe's owner signs the nested Safe's message hash of the SafeTx preimage (legacy EIP-1271, 1.4.1)
    message_hash = chain.call(nested["fallback_handler"], "0x" + keccak(text="getMessageHashForSafe(address,bytes)")[:4].hex()
                              + eth_abi.encode(["address", "bytes"], [nested["address"], spec.preimage]).hex())
    inner = sign_as(safe_devnet, "amara", "0x" + message_hash.hex())
    contract_sig = SafeSignatureContract.from_values(nested["address"], bytes.fromhex(safe_tx_hash[2:]), spec.preimage,
                                                     bytes.fromhex(inner[2:]))
    blob = "0x" + bytes(SafeSignature.export_signatures([contract_sig])).hex()
    bad_inner = sign_as(safe_devnet, "kwame", "0x" + message_hash.hex())  # kwame does not own the nested Safe
    bad = SafeSignatureContract.from_values(nested["address"], bytes.fromhex(safe_tx_hash[2:]), spec.preimage,
                                            bytes.fromhex(bad_inner[2:]))
    bad_blob = "0x" + bytes(SafeSignature.export_signatures([bad])).hex()

    def add_sig(sig):
        return [(v.kind, v.accepted, v.reason) for v, _ in proposals.add_signature(
            engine, reader, gov, key, signature=sig, source="cli")]

    assert add_sig(bad_blob) == [("eip1271", False, "invalid_signature")]
    assert add_sig(blob) == [("eip1271", True, None)]
    assert add_sig(sign_as(safe_devnet, "kwame", safe_tx_hash)) == [("eip712", True, None)]
    out = execute(engine, rpc, gov, key, LocalKeySigner.from_devnet("governance", safe_devnet.to_dict()))
    assert out["status"] == "executed" and nested["address"] in out["confirmed_by"]


class Crash(BaseException):
    """The worker dying (nothing in the code under test catches a BaseException)."""


def test_a_crash_between_signing_and_broadcasting_exectransaction_never_executes_twice(
        safe_env, safe_devnet, fresh_safe_state, monkeypatch):
    from vvops.chain.actions import ChainActions

    engine, rpc, gov, reader = safe_env
    key, safe_tx_hash = _propose(safe_env, safe_devnet, fresh_safe_state, fee=48)
    for person in ("kwame", "daniel"):
        proposals.add_signature(engine, reader, gov, key, signature=sign_as(safe_devnet, person, safe_tx_hash),
                                source="cli", person=person)
    signer = LocalKeySigner.from_devnet("governance", safe_devnet.to_dict())
    real = ChainActions._broadcast

    def dies(self, *args, **kwargs):
        raise Crash()

    monkeypatch.setattr(ChainActions, "_broadcast", dies)
    with pytest.raises(Crash):
        execute(engine, rpc, gov, key, signer)  # signed and stored, never broadcast
    # a late third signature must not change what the rerun sends (the signatures were frozen first)
    proposals.add_signature(engine, reader, gov, key, signature=sign_as(safe_devnet, "amara", safe_tx_hash),
                            source="cli", person="amara")
    monkeypatch.setattr(ChainActions, "_broadcast", real)
    first = execute(engine, rpc, gov, key, signer)
    second = execute(engine, rpc, gov, key, signer)
    assert first["status"] == "executed" and first["executed_by"] == "ops"
    assert second["tx_hash"] == first["tx_hash"] and not second["sent_now"]
    assert reader.nonce() == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ChainAction)).scalar() == 1
