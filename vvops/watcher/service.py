"""The chain watcher service: follow blocks, evaluate rules, deliver alerts, checkpoint.

    stop = threading.Event()
    stats = run_watcher(environment="devnet", stop_event=stop)          # blocks until stop is set

Guarantees (per chain, watcher name):
- Blocks are processed in order, `confirmations` behind the head. After each processed range the
  `processed_blocks` rows and the `watcher_checkpoints` row are committed in one transaction, so the checkpoint
  always names the last block whose alerts were delivered.
- Alerts are delivered before the checkpoint moves; a crash in between re-processes those blocks after the
  restart, and the store sink's fingerprint dedup makes that invisible (no alert twice, no Prefect event twice).
- Restart / outage: catches up from checkpoint + 1 in ranges of `max_log_range` blocks (one eth_getLogs each,
  halved when the node refuses); window conditions are primed from the blocks before the resume point.
- Reorg: the parent hash of the next block (or the hash of the checkpoint block) no longer matches what was
  stored: walk back through `processed_blocks` to the fork point, drop the replaced rows, re-process. Alerts
  re-raised by the new blocks are the same rows (block annotations updated); alerts whose block was replaced
  and that the new chain did not raise again are resolved with reason "reorged out".
- New chain: the checkpoint is keyed by chain id and the genesis (block 0) hash. When the node's genesis differs
  from the checkpoint's (a restarted devnet, a re-created testnet with the same chain id), the watcher says so
  once, forgets the old chain's processed blocks and starts as on a fresh store (`start`), never "reorg".
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from vvops.alerting.service import lock_alerts, owes_resolve_notice
from vvops.chain.rpc import RpcClient, RpcError, RpcUnavailable
from vvops.store import StoreError, make_engine, session_scope
from vvops.store.models import Alert, ApprovalRequest, ProcessedBlock, WatcherCheckpoint
from vvops.watcher.conditions import ApprovalRecord, BlockData, ConditionEvaluator, WatcherAlert
from vvops.watcher.config import WatcherConfig, load_watcher_config
from vvops.watcher.follower import BlockFetcher, HeadNotifier
from vvops.watcher.sinks import AlertSink, FanoutSink, PrefectEventSink, StoreAlertSink, fire_all

log = logging.getLogger(__name__)

KEEP_PROCESSED_BLOCKS = 512   # rows kept for reorg detection (deeper reorgs than this are reported, not healed)
APPROVAL_EVENTS = {"ParameterChanged", "Upgraded"}
KEEP_CATCHUP_RANGES = 1000   # WatcherStats.catchup entries kept


@dataclass
class WatcherStats:
    blocks: int = 0
    alerts: int = 0
    new_alerts: int = 0
    sink_calls: int = 0   # batches handed to the sink (one per fetched range that raised alerts)
    reorgs: int = 0
    rpc_errors: int = 0
    store_errors: int = 0   # steps that failed on the store (retried)
    last_block: int | None = None
    head: int | None = None
    ws_heads: int = 0
    new_chains: int = 0
    served_by: str | None = None
    # {from, to, seconds, logs} of the recent multi-block ranges; bounded because a watcher that keeps falling a
    # block behind under load adds one entry per poll for as long as it runs
    catchup: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEEP_CATCHUP_RANGES))


class ReorgDetected(Exception):
    pass


class ChainWatcher:
    def __init__(self, *, engine: Engine, chain_id: int, environment: str, rpc: RpcClient, contracts: dict[str, str],
                 wcfg: WatcherConfig, sink: AlertSink, confirmations: int, start: str | int = "latest",
                 deployed_at_block: int | None = None, watcher: str = "events", artifacts: dict[str, str] | None = None,
                 on_block: Callable[[BlockData, list], None] | None = None, metrics: Any = None):
        self.engine = engine
        self.chain_id = chain_id
        self.environment = environment
        self.rpc = rpc
        self.wcfg = wcfg
        self.sink = sink
        self.confirmations = confirmations
        self.start = start
        self.deployed_at_block = deployed_at_block
        self.watcher = watcher
        self.on_block = on_block
        self.metrics = metrics   # vvops.observability.WatcherMetrics: one observe_range call per processed range
        chain_cfg = wcfg.chain(environment)
        f = wcfg.follower
        self.fetcher = BlockFetcher(rpc, contracts, artifacts=artifacts, tvl_contract=chain_cfg.tvl_contract,
                                    max_log_range=f.max_log_range, header_batch=f.header_batch)
        self.evaluator = ConditionEvaluator(wcfg.rules, chain_id=chain_id, environment=environment,
                                            denylist=wcfg.denylist, tvl_contract=chain_cfg.tvl_contract,
                                            approval_max_age=timedelta(hours=f.approval_max_age_h),
                                            contract_addresses=contracts)
        self.stats = WatcherStats()
        self._primed_at: int | None = None
        self._orphans: dict[str, int] = {}  # replaced block hash -> number
        self._orphans_until: int | None = None
        self._needs_approvals = any(r.params.get("approval", "any") != "any" for r in self.evaluator.rules)
        self.genesis_hash: str | None = None   # the node's block 0, read on the first step and on every reorg check
        self._expected_rules = set(wcfg.containment.expected_rules)

    # ------------------------------------------------------------------ store
    def checkpoint(self) -> tuple[int, str | None] | None:
        with session_scope(self.engine) as s:
            row = s.get(WatcherCheckpoint, (self.chain_id, self.watcher))
            return (row.last_block, row.last_block_hash) if row else None

    def _commit(self, blocks: list[BlockData]) -> None:
        last = blocks[-1]
        with session_scope(self.engine, immediate=True) as s:
            numbers = [b.number for b in blocks]
            s.execute(delete(ProcessedBlock).where(ProcessedBlock.chain_id == self.chain_id,
                                                   ProcessedBlock.number >= numbers[0]))
            keep_from = last.number - KEEP_PROCESSED_BLOCKS
            s.add_all([ProcessedBlock(chain_id=self.chain_id, number=b.number, hash=b.hash, parent_hash=b.parent_hash)
                       for b in blocks if b.number > keep_from])
            s.execute(delete(ProcessedBlock).where(ProcessedBlock.chain_id == self.chain_id,
                                                   ProcessedBlock.number <= keep_from))
            row = s.get(WatcherCheckpoint, (self.chain_id, self.watcher))
            if row is None:
                s.add(WatcherCheckpoint(chain_id=self.chain_id, watcher=self.watcher, last_block=last.number,
                                        last_block_hash=last.hash, genesis_hash=self.genesis_hash))
            else:
                row.last_block, row.last_block_hash = last.number, last.hash
                row.genesis_hash = self.genesis_hash or row.genesis_hash
        self.stats.last_block = last.number

    def _same_chain(self, genesis: dict | None) -> bool:
        """Compare the node's genesis with the checkpoint's; on a new chain forget the old one and return False.
        A checkpoint without a genesis (written before 0004) adopts the node's."""
        if genesis is None:
            return True
        self.genesis_hash = genesis["hash"]
        with session_scope(self.engine, immediate=True) as s:
            row = s.get(WatcherCheckpoint, (self.chain_id, self.watcher))
            if row is None:
                return True
            if row.genesis_hash is None:
                row.genesis_hash = self.genesis_hash
                return True
            if row.genesis_hash == self.genesis_hash:
                return True
            log.warning("chain %s is a new chain (genesis %s, the checkpoint at block %d was taken on genesis %s): "
                        "starting afresh, not a reorg", self.chain_id, self.genesis_hash[:12], row.last_block,
                        row.genesis_hash[:12])
            s.delete(row)
            s.execute(delete(ProcessedBlock).where(ProcessedBlock.chain_id == self.chain_id))
        self.stats.new_chains += 1
        self._primed_at = None
        self._orphans.clear()
        self._orphans_until = None
        return False

    def _approvals(self, blocks: list[BlockData]) -> list[ApprovalRecord]:
        if not self._needs_approvals or not any(l.event in APPROVAL_EVENTS for b in blocks for l in b.logs):
            return []
        with session_scope(self.engine) as s:
            rows = s.scalars(select(ApprovalRequest).where(
                ApprovalRequest.status == "approved",
                ApprovalRequest.procedure.in_(("parameter_change", "upgrade_rollout"))))
            return [ApprovalRecord(id=r.id, procedure=r.procedure, subject=r.subject, status=r.status,
                                   decided_at=r.decided_at, details=dict(r.details or {})) for r in rows]

    # ------------------------------------------------------------------ following
    def _start_block(self, safe: int) -> int:
        if isinstance(self.start, int):
            return self.start
        if self.start == "deployed" and self.deployed_at_block is not None:
            return self.deployed_at_block
        return max(0, safe)

    def _prime(self, upto: int) -> None:
        """Rebuild window state from the blocks up to `upto` (inclusive) without firing."""
        self.evaluator.reset()
        lo = max(0, upto - self.evaluator.history_blocks + 1)
        if upto >= lo and upto >= 0:
            blocks = self.fetcher.fetch(lo, upto)
            self.evaluator.prime(blocks, self._approvals(blocks))
        self._primed_at = upto

    def _find_fork(self, below: int) -> int:
        """Highest stored block number ≤ `below` whose hash the node still has."""
        with session_scope(self.engine) as s:
            stored = list(s.scalars(select(ProcessedBlock).where(ProcessedBlock.chain_id == self.chain_id,
                                                                 ProcessedBlock.number <= below)
                                    .order_by(ProcessedBlock.number.desc())))
        if not stored:
            return below
        headers = self.fetcher.headers([p.number for p in stored])
        for p, h in zip(stored, headers):
            if h is not None and h["hash"] == p.hash:
                return p.number
            self._orphans[p.hash] = p.number
        log.error("reorg deeper than the %d stored blocks on chain %s", len(stored), self.chain_id)
        return stored[-1].number - 1

    def _handle_reorg(self, last: int) -> None:
        fork = self._find_fork(last)
        log.warning("reorg on chain %s: blocks %d..%d replaced", self.chain_id, fork + 1, last)
        self.stats.reorgs += 1
        with session_scope(self.engine, immediate=True) as s:
            s.execute(delete(ProcessedBlock).where(ProcessedBlock.chain_id == self.chain_id,
                                                   ProcessedBlock.number > fork))
            kept = s.get(ProcessedBlock, (self.chain_id, fork))
            row = s.get(WatcherCheckpoint, (self.chain_id, self.watcher))
            if row is not None:
                row.last_block, row.last_block_hash = fork, kept.hash if kept else None
        self._orphans_until = max(self._orphans_until or 0, last)
        self._primed_at = None

    def _resolve_orphaned_alerts(self) -> None:
        if not self._orphans:
            return
        now = datetime.now(timezone.utc)
        with session_scope(self.engine, immediate=True) as s:
            lock_alerts(s)
            for row in s.scalars(select(Alert).where(Alert.status != "resolved")):
                ann = dict(row.annotations or {})
                if ann.get("block_hash") in self._orphans and (row.labels or {}).get("source") == "watcher":
                    row.status, row.ends_at = "resolved", now
                    row.annotations = {**ann, "resolved_reason": "reorged out"}
                    row.resolve_notice_pending = owes_resolve_notice(row)
        self._orphans.clear()
        self._orphans_until = None

    def step(self) -> int:
        """Process every block that is `confirmations` deep and not processed yet; returns how many."""
        cp = self.checkpoint()
        if cp is not None and cp[1] is not None:
            # the head, the checkpoint block's current hash and the genesis in one round trip (reorg / new chain)
            head_hex, h, genesis = self.rpc.batch([("eth_blockNumber", []), ("eth_getBlockByNumber", [hex(cp[0]), False]),
                                                   ("eth_getBlockByNumber", ["0x0", False])])
            if not self._same_chain(genesis):
                return 0
            head = int(head_hex, 16)
        else:
            if self.genesis_hash is None:
                self._same_chain(self.rpc.call("eth_getBlockByNumber", ["0x0", False]))
            head, h = self.fetcher.head(), None
        self.stats.head = head
        self.stats.served_by = self.rpc.served_by
        safe = head - self.confirmations
        if cp is None:
            first = self._start_block(safe)
            if first > safe:
                return 0
            last, last_hash = first - 1, None
        else:
            last, last_hash = cp
            if last_hash is not None and (h is None or h["hash"] != last_hash):
                self._handle_reorg(last)
                return 0
        if last >= safe:
            return 0
        if self._primed_at != last:
            self._prime(last)
        done = 0
        chunk = self.fetcher.max_log_range
        nxt = last + 1
        while nxt <= safe:
            end = min(safe, nxt + chunk - 1)
            t0 = time.monotonic()
            blocks = self.fetcher.fetch(nxt, end)
            prev = last_hash
            for b in blocks:
                if prev is not None and b.parent_hash != prev:
                    if b.number == last + 1 and cp is not None:
                        self._handle_reorg(last)
                        return done
                    raise ReorgDetected(f"block {b.number} does not follow {b.number - 1} (chain moving)")
                prev = b.hash
            approvals = self._approvals(blocks)
            raised = [(b, self.evaluator.evaluate(b, approvals)) for b in blocks]
            self._deliver([a for _, block_alerts in raised for a in block_alerts])
            if self.on_block:
                for b, block_alerts in raised:
                    self.on_block(b, block_alerts)
            self._commit(blocks)
            if self.metrics is not None:
                self.metrics.observe_range(self, blocks, [a for _, r in raised for a in r], time.monotonic() - t0)
            self._primed_at = end
            done += len(blocks)
            self.stats.blocks += len(blocks)
            if len(blocks) > 1:
                self.stats.catchup.append({"from": nxt, "to": end, "seconds": time.monotonic() - t0,
                                           "logs": sum(len(b.logs) for b in blocks)})
            last, last_hash, cp = end, blocks[-1].hash, (end, blocks[-1].hash)
            nxt = end + 1
            if self._orphans_until is not None and end >= self._orphans_until:
                self._resolve_orphaned_alerts()
        return done

    def _deliver(self, alerts: list[WatcherAlert]) -> None:
        """All alerts of one fetched range (one block when following the head) in one sink call, so the store
        sink makes one alert-service transaction for them instead of one per alert."""
        if not alerts:
            return
        alerts = self._mark_expected(alerts)
        self._contain(alerts)
        self.stats.alerts += len(alerts)
        self.stats.new_alerts += sum(fire_all(self.sink, alerts))
        self.stats.sink_calls += 1

    def _contain(self, alerts: list[WatcherAlert]) -> None:
        """The containment fast path first, before the store and Slack: a pause is keyed (containment_key) and
        stored before its broadcast, so an alert seen again after a restart finds its pause and sends nothing;
        a failure here is logged and never keeps the alert from being stored."""
        containment = getattr(self, "containment", None)
        if containment is None:
            return
        try:
            containment.fire_many(alerts)
        except Exception as error:  # noqa: BLE001 - the incident-response flow still pauses
            log.error("containment fast path failed on chain %s: %s", self.chain_id, error)

    def _mark_expected(self, alerts: list[WatcherAlert]) -> list[WatcherAlert]:
        """Alerts of `containment.expected_rules` raised by a transaction we sent ourselves (a stored chain
        action, e.g. the containment pause) get `expected_action` = its key: the sinks store and post them, the
        Prefect event sink skips them, so our own pause opens no second incident. The action is marked mined."""
        hashes = {a.tx_hash for a in alerts if a.rule in self._expected_rules and a.tx_hash}
        if not hashes:
            return alerts
        from vvops.watcher.containment import mark_mined, our_actions

        ours = our_actions(self.engine, hashes)
        if not ours:
            return alerts
        mark_mined(self.engine, {h: a.block_number for a in alerts for h in [(a.tx_hash or "").lower()] if h in ours})
        return [replace(a, annotations={**a.annotations, "expected_action": ours[a.tx_hash.lower()].idempotency_key})
                if a.rule in self._expected_rules and a.tx_hash and a.tx_hash.lower() in ours else a for a in alerts]

    def run(self, stop_event: threading.Event, *, notifier: HeadNotifier | None = None) -> WatcherStats:
        poll = self.wcfg.follower.poll_interval_s
        backoff = poll
        while not stop_event.is_set():
            try:
                self.step()
                backoff = poll
            except (RpcError, RpcUnavailable, ReorgDetected) as error:
                self.stats.rpc_errors += 1
                log.warning("watcher step on chain %s: %s", self.chain_id, error)
                stop_event.wait(min(backoff, 5.0))
                backoff = min(backoff * 2, 5.0)
                continue
            except (StoreError, SQLAlchemyError) as error:
                # the store failed mid-step: the checkpoint did not move, so the same blocks are processed
                # again after the pause (alerts dedupe by fingerprint); the thread never dies of it
                self.stats.store_errors += 1
                log.error("watcher step on chain %s failed, retrying the same blocks: %s", self.chain_id, error)
                stop_event.wait(min(backoff, 5.0))
                backoff = min(backoff * 2, 5.0)
                continue
            if notifier is not None and notifier.connected_url:
                # a head is expected; poll anyway at the fallback period in case the socket went quiet
                notifier.wait(max(poll, 1.0))
                self.stats.ws_heads = notifier.heads
            else:
                stop_event.wait(poll)
        return self.stats


def _resolve_targets(environment: str, rpc_urls: list[str] | None, contracts: dict[str, str] | None,
                     chain_id: int | None, confirmations: int | None, wcfg: WatcherConfig
                     ) -> tuple[list[str], dict[str, str], int | None, int, int | None, Any]:
    cfg = None
    chain_cfg = wcfg.chain(environment)
    deployed_at = None
    if not (rpc_urls and contracts and confirmations is not None):
        from vvops.config import load_config, resolve_deployment

        cfg = load_config(environment=environment)
        if not rpc_urls:
            rpc_urls = list(chain_cfg.rpc_urls) or [u.get_secret_value() for u in cfg.resolve_rpc_urls()]
        if contracts is None:
            contracts = {name: resolve_deployment(cfg, name).address for name in chain_cfg.contracts}
        if confirmations is None:
            confirmations = chain_cfg.confirmations if chain_cfg.confirmations is not None else cfg.env.confirmations
        chain_id = chain_id or cfg.env.chain_id
        if chain_cfg.start == "deployed":
            try:
                from vvops.config import load_devnet_json

                deployed_at = int(load_devnet_json()["deployed_at_block"])
            except Exception:  # noqa: BLE001
                deployed_at = None
    return list(rpc_urls), dict(contracts), chain_id, int(confirmations or 0), deployed_at, cfg


def run_watcher(*, environment: str = "devnet", stop_event: threading.Event, engine: Engine | None = None,
                store_url: str | None = None, rpc_urls: list[str] | None = None,
                contracts: dict[str, str] | None = None, chain_id: int | None = None,
                confirmations: int | None = None, watcher_config: WatcherConfig | None = None,
                sinks: Iterable[AlertSink] | None = None, emit_events: bool = True,
                use_alert_service: bool = True, on_block: Callable[[BlockData, list], None] | None = None,
                on_notifications: Callable[[list[dict[str, Any]]], None] | None = None,
                alert_service: Any = None, containment: Any = False, metrics: Any = None,
                ready: Callable[[ChainWatcher], None] | None = None) -> WatcherStats:
    """Run the watcher for `environment` until `stop_event` is set; returns its counters.

    Everything defaults from config (environments.yaml, contracts.yaml, watcher.yaml, the store URL);
    tests and benchmarks pass `rpc_urls`, `contracts`, `chain_id`, `confirmations`, `store_url`/`engine` and
    extra `sinks`. The store sink always comes first; Prefect events (`emit_events`) and extra sinks get only
    new alerts. `on_notifications` receives the alerting framework's notification dicts (enqueue them with
    tasks.notify); without it they are logged only. `containment=True` turns on the fast path of
    config/watcher.yaml's containment policies for this environment (`vvops watch` does; a `Containment` object
    may be passed instead): it sends before the store sink and Prefect events (keyed, so exactly once). `metrics`
    (vvops.observability.WatcherMetrics) counts what each processed range holds."""
    wcfg = watcher_config or load_watcher_config()
    rpc_urls, contracts, chain_id, confirmations, deployed_at, cfg = _resolve_targets(
        environment, rpc_urls, contracts, chain_id, confirmations, wcfg)
    artifacts: dict[str, str] = {}
    abi_cfg = cfg
    if abi_cfg is None:  # every target given explicitly: the ABIs still come from contracts.yaml when it knows them
        try:
            from vvops.config import load_config

            abi_cfg = load_config(environment=environment)
        except Exception:  # noqa: BLE001 - no usable config: the follower's default ABIs
            abi_cfg = None
    if abi_cfg is not None:
        for name in contracts:
            try:
                art = abi_cfg.contract(name).abi_source
            except Exception:  # noqa: BLE001 - not in contracts.yaml: the follower's default ABI
                art = None
            if art:
                artifacts[name] = art
    own_engine = engine is None
    if engine is None:
        if store_url is None:
            if cfg is None:
                from vvops.config import load_config

                cfg = load_config(environment=environment)
            store_url = cfg.store.resolved_url().get_secret_value()
        engine = make_engine(store_url)
    f = wcfg.follower
    rpc = RpcClient(rpc_urls, timeout_s=f.rpc_timeout_s, retries_per_url=f.retries_per_url)
    if chain_id is None:
        chain_id = int(rpc.call("eth_chainId"), 16)
    service = alert_service
    notifier = None
    if use_alert_service:
        service = service or _alert_service(engine, environment, cfg)
        if service is not None and on_notifications is None:
            from vvops.watcher.sinks import default_notifier

            notifier = default_notifier(engine, environment, cfg)
            on_notifications = notifier
    store_sink = StoreAlertSink(engine, alert_service=service, on_notifications=on_notifications)
    rest: list[AlertSink] = list(sinks or [])
    if emit_events:
        rest.insert(0, PrefectEventSink(warm_up={"prefect.resource.id": f"vv.watcher.{environment}",
                                                 "vv.chain": environment, "vv.chain_id": str(chain_id)}))
    contain = _containment(containment, engine=engine, rpc_urls=rpc_urls, chain_id=chain_id, environment=environment,
                           wcfg=wcfg, contracts=contracts, rpc_timeout_s=f.rpc_timeout_s)
    if contain is not None:
        block_hook = on_block

        def on_block(block: BlockData, raised: list) -> None:  # noqa: F811 - the caller's hook, then a refresh
            if block_hook:
                block_hook(block, raised)
            contain.on_block()
    watcher = ChainWatcher(engine=engine, chain_id=chain_id, environment=environment, rpc=rpc, contracts=contracts,
                           wcfg=wcfg, sink=FanoutSink(store_sink, *rest), confirmations=confirmations,
                           start=wcfg.chain(environment).start, deployed_at_block=deployed_at, on_block=on_block,
                           artifacts=artifacts, metrics=metrics)
    if metrics is not None:
        metrics.watch(watcher)
    watcher.store_sink = store_sink  # type: ignore[attr-defined]
    watcher.containment = contain  # type: ignore[attr-defined] - runs before the sinks (ChainWatcher._contain)
    heads = None
    if f.mode in ("auto", "ws"):
        heads = HeadNotifier(rpc_urls, stale_after_s=max(3.0, 3 * f.poll_interval_s)).start()
    if ready:
        ready(watcher)
    try:
        return watcher.run(stop_event, notifier=heads)
    finally:
        if contain is not None:
            contain.stop()
            if containment is True:
                contain.rpc.close()
        if heads:
            heads.stop()
        if notifier is not None:
            notifier.close()
        rpc.close()
        if own_engine:
            engine.dispose()


def _containment(containment: Any, *, engine: Engine, rpc_urls: list[str], chain_id: int, environment: str,
                 wcfg: WatcherConfig, contracts: dict[str, str], rpc_timeout_s: float) -> Any:
    """The started fast path (its own RPC client, so refreshes never wait behind the watcher's reads), or None."""
    if containment is False or containment is None:
        return None
    if containment is not True:
        return containment.start()
    from vvops.watcher.containment import Containment

    rpc = RpcClient(rpc_urls, timeout_s=rpc_timeout_s)
    try:
        contain = Containment.from_config(engine=engine, rpc=rpc, chain_id=chain_id, environment=environment,
                                          settings=wcfg.containment, contracts=contracts)
    except Exception as error:  # noqa: BLE001 - no signer: alerts still flow; incident-response pauses
        log.error("containment fast path off on %s: %s", environment, error)
        contain = None
    if contain is None:
        rpc.close()
        return None
    log.warning("containment fast path on for %s: %s", environment, ", ".join(sorted(contain.targets)))
    return contain.start()


def _alert_service(engine: Engine, environment: str, cfg: Any) -> Any:
    """`vvops.alerting.service.AlertService` for the environment, or None when the framework is not available."""
    try:
        from vvops.alerting.service import AlertService

        if cfg is None:
            from vvops.config import load_config

            cfg = load_config(environment=environment)
        if not hasattr(cfg, "alerting"):
            return None
        return AlertService(engine, cfg)
    except Exception as error:  # noqa: BLE001 - fall back to writing alert rows directly
        log.warning("alerting framework unavailable (%s): the watcher writes alert rows directly", error)
        return None
