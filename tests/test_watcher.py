"""The chain watcher against a real anvil with --block-time 1: following, restart without gaps or repeats,
adaptive eth_getLogs ranges, WebSocket heads."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from tests.watcher_helpers import StoreView, WatcherThread, wait_until
from vvops.chain.rpc import RpcError
from vvops.devnet import AnvilProcess, Chain, deploy_devnet, free_port
from vvops.devnet.timetravel import impersonate, set_balance
from vvops.watcher.follower import BlockFetcher

pytestmark = pytest.mark.devnet


@pytest.fixture(scope="module")
def bt_devnet(tmp_path_factory):
    node = AnvilProcess(free_port(), block_time=1, log_path=tmp_path_factory.mktemp("anvil-bt") / "anvil.log")
    node.start()
    try:
        yield node, deploy_devnet(node.rpc_url)
    finally:
        node.stop()


class Toggler:
    """Pauses (guardian) and unpauses (impersonated timelock) the vault every `every` s; records tx hashes."""

    def __init__(self, rpc_url: str, info, every: float = 1.2):
        self.chain = Chain(rpc_url)
        self.info = info
        self.every = every
        self.stop = threading.Event()
        self.txs: list[tuple[str, int]] = []
        impersonate(self.chain, info.contracts.timelock)
        set_balance(self.chain, info.contracts.timelock, 10**20)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        vault = self.chain.contract("VaultV1", self.info.contracts.vault)
        while not self.stop.is_set():
            if vault.call("paused"):
                r = vault.transact(self.info.contracts.timelock, "unpause", gas=200_000)
            else:
                r = vault.transact(self.info.accounts.guardian.address, "pause", gas=200_000)
            self.txs.append((r["transactionHash"], int(r["blockNumber"], 16)))
            self.stop.wait(self.every)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)
        self.chain.close()


class Crash(Exception):
    pass


def test_restart_and_crash_miss_nothing_and_repeat_nothing(bt_devnet, sqlite_store_url):
    node, info = bt_devnet
    view = StoreView(sqlite_store_url)
    delivered = []
    with Toggler(node.rpc_url, info) as toggler:
        # run 1: stopped cleanly
        w1 = WatcherThread(sqlite_store_url, [node.rpc_url], info).start()
        wait_until(lambda: len(w1.sink.alerts) >= 2, 20, what="first alerts")
        w1.stop()
        assert w1.error is None
        delivered += w1.sink.alerts
        time.sleep(3)  # the chain moves on while nobody watches
        # run 2: crashes after delivering a block's alerts but before the checkpoint moves
        def crash(block, alerts):
            if alerts:
                raise Crash(f"simulated crash at block {block.number}")
        w2 = WatcherThread(sqlite_store_url, [node.rpc_url], info, on_block=crash).start()
        w2.thread.join(30)
        assert isinstance(w2.error, Crash)
        delivered += w2.sink.alerts
        time.sleep(2)
        # run 3: catches up and follows
        w3 = WatcherThread(sqlite_store_url, [node.rpc_url], info).start()
        time.sleep(4)
        toggler.stop.set()
        toggler.thread.join(10)
        last_tx_block = max(b for _, b in toggler.txs)
        wait_until(lambda: (view.checkpoint() or 0) >= last_tx_block, 20, what="catch-up past the last toggle")
        w3.stop()
        assert w3.error is None
        assert w3.stats.ws_heads > 0, "anvil serves WebSocket newHeads on its HTTP port"
        delivered += w3.sink.alerts

    processed = view.processed()
    assert processed == list(range(processed[0], processed[-1] + 1)), "processed blocks must be contiguous"
    start = processed[0]
    expected = {tx for tx, b in toggler.txs if b >= start}
    alerts = [a for a in view.alerts() if a.rule in ("vault_paused", "vault_unpaused")]
    stored_txs = Counter(a.annotations["tx_hash"] for a in alerts)
    assert set(stored_txs) == expected
    assert all(c == 1 for c in stored_txs.values()), stored_txs
    # the crashed run delivered its block's alert to the store before crashing; the rerun found it and did not
    # deliver it again to the other sinks: every fingerprint reached the downstream sinks exactly once
    by_fp = Counter(a.fingerprint for a in delivered)
    assert set(by_fp) == {a.fingerprint for a in alerts}
    assert all(v == 1 for v in by_fp.values()), by_fp


def test_adaptive_log_ranges_shrink_and_grow(bt_devnet):
    node, info = bt_devnet

    class Picky:
        """An RPC that refuses eth_getLogs over more than 50 blocks, like a hosted provider."""

        def __init__(self, inner):
            self.inner = inner
            self.ranges = []

        def call(self, method, params=None):
            if method == "eth_getLogs":
                lo, hi = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
                if hi - lo + 1 > 50:
                    raise RpcError(method, {"code": -32005, "message": "query returned more than 10000 results"})
                self.ranges.append((lo, hi))
            return self.inner.call(method, params)

        def batch(self, calls):
            return self.inner.batch(calls)

    from vvops.chain.rpc import RpcClient
    from vvops.devnet.timetravel import mine

    mine(node.rpc_url, 150)
    with RpcClient([node.rpc_url]) as rpc:
        picky = Picky(rpc)
        fetcher = BlockFetcher(picky, {"vault": info.contracts.vault, "timelock": info.contracts.timelock},
                               max_log_range=1000, header_batch=20)  # > header_batch: the catch-up path
        head = fetcher.head()
        lo = max(0, head - 130)
        blocks = fetcher.fetch(lo, head)
    assert [b.number for b in blocks] == list(range(lo, head + 1))
    covered = sorted(picky.ranges)
    assert covered[0][0] == lo and covered[-1][1] == head
    assert all(b[0] == a[1] + 1 for a, b in zip(covered, covered[1:])), "no gap, no overlap"
    assert fetcher.stats["log_range_shrinks"] >= 1
    assert all(b.tvl.get("vault") is not None for b in blocks)


def test_failover_when_primary_is_dead(bt_devnet, sqlite_store_url):
    node, info = bt_devnet
    dead = f"http://127.0.0.1:{free_port()}"
    w = WatcherThread(sqlite_store_url, [dead, node.rpc_url], info).start()
    try:
        wait_until(lambda: w.watcher is not None and w.watcher.stats.blocks >= 2, 20, what="blocks via the second URL")
        assert w.watcher.stats.served_by.endswith(str(node.port))
    finally:
        w.stop()


def test_store_sink_is_idempotent_and_reopens_reorged_out_alerts(sqlite_store_url):
    from dataclasses import replace

    from sqlalchemy import select

    from vvops.store import make_engine, session_scope
    from vvops.store.models import Alert
    from vvops.watcher.conditions import WatcherAlert
    from vvops.watcher.sinks import StoreAlertSink

    engine = make_engine(sqlite_store_url)
    sink = StoreAlertSink(engine)  # no alerting service: rows written directly
    a = WatcherAlert(rule="vault_paused", severity="P1", chain_id=31337, environment="devnet", block_number=7,
                     block_hash="0xold", block_timestamp=1, tx_hash="0xt", contract="vault",
                     dedup_key="vault_paused:0xt:0", labels={"alertname": "vault_paused", "dedup": "vault_paused:0xt:0"})
    assert sink.fire(a) is True
    assert sink.fire(a) is False
    with session_scope(engine) as s:
        row = s.scalars(select(Alert)).one()
        row.status = "resolved"
        row.annotations = {**row.annotations, "resolved_reason": "reorged out"}
    assert sink.fire(replace(a, block_number=8, block_hash="0xnew")) is False
    with session_scope(engine) as s:
        (row,) = s.scalars(select(Alert)).all()
        assert row.status == "firing" and row.annotations["block_hash"] == "0xnew"
        assert row.annotations["reorged_from"]["block_hash"] == "0xold"
    engine.dispose()
