"""Emergency pause (guardian, per policy: auto for P0, one lead otherwise) and unpause (two leads, timelock) on anvil."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from tests.fixtures.approval_fixtures import approval_run_id, resume_signed
from vvops.store.models import AuditEntry, ChainAction, IncidentEvent

pytestmark = [pytest.mark.devnet, pytest.mark.prefect]


def _paused(chain, devnet) -> bool:
    return chain.contract("VaultV1", devnet.contracts.vault).call("paused")


def _answer(run_id: str, approver: str, decision: str = "approve") -> None:
    resume_signed(run_id, None, approver, decision, reason="test")


def _reason() -> str:
    return f"drain suspected {uuid.uuid4().hex[:6]}"


def test_a_p0_pauses_at_once_signed_by_the_guardian(ops_flows, ops_store_engine, devnet, fresh_devnet_state):
    from flows.emergency_pause import emergency_pause
    from tasks.store import open_incident

    incident = open_incident.fn(title="drain on the vault", incident_type="security", severity="P0",
                                commander="amara", opened_by="test")

    result = emergency_pause(reason=_reason(), requested_by="priya", severity="P0", incident_key=incident,
                             environment="devnet")

    assert result["status"] == "paused" and result["approval"].startswith("auto-approved")
    assert _paused(fresh_devnet_state, devnet)
    with ops_store_engine.connect() as conn:
        sender = conn.execute(select(ChainAction.from_address).where(
            ChainAction.signed_tx_hash == result["tx_hash"])).scalar()
        events = conn.execute(select(IncidentEvent.kind).join(IncidentEvent.incident)
                              .where(IncidentEvent.data["tx_hash"].as_string() == result["tx_hash"])).scalars().all()
    assert sender == devnet.accounts.guardian.address
    assert events == ["containment"]
    # a second request finds it paused and sends nothing
    again = emergency_pause(reason="again", requested_by="priya", severity="P0", environment="devnet")
    assert again["status"] == "already_paused"


def test_a_p1_waits_for_one_lead(ops_flows, ops_store_engine, devnet, fresh_devnet_state, flow_in_thread):
    from flows.emergency_pause import emergency_pause

    reason = _reason()
    thread = flow_in_thread(emergency_pause, reason=reason, requested_by="priya", severity="P1",
                            environment="devnet", approval_poll_interval=0.5)
    run_id = approval_run_id(ops_store_engine, f"pause vault (P1): {reason}")
    thread.wait_paused(run_id)
    assert not _paused(fresh_devnet_state, devnet)

    _answer(run_id, "kwame")
    result = thread.join()

    assert result["status"] == "paused" and result["approvers"] == ["kwame"]
    assert _paused(fresh_devnet_state, devnet)


def test_unpause_needs_two_leads_and_goes_through_the_timelock(ops_flows, ops_store_engine, devnet,
                                                               fresh_devnet_state, flow_in_thread):
    from flows.unpause import unpause

    fresh_devnet_state.contract("VaultV1", devnet.contracts.vault).transact(devnet.accounts.guardian.address, "pause")
    reason = f"fixed {uuid.uuid4().hex[:6]}"
    thread = flow_in_thread(unpause, reason=reason, requested_by="priya", environment="devnet",
                            approval_poll_interval=0.5)
    run_id = approval_run_id(ops_store_engine, f"unpause vault: {reason}")
    key = thread.wait_paused(run_id)

    _answer(run_id, "amara")
    thread.wait_paused(run_id, after=key)  # one approval is not enough: still waiting
    assert _paused(fresh_devnet_state, devnet)
    with ops_store_engine.connect() as conn:
        assert conn.execute(select(ChainAction.id).where(ChainAction.idempotency_key.like(f"unpause:{run_id}:%"))).first() is None

    _answer(run_id, "daniel")
    result = thread.join()

    assert result["status"] == "unpaused" and sorted(result["approvers"]) == ["amara", "daniel"]
    assert not _paused(fresh_devnet_state, devnet)
    with ops_store_engine.connect() as conn:
        keys = conn.execute(select(ChainAction.idempotency_key, ChainAction.from_address)
                            .where(ChainAction.idempotency_key.like(f"unpause:{run_id}:%"))).all()
        last = conn.execute(select(AuditEntry.action).where(AuditEntry.subject == "vault")
                            .order_by(AuditEntry.id.desc()).limit(1)).scalar()
    assert [k for k, _ in keys] == [f"unpause:{run_id}:schedule", f"unpause:{run_id}:execute"]
    assert {a for _, a in keys} == {devnet.accounts.governance.address}
    assert last == "unpause.done"


def test_the_guardian_cannot_unpause(devnet, fresh_devnet_state):
    from vvops.devnet.chain import TxReverted

    vault = fresh_devnet_state.contract("VaultV1", devnet.contracts.vault)
    vault.transact(devnet.accounts.guardian.address, "pause")
    with pytest.raises(TxReverted, match="NotOwner"):
        vault.transact(devnet.accounts.guardian.address, "unpause")


def test_a_pause_that_loses_a_race_to_another_pause_is_already_paused_not_a_failure(ops_flows, devnet,
                                                                                     fresh_devnet_state, monkeypatch):
    """Two containments in the same moment (the watcher's fast path and a flow, or two approved pauses): both read
    paused() == false, both send; the second pause() reverts with EnforcedPause. That run met its goal."""
    from prefect import flow

    import tasks.governance as governance
    from flows.emergency_pause import emergency_pause

    emergency_pause(reason=_reason(), requested_by="priya", severity="P0", environment="devnet")  # the winner
    assert _paused(fresh_devnet_state, devnet)
    real_read, reads = governance.read_view, []

    def stale_first_read(environment, address, artifact, name, *args):  # the loser read before the winner mined
        reads.append(name)
        return False if len(reads) == 1 else real_read(environment, address, artifact, name, *args)

    monkeypatch.setattr(governance, "read_view", stale_first_read)

    @flow
    def losing_containment() -> dict:
        return governance.guardian_pause(environment="devnet", idempotency_key=f"race:{uuid.uuid4().hex[:8]}")

    loser = losing_containment()
    assert loser["status"] == "already_paused" and loser["paused"] and not loser["sent_now"]
