"""Cost of the Prometheus metrics at 5 chains x 200 vaults: a scrape (time and bytes) of each endpoint, and the
watcher's metric updates per block, against the naive way in the same run.

    uv run python benchmarks/bench_metrics.py              # --reps 7 --blocks 200

(a) Watcher updates: WatcherMetrics.observe_range (one call per range: tally the range, then one increment per
    label set through cached children) vs the naive way (one `.labels(...).inc()` per transaction and per log,
    as a first implementation would write it), on the same synthetic blocks of the real BlockData/ChainTx/ChainLog
    types: each block touches 40 of a chain's 200 vaults (60 transactions over 4 functions, ~2 % reverted, 60
    Deposit/Withdraw logs, 40 TVL values). Both feed equal counters (checked).
(b) Watcher scrape: GET /metrics over HTTP (prometheus_client's server, as `vvops watch` serves it) once every
    vault of the 5 chains has all its series (about 1000 vaults x 4 functions x 3 counters + events, TVL, ...).
(c) Ops exporter scrape: GET /metrics of `vvops metrics-endpoint`'s app (uvicorn, SQLite store as `vvops up`
    uses) over a store holding a month of a 1000-vault operation: 20,000 resolved + 50 open alerts, 180,000 check
    results (1000 vaults x 6 checks x 30 daily runs), 30,000 delivered Slack messages, 200 incidents, 500
    approval requests; vs the naive collector (load every row through the ORM and count in Python). The figures
    are checked equal.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

CHAINS = 5
VAULTS = 200
FUNCTIONS = ("deposit", "withdraw", "setFeeBps", "pause")


# ---------------------------------------------------------------------------- synthetic watchers

@dataclass
class FakeRpc:
    urls: list[str]
    attempts: list[Any] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return list(self.urls)

    def call(self, method: str, params: list[Any]) -> str:
        return hex(18)   # decimals()


@dataclass
class FakeFetcher:
    contracts: dict[str, str]
    abis: dict[str, Any] = field(default_factory=dict)
    tvl_contract: str | None = None


@dataclass
class FakeStats:
    head: int = 0
    last_block: int = 0
    served_by: str | None = None


@dataclass
class FakeWatcher:
    environment: str
    rpc: FakeRpc
    fetcher: FakeFetcher
    stats: FakeStats = field(default_factory=FakeStats)


def make_watchers() -> list[FakeWatcher]:
    return [FakeWatcher(f"chain{c}", FakeRpc([f"https://rpc{c}-a.example:443", f"https://rpc{c}-b.example:443"]),
                        FakeFetcher({f"vault{v:03d}": f"0x{c:02x}{v:038x}" for v in range(VAULTS)}))
            for c in range(CHAINS)]


def make_blocks(rng: random.Random, n: int, start: int, *, cover: bool = False) -> list[Any]:
    from vvops.chain.rpc import Attempt  # noqa: F401 - the type the RPC attempts are
    from vvops.watcher.conditions import BlockData, ChainLog, ChainTx

    blocks = []
    for i in range(n):
        number = start + i
        vaults = [f"vault{v:03d}" for v in (range(VAULTS) if cover else rng.sample(range(VAULTS), 40))]
        txs, logs, tvl = [], [], {}
        for j, vault in enumerate(vaults):
            for fn in (FUNCTIONS if cover else rng.choices(FUNCTIONS, weights=(6, 6, 1, 0.2), k=1 + (j % 3 == 0))):
                txs.append(ChainTx(hash=f"0x{number:x}{len(txs):060x}", sender="0x" + "11" * 20, to="0x" + "22" * 20,
                                   contract=vault, ok=rng.random() > 0.02, function=fn,
                                   gas_used=rng.randint(40_000, 120_000)))
                if fn in ("deposit", "withdraw"):
                    logs.append(ChainLog(contract=vault, address="0x" + "22" * 20,
                                         event="Deposit" if fn == "deposit" else "Withdraw",
                                         args={"assets": rng.randint(1, 10_000) * 10**18}, tx_hash=txs[-1].hash,
                                         log_index=len(logs)))
            tvl[vault] = rng.randint(10**6, 10**8) * 10**18
        blocks.append(BlockData(number=number, hash=f"0x{number:064x}", parent_hash=f"0x{number - 1:064x}",
                                timestamp=1_800_000_000 + 2 * number, logs=tuple(logs), txs=tuple(txs), tvl=tvl))
    return blocks


def add_attempts(watcher: FakeWatcher, rng: random.Random, n: int = 3) -> None:
    from vvops.chain.rpc import Attempt

    for _ in range(n):
        watcher.rpc.attempts.append(Attempt(watcher.rpc.urls[0], rng.random() > 0.01, rng.uniform(5, 80)))


def naive_observe(m: Any, watcher: FakeWatcher, blocks: list[Any]) -> None:
    """The straightforward way: a `.labels()` lookup and an increment per transaction and per log."""
    chain = watcher.environment
    reg = {f._name: f for f in m.registry._names_to_collectors.values() if hasattr(f, "_name")}
    txs, reverts, gas = reg["vvops_contract_transactions"], reg["vvops_contract_reverts"], reg["vvops_contract_gas_used"]
    events, deposits, withdrawals = reg["vvops_contract_events"], reg["vvops_vault_deposits"], reg["vvops_vault_withdrawals"]
    deposited, withdrawn, tvl = reg["vvops_vault_deposited_tokens"], reg["vvops_vault_withdrawn_tokens"], reg["vvops_vault_tvl_tokens"]
    blocks_c = reg["vvops_watcher_blocks_processed"]
    for b in blocks:
        blocks_c.labels(chain).inc()
        for tx in b.txs:
            txs.labels(chain, tx.contract, tx.function).inc()
            gas.labels(chain, tx.contract, tx.function).inc(tx.gas_used)
            if not tx.ok:
                reverts.labels(chain, tx.contract, tx.function).inc()
        for lg in b.logs:
            events.labels(chain, lg.contract, lg.event).inc()
            amount = int(lg.args["assets"]) / 10**18
            if lg.event == "Deposit":
                deposits.labels(chain, lg.contract).inc()
                deposited.labels(chain, lg.contract).inc(amount)
            else:
                withdrawals.labels(chain, lg.contract).inc()
                withdrawn.labels(chain, lg.contract).inc(amount)
        for contract, value in b.tvl.items():
            tvl.labels(chain, contract).set(value / 10**18)


def bench_updates(reps: int, n_blocks: int) -> dict[str, Any]:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from vvops.observability.watcher_metrics import WatcherMetrics

    rng = random.Random(7)
    per_chain = {c: make_blocks(random.Random(c), n_blocks, 1000) for c in range(CHAINS)}
    ours_t, naive_t, range_t = [], [], []
    for rep in range(reps):
        ours, naive = WatcherMetrics(), WatcherMetrics()
        watchers_a, watchers_b = make_watchers(), make_watchers()
        for w in watchers_a:
            ours.watch(w)
        order = [("ours", ours, watchers_a), ("naive", naive, watchers_b)]
        if rep % 2:
            order.reverse()
        for name, m, watchers in order:
            t0 = time.perf_counter()
            for c, w in enumerate(watchers):
                for b in per_chain[c]:   # following the head: one range per block
                    if name == "ours":
                        m.observe_range(w, [b])
                    else:
                        naive_observe(m, w, [b])
            (ours_t if name == "ours" else naive_t).append((time.perf_counter() - t0) / (CHAINS * n_blocks))
        # catch-up: 100-block ranges (one call each)
        m = WatcherMetrics()
        t0 = time.perf_counter()
        for c, w in enumerate(make_watchers()):
            for i in range(0, n_blocks, 100):
                m.observe_range(w, per_chain[c][i:i + 100])
        range_t.append((time.perf_counter() - t0) / (CHAINS * n_blocks))

    def totals(m: WatcherMetrics) -> dict[str, float]:
        out: Counter[str] = Counter()
        for fam in text_string_to_metric_families(generate_latest(m.registry).decode()):
            for s in fam.samples:
                if s.name.endswith("_total") and s.name.startswith(("vvops_contract", "vvops_vault")):
                    out[s.name] += s.value
        return {k: v for k, v in out.items() if v}

    a, b = totals(ours), totals(naive)
    assert a.keys() == b.keys() and all(abs(a[k] - b[k]) <= 1e-6 * max(1.0, abs(a[k])) for k in a), (a, b)
    txs = sum(len(b.txs) for b in per_chain[0]) / n_blocks
    logs = sum(len(b.logs) for b in per_chain[0]) / n_blocks
    return {"ours_us": statistics.median(ours_t) * 1e6, "naive_us": statistics.median(naive_t) * 1e6,
            "range_us": statistics.median(range_t) * 1e6, "txs_per_block": txs, "logs_per_block": logs}


def bench_watcher_scrape(reps: int) -> dict[str, Any]:
    from vvops.devnet import free_port
    from vvops.observability.exporter import serve_registry
    from vvops.observability.watcher_metrics import WatcherMetrics

    m = WatcherMetrics()
    rng = random.Random(3)
    for c, w in enumerate(make_watchers()):
        m.watch(w)
        m.observe_range(w, make_blocks(rng, 1, 1, cover=True))   # every vault x function x event
        w.stats.head, w.stats.last_block, w.stats.served_by = 1002, 1000, w.rpc.urls[0]
        add_attempts(w, rng, 50)
        m.observe_range(w, make_blocks(rng, 1, 2))
    port = free_port()
    server = serve_registry(m.registry, "127.0.0.1", port)
    times, size = [], 0
    with httpx.Client(timeout=60) as http:
        http.get(f"http://127.0.0.1:{port}/metrics")
        for _ in range(reps):
            t0 = time.perf_counter()
            r = http.get(f"http://127.0.0.1:{port}/metrics")
            times.append(time.perf_counter() - t0)
            size = len(r.content)
            series = sum(1 for line in r.text.splitlines() if line and not line.startswith("#"))
    server.shutdown()
    return {"ms": statistics.median(times) * 1000, "bytes": size, "series": series}


# ---------------------------------------------------------------------------- the store

def seed_store(url: str) -> None:
    from sqlalchemy import insert

    from vvops.store import make_engine, migrate
    from vvops.store.models import (Alert, ApprovalRequest, CheckResult, CheckRun, Incident, NotificationOutbox,
                                    WatcherCheckpoint)

    migrate(url)
    engine = make_engine(url)
    rng = random.Random(11)
    now = datetime.now(timezone.utc)
    sev = ("P0", "P1", "P2", "P3")
    with engine.begin() as conn:
        rows = []
        for i in range(20_050):
            open_ = i >= 20_000
            rows.append({"fingerprint": f"{i:032x}", "rule": rng.choice(("tvl_drop", "large_withdrawals", "contract_state",
                                                                         "tx_error_rate", "rpc_down")),
                         "severity": rng.choice(sev), "status": rng.choice(("firing", "acknowledged")) if open_ else "resolved",
                         "labels": {"chain": f"chain{i % CHAINS}", "contract": f"vault{i % VAULTS:03d}"},
                         "annotations": {"summary": "x" * 80}, "starts_at": now - timedelta(minutes=i),
                         "ends_at": None if open_ else now - timedelta(minutes=i - 5), "count": 1,
                         "updated_at": now})
        conn.execute(insert(Alert), rows)
        runs = [{"flow_name": "daily-checks", "environment": "mainnet", "started_at": now - timedelta(days=d),
                 "finished_at": now - timedelta(days=d) + timedelta(minutes=3), "status": "ok"} for d in range(30)]
        conn.execute(insert(CheckRun), runs)
        results = []
        checks = [(f"protocol.contract_state.chain{c}.vault{v:03d}.{k}", "protocol" if k < 4 else "security")
                  for c in range(CHAINS) for v in range(VAULTS) for k in range(6)]
        for run_id in range(1, 31):
            for check_id, area in checks:
                results.append({"run_id": run_id, "check_id": check_id, "area": area,
                                "status": rng.choices(("ok", "warn", "crit", "error"), weights=(90, 6, 2, 2))[0],
                                "message": "", "details": {}, "created_at": now - timedelta(days=30 - run_id)})
            if len(results) >= 30_000:
                conn.execute(insert(CheckResult), results)
                results = []
        if results:
            conn.execute(insert(CheckResult), results)
        out = [{"idempotency_key": f"k{i}", "sequence": i, "channel": "#alerts", "kind": "alert.firing", "payload": {},
                "status": "sent" if i >= 20 else "pending", "attempts": 1,
                "created_at": now - timedelta(seconds=30 * i + 3), "sent_at": now - timedelta(seconds=30 * i) if i >= 20 else None}
               for i in range(30_020)]
        conn.execute(insert(NotificationOutbox), out)
        conn.execute(insert(Incident), [{"key": f"INC-{i:04d}", "title": "t", "type": "technical", "severity": rng.choice(sev),
                                         "status": "closed" if i < 195 else "open", "opened_at": now - timedelta(hours=i),
                                         "is_drill": False} for i in range(200)])
        conn.execute(insert(ApprovalRequest), [{"procedure": rng.choice(("parameter_change", "upgrade_rollout")),
                                                "subject": "s", "risk": "medium", "proposer": "p", "required_role": "lead",
                                                "quorum": 1, "status": "pending" if i < 10 else "approved",
                                                "requested_at": now - timedelta(hours=i), "details": {}} for i in range(500)])
        conn.execute(insert(WatcherCheckpoint), [{"chain_id": c, "watcher": "events", "last_block": 10**6,
                                                  "updated_at": now} for c in range(CHAINS)])
    engine.dispose()


def naive_store_figures(engine: Any) -> dict[str, float]:
    """Every row through the ORM, counted in Python."""
    from vvops.store import session_scope
    from vvops.store.models import Alert, ApprovalRequest, CheckResult, Incident, NotificationOutbox

    with session_scope(engine) as s:
        alerts = list(s.query(Alert))
        firing = Counter(a.severity for a in alerts if a.status in ("firing", "acknowledged"))
        raised = Counter(a.severity for a in alerts)
        latest: dict[str, CheckResult] = {}
        for r in s.query(CheckResult).order_by(CheckResult.id):
            latest[r.check_id] = r
        checks = Counter((r.area, r.status) for r in latest.values())
        outbox = Counter(o.status for o in s.query(NotificationOutbox))
        incidents = Counter(i.severity for i in s.query(Incident) if i.status in ("open", "mitigated"))
        waiting = Counter(a.procedure for a in s.query(ApprovalRequest) if a.status in ("pending", "escalated"))
    out = {f'vvops_alerts_firing{{severity="{k}"}}': float(v) for k, v in firing.items()}
    out |= {f'vvops_alerts_raised_total{{severity="{k}"}}': float(v) for k, v in raised.items()}
    out |= {f'vvops_check_results{{area="{a}",status="{st}"}}': float(v) for (a, st), v in checks.items()}
    out |= {f'vvops_outbox_messages{{status="{k}"}}': float(v) for k, v in outbox.items()}
    out |= {f'vvops_incidents_open{{severity="{k}"}}': float(v) for k, v in incidents.items()}
    out |= {f'vvops_approvals_waiting{{procedure="{k}"}}': float(v) for k, v in waiting.items()}
    return out


def bench_store_scrape(reps: int) -> dict[str, Any]:
    from prometheus_client.parser import text_string_to_metric_families

    from vvops.devnet import free_port
    from vvops.observability.exporter import exporter_app, ops_registry, run_in_thread
    from vvops.store import make_engine

    tmp = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    url = f"sqlite:///{tmp / 'ops.db'}"
    t0 = time.perf_counter()
    seed_store(url)
    seeded = time.perf_counter() - t0
    engine = make_engine(url)
    port = free_port()
    server, thread = run_in_thread(exporter_app(ops_registry(engine)), "127.0.0.1", port)
    ours, naive, size, text = [], [], 0, ""
    with httpx.Client(timeout=60) as http:
        for _ in range(100):
            try:
                http.get(f"http://127.0.0.1:{port}/healthz")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        http.get(f"http://127.0.0.1:{port}/metrics")   # warm the connection pool and SQLite's page cache
        naive_store_figures(engine)
        for rep in range(reps):
            for which in (("ours", "naive") if rep % 2 == 0 else ("naive", "ours")):
                t0 = time.perf_counter()
                if which == "ours":
                    r = http.get(f"http://127.0.0.1:{port}/metrics")
                    ours.append(time.perf_counter() - t0)
                    size, text = len(r.content), r.text
                else:
                    expected = naive_store_figures(engine)
                    naive.append(time.perf_counter() - t0)
    server.should_exit = True
    thread.join(10)
    got = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            key = s.name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items())) + "}"
            got[key] = s.value
    mismatched = {k: (v, got.get(k)) for k, v in expected.items() if got.get(k) != v}
    assert not mismatched, mismatched
    engine.dispose()
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    return {"ms": statistics.median(ours) * 1000, "naive_ms": statistics.median(naive) * 1000, "bytes": size,
            "series": series, "seed_s": seeded, "db_mb": (tmp / "ops.db").stat().st_size / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--blocks", type=int, default=200)
    parser.add_argument("--parts", default="abc", help="which measurements: any of a, b, c (default abc)")
    args = parser.parse_args()
    import os

    print(f"load average {os.getloadavg()[0]:.1f}; {CHAINS} chains x {VAULTS} vaults")
    if "a" in args.parts:
        u = bench_updates(args.reps, args.blocks)
        print(f"(a) watcher metric updates per block ({u['txs_per_block']:.0f} txs, {u['logs_per_block']:.0f} logs): "
              f"ours {u['ours_us']:.0f} us, naive {u['naive_us']:.0f} us ({u['naive_us'] / u['ours_us']:.1f}x); "
              f"in 100-block catch-up ranges {u['range_us']:.0f} us per block")
    if "b" in args.parts:
        w = bench_watcher_scrape(args.reps * 3)
        print(f"(b) watcher scrape: {w['ms']:.1f} ms, {w['bytes'] / 1024:.0f} KiB, {w['series']} samples")
    if "c" in args.parts:
        s = bench_store_scrape(args.reps)
        print(f"(c) ops exporter scrape ({s['db_mb']:.0f} MiB SQLite store, seeded in {s['seed_s']:.0f} s): "
            f"ours {s['ms']:.1f} ms, {s['bytes'] / 1024:.1f} KiB, {s['series']} samples; naive ORM {s['naive_ms']:.0f} ms "
            f"({s['naive_ms'] / s['ms']:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
