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


class CountingAlertService:
    """The real AlertService, counting `process_firing` calls and the instances each call carried."""

    def __init__(self, engine):
        from vvops.alerting.service import AlertService
        from vvops.config import load_config

        self.inner = AlertService(engine, load_config(environment="devnet"))
        self.calls: list[int] = []

    def process_firing(self, alerts, now, **kw):
        alerts = list(alerts)
        self.calls.append(len(alerts))
        return self.inner.process_firing(alerts, now, **kw)


def _paused_alert(n: int, *, block: int = 7, block_hash: str = "0xb7"):
    from vvops.watcher.conditions import WatcherAlert

    key = f"vault_paused:0x{n:02x}:0"
    return WatcherAlert(rule="vault_paused", severity="P1", chain_id=31337, environment="devnet", block_number=block,
                        block_hash=block_hash, block_timestamp=1_800_000_000, tx_hash=f"0x{n:02x}", contract="vault",
                        dedup_key=key, labels={"alertname": "vault_paused", "environment": "devnet", "team": "protocol",
                                               "source": "watcher", "dedup": key})


@pytest.mark.parametrize("with_service", [True, False], ids=["alert-service", "direct"])
def test_store_sink_batch_is_one_service_call_and_exactly_once(sqlite_store_url, with_service):
    from datetime import datetime, timezone

    from sqlalchemy import select

    from vvops.store import make_engine, session_scope
    from vvops.store.models import Alert
    from vvops.watcher.sinks import FanoutSink, ListSink, StoreAlertSink

    engine = make_engine(sqlite_store_url)
    service = CountingAlertService(engine) if with_service else None
    messages: list[dict] = []
    store = StoreAlertSink(engine, alert_service=service, on_notifications=messages.extend,
                           now=lambda: datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc))
    downstream = ListSink()
    sink = FanoutSink(store, downstream)
    unique = [_paused_alert(n) for n in range(20)]
    # three alerts raised twice within the block (e.g. the same log seen twice): stored and passed on once
    batch = unique[:10] + [unique[3], unique[3], unique[7]] + unique[10:]

    flags = sink.fire_many(batch)

    assert flags == [True] * 10 + [False] * 3 + [True] * 10
    assert downstream.batches == [20] and [a.fingerprint for a in downstream.alerts] == [a.fingerprint for a in unique]
    with session_scope(engine) as s:
        rows = list(s.scalars(select(Alert)))
        assert sorted(r.fingerprint for r in rows) == sorted(a.fingerprint for a in unique)
        assert all(r.count == 1 and "reorged_from" not in r.annotations for r in rows)
    if with_service:
        assert service.calls == [20], "one process_firing call for the block's new alerts"
        keys = [m["idempotency_key"] for m in messages]
        assert len(keys) == len(set(keys)) and [m["kind"] for m in messages].count("alert.firing") == 1

    # the same block again (a restart before the checkpoint moved): nothing new anywhere
    assert sink.fire_many(batch) == [False] * len(batch)
    assert len(downstream.alerts) == 20
    if with_service:
        assert service.calls == [20]
        assert len(messages) == len(keys)
    with session_scope(engine) as s:
        assert all(r.count == 1 for r in s.scalars(select(Alert)))
    engine.dispose()


def test_alerts_repeated_at_a_later_block_of_one_batch_move_the_stored_alert(sqlite_store_url):
    from sqlalchemy import select

    from vvops.store import make_engine, session_scope
    from vvops.store.models import Alert
    from vvops.watcher.sinks import StoreAlertSink

    engine = make_engine(sqlite_store_url)
    sink = StoreAlertSink(engine, alert_service=CountingAlertService(engine))
    first, again = _paused_alert(1), _paused_alert(1, block=9, block_hash="0xb9")
    assert sink.fire_many([first, again]) == [True, False]
    with session_scope(engine) as s:
        (row,) = s.scalars(select(Alert)).all()
        assert row.annotations["block_hash"] == "0xb9" and row.annotations["reorged_from"]["block_hash"] == "0xb7"
    engine.dispose()


def test_watcher_hands_a_blocks_alerts_to_the_sink_in_one_call(sqlite_store_url):
    """A block with 30 pause logs (two of them the same log twice): one sink call, one service call, each alert
    stored and passed on once; re-processing the block after a lost checkpoint delivers nothing again."""
    from sqlalchemy import delete, select

    from vvops.store import make_engine, session_scope
    from vvops.store.models import Alert, WatcherCheckpoint
    from vvops.watcher import ChainWatcher, FanoutSink, ListSink, StoreAlertSink, load_watcher_config
    from vvops.watcher.conditions import BlockData, ChainLog

    vault = "0x" + "11" * 20
    guardian = "0x" + "22" * 20
    logs = [ChainLog(contract="vault", address=vault, event="Paused", args={"account": guardian},
                     tx_hash=f"0x{n:064x}", log_index=0) for n in range(30)]
    logs += [logs[4], logs[9]]
    blocks = {n: BlockData(number=n, hash=f"0x{n:064x}", parent_hash=f"0x{n - 1:064x}", timestamp=1_800_000_000 + n,
                           logs=tuple(logs) if n == 10 else ()) for n in range(0, 13)}

    class FakeRpc:
        served_by = "fake"

        def call(self, method, params=None):
            if method == "eth_getBlockByNumber":
                return {"hash": blocks[int(params[0], 16)].hash}
            assert method == "eth_blockNumber"
            return hex(12)

        def batch(self, calls):
            return [hex(12), {"hash": blocks[int(calls[1][1][0], 16)].hash}, {"hash": blocks[0].hash}]

    engine = make_engine(sqlite_store_url)
    service = CountingAlertService(engine)
    downstream = ListSink()

    def watcher():
        w = ChainWatcher(engine=engine, chain_id=31337, environment="devnet", rpc=FakeRpc(),
                         contracts={"vault": vault}, wcfg=load_watcher_config(),
                         sink=FanoutSink(StoreAlertSink(engine, alert_service=service), downstream),
                         confirmations=0, start=9)
        w.fetcher.fetch = lambda lo, hi: [blocks[n] for n in range(lo, hi + 1)]
        return w

    w = watcher()
    assert w.step() == 4  # blocks 9..12
    assert (w.stats.alerts, w.stats.new_alerts, w.stats.sink_calls) == (32, 30, 1)
    assert service.calls == [30]
    assert downstream.batches == [30] and len({a.fingerprint for a in downstream.alerts}) == 30
    # the checkpoint is lost (a crash between delivery and commit): the block is processed again
    with session_scope(engine) as s:
        s.execute(delete(WatcherCheckpoint))
    w = watcher()
    assert w.step() == 4
    assert (w.stats.alerts, w.stats.new_alerts) == (32, 0)
    assert service.calls == [30] and len(downstream.alerts) == 30
    with session_scope(engine) as s:
        assert len(s.scalars(select(Alert)).all()) == 30
    engine.dispose()


def test_a_store_failure_pauses_the_watcher_and_the_same_blocks_are_retried(sqlite_store_url):
    """The store goes away for one step: the watcher thread keeps running, logs it, and delivers the block's
    alert once when the store is back (the checkpoint had not moved)."""
    import threading

    from vvops.store import StoreUnavailable, make_engine
    from vvops.watcher import ChainWatcher, ListSink, load_watcher_config
    from vvops.watcher.conditions import BlockData, ChainLog

    vault, guardian = "0x" + "11" * 20, "0x" + "22" * 20
    pause = ChainLog(contract="vault", address=vault, event="Paused", args={"account": guardian},
                     tx_hash="0x" + "ab" * 32, log_index=0)
    blocks = {n: BlockData(number=n, hash=f"0x{n:064x}", parent_hash=f"0x{n - 1:064x}", timestamp=1_800_000_000 + n,
                           logs=(pause,) if n == 3 else ()) for n in range(0, 6)}

    class FakeRpc:
        served_by = "fake"

        def call(self, method, params=None):
            return {"hash": blocks[0].hash} if method == "eth_getBlockByNumber" else hex(5)

        def batch(self, calls):
            return [hex(5), {"hash": blocks[int(calls[1][1][0], 16)].hash}, {"hash": blocks[0].hash}]

    class FlakyStore(ListSink):
        def __init__(self):
            super().__init__()
            self.failures = 1

        def fire_many(self, alerts):
            if self.failures:
                self.failures -= 1
                raise StoreUnavailable("session: store unavailable at postgresql://ops-db/ops: connection refused")
            return super().fire_many(alerts)

    engine = make_engine(sqlite_store_url)
    sink = FlakyStore()
    wcfg = load_watcher_config(overrides={"follower": {"poll_interval_s": 0.05}})
    w = ChainWatcher(engine=engine, chain_id=31337, environment="devnet", rpc=FakeRpc(), contracts={"vault": vault},
                     wcfg=wcfg, sink=sink, confirmations=0, start=2)
    w.fetcher.fetch = lambda lo, hi: [blocks[n] for n in range(lo, hi + 1)]
    stop = threading.Event()
    runner = threading.Thread(target=w.run, args=(stop,))
    runner.start()
    try:
        for _ in range(200):
            if w.stats.last_block == 5:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        runner.join(10)
    assert w.stats.store_errors == 1 and w.stats.last_block == 5
    assert [a.rule for a in sink.alerts] == ["vault_paused"]   # delivered once, after the retry
    engine.dispose()


def test_a_new_chain_with_the_same_chain_id_is_not_a_reorg(tmp_path):
    """A restarted devnet (same chain id 31337, new genesis) under the same store: the watcher notices a new chain,
    forgets the old one's blocks and follows the new one from its start; no reorg, no "deeper than" error."""
    from vvops.devnet.timetravel import mine
    from vvops.store import migrate

    url = f"sqlite:///{tmp_path / 'ops.db'}"
    migrate(url)
    view = StoreView(url)
    for generation in range(2):
        node = AnvilProcess(free_port(), log_path=tmp_path / f"anvil-{generation}.log")
        node.start()
        try:
            info = deploy_devnet(node.rpc_url)
            mine(node.rpc_url, 30 if generation == 0 else 3)  # the old chain is longer than the new one
            watcher = WatcherThread(url, [node.rpc_url], info).start()
            try:
                with Chain(node.rpc_url) as chain:
                    head = chain.block_number()
                wait_until(lambda: (view.checkpoint() or 0) >= head - 1 and watcher.watcher is not None
                           and watcher.watcher.stats.last_block is not None, 30, what="the watcher at the head")
                stats = watcher.watcher.stats
                assert stats.reorgs == 0
                assert stats.new_chains == generation
            finally:
                watcher.stop()
        finally:
            node.stop()
    assert view.processed()[-1] <= head  # only the new chain's blocks are kept
