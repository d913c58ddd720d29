"""Containment fast path: the watcher pauses the vault in the step that stores a P0 alert, exactly once, under
the key incident-response uses; our own pause opens no second incident; without a policy nothing is sent."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import delete, func, select

from tests.watcher_helpers import WatcherThread, wait_until
from vvops.chain.rpc import RpcClient
from vvops.chain.signing import LocalKeySigner
from vvops.store.models import Alert, ChainAction, IncidentEvent, ProcessedBlock, WatcherCheckpoint
from vvops.watcher import PrefectEventSink, WatcherAlert, load_watcher_config
from vvops.watcher.containment import Containment, containment_key

pytestmark = [pytest.mark.devnet]


def _settings(**overrides):
    return load_watcher_config(overrides={"containment": overrides} if overrides else None).containment


def _containment(engine, devnet, settings=None):
    rpc = RpcClient([devnet.rpc_url], timeout_s=5)
    return Containment.from_config(engine=engine, rpc=rpc, chain_id=devnet.chain_id, environment="devnet",
                                   settings=settings or _settings(),
                                   contracts={"vault": devnet.contracts.vault, "timelock": devnet.contracts.timelock},
                                   signer=LocalKeySigner(devnet.accounts.guardian.private_key, label="guardian"))


def _alert(rule: str, severity: str, fingerprint_label: str = "x", contract: str = "vault") -> WatcherAlert:
    return WatcherAlert(rule=rule, severity=severity, chain_id=31337, environment="devnet", block_number=1,
                        block_hash="0x" + "11" * 32, block_timestamp=0, tx_hash=None, contract=contract,
                        dedup_key=fingerprint_label, labels={"alertname": rule, "dedup": fingerprint_label})


def _paused(chain, devnet) -> bool:
    return chain.contract("VaultV1", devnet.contracts.vault).call("paused")


def test_a_policy_may_only_name_p0_rules_and_rules_that_exist():
    with pytest.raises(ValidationError, match="only P0 rules"):
        _settings(policies=[{"name": "p", "rules": ["vault_paused"], "contracts": ["vault"], "environments": ["devnet"]}])
    with pytest.raises(ValidationError, match="unknown rule"):
        _settings(policies=[{"name": "p", "rules": ["nope"], "contracts": ["vault"], "environments": ["devnet"]}])


def test_without_a_matching_policy_nothing_is_sent(sqlite_store_url, devnet, fresh_devnet_state):
    from vvops.store import make_engine

    engine = make_engine(sqlite_store_url)
    mainnet_only = _settings(policies=[{"name": "m", "rules": ["tvl_drop"], "contracts": ["vault"],
                                        "environments": ["mainnet"]}])
    assert _containment(engine, devnet, mainnet_only) is None   # no policy for devnet: not even started
    contain = _containment(engine, devnet).start()
    try:
        assert contain.prepared("vault")["nonce"] >= 0          # built before any attack
        flags = contain.fire_many([_alert("tvl_drop", "P1"),     # not P0
                                   _alert("large_withdrawals", "P0"),   # rule not in the policy
                                   _alert("tvl_drop", "P0", contract="timelock")])   # contract not in the policy
        assert flags == [False, False, False]
        with engine.connect() as conn:
            assert conn.scalar(select(func.count(ChainAction.id))) == 0
        assert not _paused(fresh_devnet_state, devnet)
        # a matching alert pauses once; a second P0 on the same contract while it is in flight sends nothing
        assert contain.fire_many([_alert("tvl_drop", "P0", "a"), _alert("admin_changed", "P0", "b")]) == [True, False]
        wait_until(lambda: _paused(fresh_devnet_state, devnet), what="the vault paused")
        with engine.connect() as conn:
            keys = conn.scalars(select(ChainAction.idempotency_key)).all()
        assert keys == [containment_key("devnet", "vault", _alert("tvl_drop", "P0", "a").fingerprint)]
        contain.refresh()
        assert contain.prepared("vault") is None                 # paused: pause() would revert, nothing prepared
        assert contain.fire_many([_alert("tvl_drop", "P0", "c")]) == [False]
    finally:
        contain.stop()
        contain.rpc.close()
        engine.dispose()


@pytest.mark.prefect
@pytest.mark.timeout(900)   # the Prefect harness alone can take minutes to start on a loaded machine
def test_the_watcher_pauses_a_drain_and_the_incident_records_that_pause_without_a_second_incident(
        ops_flows, quiet_store, devnet, fresh_devnet_state):
    from flows.incident_response import incident_response
    from vvops.devnet.scenarios import run_scenario
    from vvops.store import default_store_url

    engine = quiet_store
    events: list[dict] = []
    contain = _containment(engine, devnet)
    watcher = WatcherThread(default_store_url(), [devnet.rpc_url], devnet, confirmations=0, containment=contain,
                            sink=PrefectEventSink(emit=lambda **event: events.append(event)))
    try:
        watcher.start()
        wait_until(lambda: watcher.watcher is not None and watcher.watcher.stats.last_block is not None,
                   what="the watcher following")
        run_scenario("drain", devnet_info=devnet, rpc_url=devnet.rpc_url)
        wait_until(lambda: _paused(fresh_devnet_state, devnet), timeout=30, what="the fast path's pause")
        stored_pause = wait_until(lambda: _stored_alert(engine, "vault_paused"), timeout=30, what="vault_paused stored")
    finally:
        watcher.stop()
    assert watcher.error is None
    [record] = [r for r in contain.stats.records if r.tx_hash]
    assert record.rule in ("tvl_drop",) and contain.stats.sent == 1
    # our own pause is stored (and posted) as expected, but emits no event: no second incident
    assert stored_pause["expected_action"] == record.key
    assert [e["resource"]["vv.rule"] for e in events if e["resource"]["vv.rule"] == "vault_paused"] == []
    [p0] = [e for e in events if e["resource"]["vv.rule"] == "tvl_drop"]
    with engine.connect() as conn:
        action = conn.execute(select(ChainAction.status, ChainAction.signed_tx_hash)
                              .where(ChainAction.idempotency_key == record.key)).one()
    assert action.signed_tx_hash == record.tx_hash and action.status == "mined"

    # incident-response (as the automation starts it) finds the pause done and records it
    result = incident_response(title=p0["resource"]["vv.summary"], severity="P0", incident_type="security",
                               opened_by="watcher", alert=p0["payload"], environment="devnet", wait_for_people=False)
    assert result["containment"]["fast_path"] is True
    assert result["containment"]["tx_hash"] == record.tx_hash and result["containment"]["paused"]
    with engine.connect() as conn:
        assert conn.scalar(select(func.count(ChainAction.id)).where(ChainAction.selector == "0x8456cb59",
                                                                   ChainAction.created_at >= action_time(conn, record.key))) == 1
        kinds = conn.execute(select(IncidentEvent.kind, IncidentEvent.data).join(IncidentEvent.incident)
                             .where(IncidentEvent.kind == "containment")).all()
    assert any(k.data.get("tx_hash") == record.tx_hash and k.data.get("fast_path") for k in kinds)
    with engine.begin() as conn:   # the shared store: forget this chain's watcher progress (the snapshot reverts)
        conn.execute(delete(ProcessedBlock).where(ProcessedBlock.chain_id == devnet.chain_id))
        conn.execute(delete(WatcherCheckpoint).where(WatcherCheckpoint.chain_id == devnet.chain_id))


def action_time(conn, key: str):
    return conn.scalar(select(ChainAction.created_at).where(ChainAction.idempotency_key == key))


def _stored_alert(engine, rule: str) -> dict | None:
    """The annotations of the newest unresolved alert of `rule`."""
    with engine.connect() as conn:
        return conn.scalar(select(Alert.annotations).where(Alert.rule == rule, Alert.status != "resolved")
                           .order_by(Alert.id.desc()))
