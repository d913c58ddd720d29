"""Each devnet scenario on the quiet devnet `vvops up` runs — a block clock and the synthetic traffic of many
retail users — while the watcher follows it with the containment fast path on: the traffic alone raises nothing,
and each scenario raises exactly its own alerts, its own incidents (one P0/P1 Prefect event per alert, which the
automations turn into incident-response runs) and its own containment (one guardian pause, for P0 rules the
devnet's policy names; our own pause opens no incident)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from tests.watcher_helpers import StoreView, WatcherThread, wait_until
from vvops.chain.rpc import RpcClient
from vvops.chain.signing import LocalKeySigner
from vvops.devnet import AnvilProcess, deploy_devnet, free_port
from vvops.devnet.activity import ActivityThread
from vvops.devnet.chain import Chain
from vvops.devnet.scenarios import OutageProxy, run_scenario
from vvops.devnet.timetravel import impersonate, set_balance
from vvops.store import make_engine, migrate
from vvops.store.models import ChainAction
from vvops.watcher import PrefectEventSink, load_watcher_config
from vvops.watcher.containment import Containment

pytestmark = pytest.mark.devnet

INCIDENT_SEVERITIES = ("P0", "P1")   # the automations start incident-response for these (deployments/automations.py)


@pytest.fixture(scope="module")
def quiet_world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quiet-scenarios")
    node = AnvilProcess(free_port(), block_time=1, log_path=tmp / "anvil.log")
    node.start()
    info = deploy_devnet(node.rpc_url)
    traffic = ActivityThread(node.rpc_url, info, seed=11, interval_s=1.0)  # a transaction a block, as `vvops up`
    traffic.start()
    proxy = OutageProxy(node.port)
    url = f"sqlite:///{tmp / 'ops.db'}"
    migrate(url)
    engine = make_engine(url)
    settings = load_watcher_config().containment
    contain = Containment.from_config(
        engine=engine, rpc=RpcClient([node.rpc_url], timeout_s=5), chain_id=info.chain_id, environment="devnet",
        settings=settings, contracts={"vault": info.contracts.vault, "timelock": info.contracts.timelock},
        signer=LocalKeySigner(info.accounts.guardian.private_key, label="guardian"))
    events: list[dict] = []
    watcher = WatcherThread(url, [proxy.url, node.rpc_url], info, containment=contain,
                            sink=PrefectEventSink(emit=lambda **event: events.append(event))).start()
    view = StoreView(url)
    chain = Chain(node.rpc_url)
    try:
        wait_until(lambda: view.checkpoint() is not None, 30, what="the watcher's first block")
        yield {"node": node, "info": info, "proxy": proxy, "watcher": watcher, "view": view, "events": events,
               "engine": engine, "chain": chain, "traffic": traffic}
    finally:
        traffic.stop()
        watcher.stop()
        contain.stop()
        contain.rpc.close()
        proxy.close()
        chain.close()
        engine.dispose()
        node.stop()


def _pauses(world) -> list[str]:
    with world["engine"].connect() as conn:
        return list(conn.scalars(select(ChainAction.idempotency_key)
                                 .where(ChainAction.idempotency_key.like("containment:%")).order_by(ChainAction.id)))


def _paused(world) -> bool:
    return world["chain"].contract("VaultV1", world["info"].contracts.vault).call("paused")


def _unpause(world) -> None:
    """Recovery between scenarios, as the unpause procedure ends: the timelock (owner) unpauses the vault."""
    chain, info = world["chain"], world["info"]
    set_balance(chain, info.contracts.timelock, 10**20)
    with impersonate(chain, info.contracts.timelock) as owner:
        chain.contract("VaultV1", info.contracts.vault).transact(owner, "unpause")


def _settle(world, blocks: int = 3) -> None:
    target = world["chain"].block_number() + blocks
    wait_until(lambda: (world["view"].checkpoint() or 0) >= target, 30, what=f"the watcher at block {target}")


def _scenario(world, name: str, *, contained: bool, **options):
    """Run `name` from a settled, unpaused devnet; return (report, new alerts, new incident events, new pauses)."""
    if _paused(world):
        _unpause(world)
    _settle(world)
    view, events = world["view"], world["events"]
    alerts_before = {a.id for a in view.alerts()}
    events_before, pauses_before = len(events), len(_pauses(world))
    report = run_scenario(name, devnet_info=world["info"], **options)
    print(report.summary())
    wanted = Counter(e["rule"] for e in report.expect)

    def new_alerts():
        return [a for a in view.alerts() if a.id not in alerts_before]

    wait_until(lambda: set(wanted) <= {a.rule for a in new_alerts()}, 40, what=f"{name}: {sorted(wanted)}")
    if contained:
        wait_until(lambda: _paused(world), 30, what=f"{name}: the containment pause")
    _settle(world)   # room for duplicates and for what the traffic or the pause raise next
    got = new_alerts()
    ours = [a for a in got if (a.annotations or {}).get("expected_action")]   # our own pause, stored as expected
    assert Counter(a.rule for a in got if a not in ours) == wanted, [(a.rule, a.severity, a.annotations) for a in got]
    assert {a.rule: a.severity for a in got if a not in ours} == {e["rule"]: e["severity"] for e in report.expect}
    incidents = [e for e in events[events_before:] if e["resource"]["vv.severity"] in INCIDENT_SEVERITIES]
    assert Counter(e["resource"]["vv.rule"] for e in incidents) == Counter(
        e["rule"] for e in report.expect if e["severity"] in INCIDENT_SEVERITIES)
    return report, got, ours, _pauses(world)[pauses_before:]


def test_the_quiet_devnet_raises_nothing_while_its_traffic_runs(quiet_world):
    view = quiet_world["view"]
    before = {a.id for a in view.alerts()}
    sent_before = quiet_world["traffic"].generator.sent if hasattr(quiet_world["traffic"].generator, "sent") else None
    _settle(quiet_world, blocks=20)
    assert [(a.rule, a.severity) for a in view.alerts() if a.id not in before] == []
    assert len(quiet_world["traffic"].records) > 5, "the traffic sent transactions meanwhile"
    del sent_before


def test_param_drift_raises_its_p0_one_incident_and_one_pause(quiet_world):
    report, got, ours, pauses = _scenario(quiet_world, "param-drift", contained=True)
    assert [a.rule for a in got if a not in ours] == ["unapproved_parameter_change"]
    assert len(pauses) == 1 and [a.rule for a in ours] == ["vault_paused"]


def test_rogue_upgrade_raises_its_p0_one_incident_and_one_pause(quiet_world):
    report, got, ours, pauses = _scenario(quiet_world, "rogue-upgrade", contained=True)
    assert [a.rule for a in got if a not in ours] == ["unapproved_upgrade"]
    assert len(pauses) == 1 and [a.rule for a in ours] == ["vault_paused"]


def test_drain_raises_its_p0_and_p1_two_incidents_and_one_pause(quiet_world):
    report, got, ours, pauses = _scenario(quiet_world, "drain", contained=True)
    assert report.details["tvl_after"] < report.details["tvl_before"] * 0.5
    assert len(pauses) == 1 and [a.rule for a in ours] == ["vault_paused"]


def test_rpc_outage_raises_its_p1_one_incident_and_no_pause(quiet_world):
    report, got, ours, pauses = _scenario(quiet_world, "rpc-outage", contained=False, proxy=quiet_world["proxy"],
                                          seconds=5)
    assert pauses == [] and ours == []


def test_reorg_raises_one_p1_one_incident_and_no_pause(quiet_world):
    view = quiet_world["view"]
    report, got, ours, pauses = _scenario(
        quiet_world, "reorg", contained=False,
        wait_processed=lambda b: wait_until(lambda: (view.checkpoint() or 0) >= b, 30, what=f"block {b} processed"))
    assert report.details["same_tx"]
    assert pauses == [] and ours == []   # the guardian's own pause in the scenario is P1: no containment
