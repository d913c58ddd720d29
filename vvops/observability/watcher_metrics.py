"""The watcher's own metrics: what it counts as it processes blocks, and its live position.

    metrics = WatcherMetrics()                       # its own CollectorRegistry
    run_watcher(..., metrics=metrics)                # the watcher calls metrics.observe_range(watcher, blocks)
    serve_registry(metrics.registry, "127.0.0.1", 9471)

Per-block figures are plain counters updated once per processed range (one call per range, not per block or
per log): the range is first tallied into a dict, then each label set's child is incremented once, through
children cached by label tuple (a `.labels()` lookup costs a lock and a dict build per call). The head,
processed block and lag are read from the running watchers when scraped, so a stalled watcher shows its lag
growing instead of the value of its last good range. RPC attempts (latency, errors per endpoint) are drained
from the watcher's RpcClient both on each range and on each scrape, so an outage is visible while it lasts.

Labels are bounded: `chain` (configured environments), `contract` (configured contracts), `function` and
`event` (names in the contract's ABI; unknown selectors collapse to "unknown"), `endpoint` (configured RPC
URLs as scheme://host:port, never their path or key).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any, Iterable

from prometheus_client import CollectorRegistry, Counter as PromCounter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

DEPOSIT_EVENTS = {"Deposit"}
WITHDRAW_EVENTS = {"Withdraw"}
PAUSE_EVENTS = {"Paused": 1.0, "Unpaused": 0.0}
UPGRADE_EVENTS = {"Upgraded", "BeaconUpgraded"}
RPC_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
RANGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
KEEP_RPC_ATTEMPTS = 256   # the watcher's RpcClient keeps at most this many attempts once they are counted
DECIMALS_CALL = "0x313ce567"  # decimals()
ASSET_CALL = "0x38d52e0f"     # asset() of an ERC-4626 vault


class _Children:
    """Label children of one metric, cached by label tuple."""

    def __init__(self, metric: Any):
        self.metric = metric
        self.cache: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self.cache.get(values)
        if child is None:
            child = self.cache[values] = self.metric.labels(*values)
        return child


class WatcherMetrics(Collector):
    def __init__(self, registry: CollectorRegistry | None = None):
        # no `_created` sample beside every counter child: it would double the scrape (5 x 200 vaults) for a
        # figure Prometheus 2 does not use (process-wide switch of prometheus_client, like the env variable)
        disable_created_metrics()
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._lock = threading.Lock()
        self._watchers: dict[str, Any] = {}         # chain -> ChainWatcher
        self._rpc_seen: dict[int, int] = {}         # id(RpcClient) -> attempts already counted
        self._decimals: dict[tuple[str, str], int] = {}
        self.blocks = _Children(PromCounter("vvops_watcher_blocks_processed_total",
                                            "Blocks the watcher processed", ["chain"], registry=r))
        self.ranges = _Children(Histogram("vvops_watcher_range_duration_seconds",
                                          "Time to fetch, evaluate, deliver and checkpoint one block range",
                                          ["chain"], buckets=RANGE_BUCKETS, registry=r))
        self.txs = _Children(PromCounter("vvops_contract_transactions_total",
                                         "Transactions sent to a watched contract, by function",
                                         ["chain", "contract", "function"], registry=r))
        self.reverts = _Children(PromCounter("vvops_contract_reverts_total",
                                             "Reverted transactions to a watched contract, by function",
                                             ["chain", "contract", "function"], registry=r))
        self.gas = _Children(PromCounter("vvops_contract_gas_used_total",
                                         "Gas used by transactions to a watched contract, by function",
                                         ["chain", "contract", "function"], registry=r))
        self.events = _Children(PromCounter("vvops_contract_events_total",
                                            "Events emitted by a watched contract", ["chain", "contract", "event"],
                                            registry=r))
        self.deposits = _Children(PromCounter("vvops_vault_deposits_total", "Deposit events of a vault",
                                              ["chain", "contract"], registry=r))
        self.withdrawals = _Children(PromCounter("vvops_vault_withdrawals_total", "Withdraw events of a vault",
                                                 ["chain", "contract"], registry=r))
        self.deposited = _Children(PromCounter("vvops_vault_deposited_tokens_total",
                                               "Assets deposited into a vault (token units)", ["chain", "contract"],
                                               registry=r))
        self.withdrawn = _Children(PromCounter("vvops_vault_withdrawn_tokens_total",
                                               "Assets withdrawn from a vault (token units)", ["chain", "contract"],
                                               registry=r))
        self.tvl = _Children(Gauge("vvops_vault_tvl_tokens",
                                   "Vault total assets at the last processed block (token units)",
                                   ["chain", "contract"], registry=r))
        self.paused = _Children(Gauge("vvops_contract_paused",
                                      "1 when the contract's last Paused/Unpaused event was Paused",
                                      ["chain", "contract"], registry=r))
        self.upgrades = _Children(PromCounter("vvops_contract_implementation_changes_total",
                                              "Upgraded / BeaconUpgraded events of a watched proxy",
                                              ["chain", "contract"], registry=r))
        self.alerts = _Children(PromCounter("vvops_watcher_alerts_raised_total",
                                            "Alerts the watcher's rules raised (before dedup)",
                                            ["chain", "severity"], registry=r))
        self.rpc_latency = _Children(Histogram("vvops_rpc_request_duration_seconds",
                                               "JSON-RPC round trips of the watcher, by endpoint",
                                               ["chain", "endpoint"], buckets=RPC_BUCKETS, registry=r))
        self.rpc_errors = _Children(PromCounter("vvops_rpc_errors_total",
                                                "Failed JSON-RPC round trips (timeouts, refused, HTTP errors)",
                                                ["chain", "endpoint"], registry=r))
        r.register(self)   # the live gauges below, read on scrape

    # ------------------------------------------------------------------ the watcher's hook
    def observe_range(self, watcher: Any, blocks: Iterable[Any], alerts: Iterable[Any] = (),
                      seconds: float | None = None) -> None:
        """One processed range: count its transactions, events, TVL, pauses and upgrades. Never raises: a
        metrics fault must not stop the watcher."""
        try:
            self._observe(watcher, blocks, alerts, seconds)
        except Exception as error:  # noqa: BLE001
            log.warning("watcher metrics not updated for this range: %s", error)

    def _observe(self, watcher: Any, blocks: Iterable[Any], alerts: Iterable[Any], seconds: float | None) -> None:
        chain = watcher.environment
        blocks = list(blocks)
        with self._lock:
            self._watchers[chain] = watcher
        txs: Counter[tuple[str, str]] = Counter()
        reverts: Counter[tuple[str, str]] = Counter()
        gas: Counter[tuple[str, str]] = Counter()
        events: Counter[tuple[str, str]] = Counter()
        moved: Counter[tuple[str, str]] = Counter()   # (contract, "in"/"out") -> raw asset amount
        paused: dict[str, float] = {}
        tvl: dict[str, int] = {}
        for b in blocks:
            for tx in b.txs:
                key = (tx.contract, tx.function or "unknown")
                txs[key] += 1
                gas[key] += tx.gas_used
                if not tx.ok:
                    reverts[key] += 1
            for lg in b.logs:
                events[(lg.contract, lg.event)] += 1
                if lg.event in DEPOSIT_EVENTS:
                    moved[(lg.contract, "in")] += int(lg.args.get("assets", 0) or 0)
                elif lg.event in WITHDRAW_EVENTS:
                    moved[(lg.contract, "out")] += int(lg.args.get("assets", 0) or 0)
                elif lg.event in PAUSE_EVENTS:
                    paused[lg.contract] = PAUSE_EVENTS[lg.event]
            tvl.update(b.tvl)
        self.blocks(chain).inc(len(blocks))
        if seconds is not None:
            self.ranges(chain).observe(seconds)
        for (contract, function), n in txs.items():
            self.txs(chain, contract, function).inc(n)
            self.gas(chain, contract, function).inc(gas[(contract, function)])
            self.reverts(chain, contract, function)   # zero until the first revert: the revert ratio has a value
        for (contract, function), n in reverts.items():
            self.reverts(chain, contract, function).inc(n)
        for (contract, event), n in events.items():
            self.events(chain, contract, event).inc(n)
            if event in DEPOSIT_EVENTS:
                self.deposits(chain, contract).inc(n)
            elif event in WITHDRAW_EVENTS:
                self.withdrawals(chain, contract).inc(n)
            elif event in UPGRADE_EVENTS:
                self.upgrades(chain, contract).inc(n)
        for (contract, direction), amount in moved.items():
            scaled = amount / 10 ** self._token_decimals(watcher, contract)
            (self.deposited if direction == "in" else self.withdrawn)(chain, contract).inc(scaled)
        for contract, value in tvl.items():
            if value is not None:
                self.tvl(chain, contract).set(value / 10 ** self._token_decimals(watcher, contract))
        for contract, value in paused.items():
            self.paused(chain, contract).set(value)
        for severity, n in Counter(getattr(a, "severity", "P2") for a in alerts).items():
            self.alerts(chain, severity).inc(n)
        self._drain_rpc(chain, watcher.rpc)

    def watch(self, watcher: Any) -> None:
        """Register a watcher before its first range (head and lag show from the first scrape), and read the
        paused state of its contracts once, so the gauge is right before any Paused/Unpaused event."""
        with self._lock:
            self._watchers[watcher.environment] = watcher
        chain = watcher.environment
        for label in getattr(watcher.rpc, "labels", []):
            self.rpc_errors(chain, label)   # a zero series from the start: rate() and ratios have a value
        fetcher = getattr(watcher, "fetcher", None)
        if fetcher is None:
            return
        for name in fetcher.contracts:
            self.upgrades(chain, name)
        if fetcher.tvl_contract:
            for family in (self.deposits, self.withdrawals, self.deposited, self.withdrawn):
                family(chain, fetcher.tvl_contract)
        for name, address in fetcher.contracts.items():
            abi = fetcher.abis.get(name)
            if abi is None or "paused" not in abi.functions:
                continue
            try:
                raw = watcher.rpc.call("eth_call", [{"to": address, "data": "0x" + abi.encode_call("paused").hex()},
                                                    "latest"])
                self.paused(watcher.environment, name).set(1.0 if raw and int(raw, 16) else 0.0)
            except Exception:  # noqa: BLE001 - not deployed yet: the first Paused/Unpaused event sets it
                pass

    # ------------------------------------------------------------------ helpers
    def _token_decimals(self, watcher: Any, contract: str) -> int:
        """decimals() of the vault (ERC-4626 has it), else of its asset(); 0 (base units) when neither answers."""
        key = (watcher.environment, contract)
        if key not in self._decimals:
            decimals = None
            address = getattr(getattr(watcher, "fetcher", None), "contracts", {}).get(contract)
            for target in ([address, self._asset(watcher, address)] if address else []):
                decimals = self._call_uint(watcher, target, DECIMALS_CALL)
                if decimals is not None:
                    break
            self._decimals[key] = decimals if decimals is not None and 0 <= decimals <= 36 else 0
        return self._decimals[key]

    def _asset(self, watcher: Any, address: str) -> str | None:
        value = self._call_uint(watcher, address, ASSET_CALL)
        return "0x" + format(value, "040x") if value else None

    @staticmethod
    def _call_uint(watcher: Any, address: str | None, data: str) -> int | None:
        if not address:
            return None
        try:
            raw = watcher.rpc.call("eth_call", [{"to": address, "data": data}, "latest"])
        except Exception:  # noqa: BLE001 - no such function (reverts) or not deployed
            return None
        return int(raw, 16) if raw and raw != "0x" and len(raw) <= 66 else None

    def _drain_rpc(self, chain: str, rpc: Any) -> None:
        """Count the RpcClient's attempts not counted yet, then trim its list (it would grow for ever)."""
        attempts = getattr(rpc, "attempts", None)
        if attempts is None:
            return
        with self._lock:
            n = len(attempts)   # the watcher thread may append meanwhile: work on the first n only
            seen = min(self._rpc_seen.get(id(rpc), 0), n)
            for a in attempts[seen:n]:
                if a.ok:
                    self.rpc_latency(chain, a.label).observe(a.latency_ms / 1000.0)
                else:
                    self.rpc_errors(chain, a.label).inc()
            keep = min(n, KEEP_RPC_ATTEMPTS)
            del attempts[:n - keep]
            self._rpc_seen[id(rpc)] = keep

    # ------------------------------------------------------------------ scrape-time gauges
    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        with self._lock:
            watchers = dict(self._watchers)
        head = GaugeMetricFamily("vvops_chain_head_block", "Latest block number the node reported", labels=["chain"])
        done = GaugeMetricFamily("vvops_watcher_processed_block", "Last block the watcher processed and checkpointed",
                                 labels=["chain"])
        lag = GaugeMetricFamily("vvops_watcher_lag_blocks", "Head minus last processed block", labels=["chain"])
        rpc_up = GaugeMetricFamily("vvops_rpc_endpoint_serving", "1 for the endpoint that answered the latest request",
                                   labels=["chain", "endpoint"])
        for chain, w in watchers.items():
            stats = w.stats
            if stats.head is not None:
                head.add_metric([chain], float(stats.head))
            if stats.last_block is not None:
                done.add_metric([chain], float(stats.last_block))
            if stats.head is not None and stats.last_block is not None:
                lag.add_metric([chain], float(max(0, stats.head - stats.last_block)))
            for label in getattr(w.rpc, "labels", []):
                rpc_up.add_metric([chain, label], 1.0 if label == stats.served_by else 0.0)
            self._drain_rpc(chain, w.rpc)
        return [head, done, lag, rpc_up]
