"""Each devnet scenario, run against a real anvil with --block-time 1 while the watcher follows it (the watcher
talks to an outage proxy first and anvil second): detected with the right severity, exactly once."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.watcher_helpers import StoreView, WatcherThread, wait_until
from vvops.devnet import AnvilProcess, deploy_devnet, free_port
from vvops.devnet.scenarios import OutageProxy, run_scenario
from vvops.store import migrate

pytestmark = pytest.mark.devnet


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scenarios")
    node = AnvilProcess(free_port(), block_time=1, log_path=tmp / "anvil.log")
    node.start()
    info = deploy_devnet(node.rpc_url)
    proxy = OutageProxy(node.port)
    url = f"sqlite:///{tmp / 'ops.db'}"
    migrate(url)
    watcher = WatcherThread(url, [proxy.url, node.rpc_url], info).start()
    view = StoreView(url)
    try:
        wait_until(lambda: view.checkpoint() is not None, 30, what="the watcher's first block")
        yield {"node": node, "info": info, "proxy": proxy, "watcher": watcher, "view": view}
    finally:
        watcher.stop()
        proxy.close()
        node.stop()


def _run_and_collect(world, name, **options):
    view = world["view"]
    before = {a.id for a in view.alerts()}
    delivered_before = len(world["watcher"].sink.alerts)
    report = run_scenario(name, devnet_info=world["info"], **options)
    print(report.summary())
    wanted = Counter(e["rule"] for e in report.expect)

    def new_alerts():
        return [a for a in view.alerts() if a.id not in before]

    wait_until(lambda: set(wanted) <= {a.rule for a in new_alerts()}, 25, what=f"{name}: {sorted(wanted)}")
    target = max(report.blocks) + 3
    wait_until(lambda: (view.checkpoint() or 0) >= target, 15, what="three more blocks")  # room for duplicates
    got = new_alerts()
    assert Counter(a.rule for a in got) == wanted, [(a.rule, a.severity) for a in got]
    assert {a.rule: a.severity for a in got} == {e["rule"]: e["severity"] for e in report.expect}
    downstream = world["watcher"].sink.alerts[delivered_before:]
    assert Counter(a.rule for a in downstream) == wanted  # each delivered to the event sinks once
    return report, got


def test_param_drift_is_p0(world):
    report, got = _run_and_collect(world, "param-drift")
    assert got[0].annotations["tx_hash"] == report.txs[0]
    assert "feeBps" in got[0].annotations["summary"]


def test_rogue_upgrade_is_p0(world):
    report, got = _run_and_collect(world, "rogue-upgrade")
    assert report.details["new_implementation"] in got[0].annotations["summary"]


def test_drain(world):
    report, got = _run_and_collect(world, "drain")
    assert report.details["tvl_after"] < report.details["tvl_before"] * 0.2


def test_rpc_outage_fails_over(world):
    watcher = world["watcher"].watcher
    errors_before = watcher.rpc.attempts and sum(1 for a in watcher.rpc.attempts if not a.ok)
    report, got = _run_and_collect(world, "rpc-outage", proxy=world["proxy"], seconds=5)
    failed = [a for a in watcher.rpc.attempts if not a.ok]
    assert len(failed) > (errors_before or 0), "the silent primary was tried and timed out"
    assert got[0].annotations["tx_hash"] == report.txs[0]


def test_reorg_does_not_duplicate(world):
    view = world["view"]
    watcher = world["watcher"].watcher
    reorgs = watcher.stats.reorgs
    report, got = _run_and_collect(
        world, "reorg",
        wait_processed=lambda b: wait_until(lambda: (view.checkpoint() or 0) >= b, 15, what=f"block {b} processed"))
    assert report.details["same_tx"]
    assert watcher.stats.reorgs > reorgs
    (alert,) = got
    wait_until(lambda: next(a for a in view.alerts() if a.id == alert.id).annotations["block_hash"]
               == report.details["new_block_hash"], 10, what="alert moved to the new block")
    row = next(a for a in view.alerts() if a.id == alert.id)
    assert row.status == "firing"  # even if it was resolved as "reorged out" before the tx was mined again
    assert row.annotations["reorged_from"]["block_hash"] == report.details["old_block_hash"]
