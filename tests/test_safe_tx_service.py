"""The Safe Transaction Service path against a local stand-in of its public API (tests/safe_tx_service_standin.py),
driven by safe-eth-py's client: propose as a delegate, owners confirm there, every confirmation re-verified here."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from eth_utils import keccak
from sqlalchemy import select

from tests.fixtures.safe_fixtures import sign_as
from tests.safe_tx_service_standin import SafeTxServiceStandIn
from vvops.chain.signing import LocalKeySigner
from vvops.safe import proposals
from vvops.safe.execute import execute
from vvops.safe.service_client import TransactionServiceError, post_proposal, pull_confirmations
from vvops.safe.signatures import sign_hash
from vvops.store.models import AuditEntry

pytestmark = [pytest.mark.devnet]


@pytest.fixture
def service(safe_devnet):
    executor = LocalKeySigner.from_devnet("governance", safe_devnet.to_dict())
    standin = SafeTxServiceStandIn(safe_devnet.rpc_url, safe_devnet.chain_id, delegates=[executor.address]).start()
    yield standin, executor
    standin.stop()


def test_propose_on_the_service_and_read_back_verified_confirmations(safe_env, safe_devnet, fresh_safe_state,
                                                                      service):
    from tests.test_safe_confirmations import _schedule_call

    standin, executor = service
    engine, rpc, gov, reader = safe_env
    gov = replace(gov, service_url=standin.base_url)
    key = f"test:{uuid.uuid4().hex}"
    row = proposals.propose(engine, reader, gov, idempotency_key=key,
                            calls=[_schedule_call(safe_devnet, fresh_safe_state, 44, key)], description="fee 44")
    assert post_proposal(gov, engine, key, executor=executor) is True
    assert post_proposal(gov, engine, key, executor=executor) is False  # already there: not posted twice
    assert standin.txs[row.safe_tx_hash]["confirmations"] == []  # the delegate's signature is no confirmation

    assert standin.confirm(row.safe_tx_hash, sign_as(safe_devnet, "daniel", row.safe_tx_hash))[0] == 201
    assert standin.confirm(row.safe_tx_hash, sign_hash("0x" + "42" * 32, row.safe_tx_hash))[0] == 422
    # a service that hands back a forged confirmation (wrong hash) is not believed
    forged = sign_as(safe_devnet, "kwame", "0x" + keccak(text="something else").hex())
    standin.txs[row.safe_tx_hash]["confirmations"].append(
        {"owner": safe_devnet.safe["owners"][2]["address"], "signature": forged, "signatureType": "EOA"})
    assert pull_confirmations(gov, engine, reader, key) == 2
    assert pull_confirmations(gov, engine, reader, key) == 0  # seen ones are not re-checked or re-audited
    state = proposals.state(engine, reader, key)
    assert [state.persons[o] for o in state.confirmed] == ["daniel"]

    assert standin.confirm(row.safe_tx_hash, sign_as(safe_devnet, "amara", row.safe_tx_hash, "eth_sign"))[0] == 201
    assert pull_confirmations(gov, engine, reader, key) == 1
    out = execute(engine, rpc, gov, key, executor)
    assert out["status"] == "executed" and set(out["confirmed_by"].values()) == {"daniel", "amara"}
    with engine.connect() as conn:
        refused = conn.execute(select(AuditEntry.details).where(AuditEntry.action == "safe.confirmation.refused")
                               ).scalars().all()
    assert [r["refusal_reason"] for r in refused] == ["wrong_owner"]
    assert all(r["submitted_by"].startswith("transaction-service:") for r in refused)


def test_an_unreachable_service_is_one_clear_error(safe_env, safe_devnet, fresh_safe_state, service):
    from tests.test_safe_confirmations import _schedule_call

    standin, executor = service
    engine, rpc, gov, reader = safe_env
    gov = replace(gov, service_url=standin.base_url)
    key = f"test:{uuid.uuid4().hex}"
    proposals.propose(engine, reader, gov, idempotency_key=key,
                      calls=[_schedule_call(safe_devnet, fresh_safe_state, 46, key)], description="fee 46")
    standin.inject("server_error", count=50)
    with pytest.raises(TransactionServiceError, match="HTTP 500"):
        pull_confirmations(gov, engine, reader, key)
