"""Watcher soak (loopback only, bounded): 5 chains at 1 s blocks with steady synthetic traffic.

    uv run python benchmarks/bench_watcher_soak.py [--minutes 10] [--chains 5] [--alert-every 10]
        [--store postgres|sqlite] [--pg-url ...] [--tracemalloc] [--json]

Set-up: `--chains` anvil nodes `--block-time 1`, chain ids 31337, 31338, ... (one store, checkpoints per chain
id), `deploy_devnet` on each. One watcher per chain (`vvops.watcher.run_watcher`, threads in this process,
confirmations 1, WebSocket new heads with polling fallback), all sharing one ops store (a scratch PostgreSQL
database, created and dropped here; or SQLite) and one AlertService + OutboxNotifier delivering to the Slack
stand-in (tests/slack_standin.py, run in a child process). Routes as config/alerting.yaml except group_interval 0 (as bench_watcher.py).

Traffic (per chain, one thread each): a deposit by one of the five users every second; every `--alert-every`
seconds the guardian pauses the vault and one second later the (impersonated) timelock unpauses it, so each
chain raises a `vault_paused` (P1) and a `vault_unpaused` alert per cycle.

Reported:
- missed blocks: per chain, every block number from the first processed to the last must have been processed
  (via the watcher's `on_block` hook) — gaps are missed blocks (must be 0); duplicates are counted too;
  lag at the end: node head − last processed block.
- detection latency: block timestamp → alert row committed (store sink) for every pause/unpause alert;
  block timestamp → processed (on_block) for every block. Block timestamps are whole seconds (up to 1 s of
  rounding), so the same latencies are also measured from when the block appeared at the node (a 0.1 s
  eth_blockNumber observer per chain): `*_from_mined`. Target: alert p95 from mined ≤ 2 s (the one confirmation
  block the watcher waits for, plus 1 s).
- the alert sweep runs every `--sweep-every-s` (60 s, as the ops-sweep deployment in production), and a simulated
  on-call resolves alerts older than `--resolve-after-s` (60 s; 0 = never, the open set then grows all run).
- RSS of this process every 15 s (the watchers, the alert service, the outbox notifier, the traffic threads and
  this script's small per-block records; the Slack stand-in runs in a child process); growth = least-squares
  slope after the first third (warm-up), flat = < 0.5 MB/min.
- batching: sink calls (one per fetched range that raised alerts) and AlertService calls of the store sinks.
- `--tracemalloc`: Python allocations traced (slows the run: do not quote its latencies); snapshots at the end of
  the warm-up and at the end; prints the top 10 growth sites and the growth split into this benchmark's own
  bookkeeping (this script) and the rest (the watchers, libraries).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vvops.devnet import AnvilProcess, Chain, deploy_devnet, free_port  # noqa: E402
from vvops.devnet.timetravel import impersonate, set_balance  # noqa: E402
from benchmarks.stats import immediate_alerting, pct, rss_mb  # noqa: E402
from vvops.store import make_engine, migrate  # noqa: E402


def traffic(rpc_url: str, info: Any, stop: threading.Event, alert_every: int, counters: dict[str, int]) -> None:
    """One deposit a second; a pause + unpause every `alert_every` s. Bounded by `stop` (set by main)."""
    chain = Chain(rpc_url, timeout=10)
    try:
        vault = chain.contract("VaultV1", info.contracts.vault)
        impersonate(chain, info.contracts.timelock)
        set_balance(chain, info.contracts.timelock, 10**21)
        deposit = vault.encode("deposit", 10**15)
        users = info.accounts.users
        tick = 0
        next_at = time.monotonic()
        while not stop.is_set():
            try:
                u = users[tick % len(users)]
                chain.send(sender=u.address, to=info.contracts.vault, data=deposit, gas=200_000)
                counters["deposits"] += 1
                phase = tick % alert_every
                if phase == 0 and tick > 0:
                    chain.send(sender=info.accounts.guardian.address, to=info.contracts.vault,
                               data=vault.encode("pause"), gas=200_000)
                    counters["pauses"] += 1
                elif phase == 1 and tick > 1:
                    chain.send(sender=info.contracts.timelock, to=info.contracts.vault,
                               data=vault.encode("unpause"), gas=200_000)
                    counters["unpauses"] += 1
            except Exception as error:  # noqa: BLE001 - count and keep the traffic going
                counters["errors"] += 1
                counters["last_error"] = str(error)[:200]  # type: ignore[assignment]
            tick += 1
            next_at += 1.0
            stop.wait(max(0.0, next_at - time.monotonic()))
    finally:
        chain.close()


def observe_heads(rpc_url: str, first_seen: dict[int, float], stop: threading.Event, every_s: float = 0.1) -> None:
    """When each block appeared at the node, to 0.1 s: block timestamps are whole seconds, so latency measured
    from them carries up to 1 s of rounding; this is the reference the `*_from_mined` latencies use."""
    import httpx

    with httpx.Client(timeout=2) as client:
        last = None
        while not stop.wait(every_s):
            try:
                head = int(client.post(rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber",
                                                      "params": []}).json()["result"], 16)
            except Exception:  # noqa: BLE001 - a missed poll only widens that block's reference by 0.1 s
                continue
            now = time.time()
            for number in range(head if last is None else last + 1, head + 1):
                first_seen.setdefault(number, now)
            last = head


class StandInProcess:
    """The Slack stand-in in its own process, so this process's RSS is the watchers' and not the stand-in's
    growing record of every request (it keeps them all, for tests to inspect)."""

    def __init__(self) -> None:
        import multiprocessing

        self._conn, child = multiprocessing.get_context("spawn").Pipe()
        self._proc = multiprocessing.get_context("spawn").Process(target=_serve_standin, args=(child,), daemon=True)
        self._proc.start()
        self.base_url: str = self._conn.recv()

    def counts(self) -> dict[str, int]:
        self._conn.send("counts")
        return self._conn.recv()

    def stop(self) -> None:
        if self._proc.is_alive():
            self._conn.send("stop")
            self._proc.join(10)


def _serve_standin(conn: Any) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.slack_standin import SlackStandIn

    standin = SlackStandIn().start()
    conn.send(standin.base_url)
    while (command := conn.recv()) != "stop":
        if command == "counts":
            conn.send({"posted": len(standin.posted()), "requests": len(standin.requests)})
    standin.stop()


BOOKKEEPING_FILES = ("benchmarks/bench_watcher_soak.py",)
TRACE_FRAMES = 12   # deep enough to see which of our lines a library allocation comes from


def allocation_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, *, minutes: float) -> dict[str, Any]:
    """Top 10 growth sites between two snapshots (allocating line, and the innermost line of this repository on
    the way there), and how much of the growth is this benchmark's own bookkeeping (any frame in
    BOOKKEEPING_FILES: this script's records)."""
    root = str(ROOT) + os.sep

    def ours(filename: str) -> bool:
        return filename.startswith(root) and f"{os.sep}.venv{os.sep}" not in filename

    sites: dict[tuple[str, str], list[int]] = {}
    bookkeeping = total = 0
    for diff in after.compare_to(before, "traceback"):
        frames = list(reversed(diff.traceback))   # tracemalloc lists the oldest frame first; allocating line first
        top = f"{frames[0].filename.replace(root, '')}:{frames[0].lineno}"
        via = next((f"{f.filename.replace(root, '')}:{f.lineno}" for f in frames if ours(f.filename)), "-")
        acc = sites.setdefault((top, via), [0, 0])
        acc[0] += diff.size_diff
        acc[1] += diff.count_diff
        total += diff.size_diff
        if any(f.filename.replace(root, "") in BOOKKEEPING_FILES for f in frames):
            bookkeeping += diff.size_diff

    def per_min(size: int) -> float | None:
        return round(size / 2**20 / minutes, 3) if minutes > 0 else None

    top10 = sorted(sites.items(), key=lambda kv: kv[1][0], reverse=True)[:10]
    return {
        "window_min": round(minutes, 2),
        "traced_growth_mb": round(total / 2**20, 2), "traced_growth_mb_per_min": per_min(total),
        "bookkeeping_growth_mb": round(bookkeeping / 2**20, 2), "bookkeeping_mb_per_min": per_min(bookkeeping),
        "rest_growth_mb_per_min": per_min(total - bookkeeping),
        "top10": [{"site": top, "via": via, "growth_kb": round(size / 1024, 1), "blocks": count}
                  for (top, via), (size, count) in top10],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--chains", type=int, default=5)
    ap.add_argument("--alert-every", type=int, default=10)
    ap.add_argument("--rss-every-s", type=float, default=15.0)
    ap.add_argument("--store", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--pg-url", default=os.environ.get("VVOPS_TEST_POSTGRES_URL",
                                                      "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--tracemalloc", action="store_true",
                    help="trace Python allocations and print the top growth sites (slows the run)")
    ap.add_argument("--sweep-every-s", type=float, default=60.0,
                    help="run the alert sweep (what the ops-sweep deployment does every minute); 0: never")
    ap.add_argument("--resolve-after-s", type=float, default=60.0,
                    help="a simulated on-call resolves alerts this old (steady state); 0: nobody resolves")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from sqlalchemy import select

    from vvops.store import session_scope
    from vvops.store.models import Alert
    from vvops.watcher import run_watcher
    from vvops.watcher.config import load_watcher_config

    tmp = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    nodes: list[AnvilProcess] = []
    standin = StandInProcess()
    stops: list[threading.Event] = []
    threads: list[threading.Thread] = []
    traffic_stop = threading.Event()
    notifier = None
    engine = None
    pg_db = f"vv_bench_soak_{os.getpid()}"
    pg_created = False
    out: dict[str, Any] = {"load_avg_start": round(os.getloadavg()[0], 2), "minutes": args.minutes,
                           "chains": args.chains}
    try:
        for i in range(args.chains):
            nodes.append(AnvilProcess(free_port(), block_time=1, chain_id=31337 + i,
                                      log_path=tmp / f"anvil{i}.log").start())
        infos = [deploy_devnet(n.rpc_url) for n in nodes]
        if args.store == "postgres":
            import psycopg

            admin = args.pg_url.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_db}"')
                conn.execute(f'CREATE DATABASE "{pg_db}"')
            pg_created = True
            url = f"{args.pg_url.rsplit('/', 1)[0]}/{pg_db}"
        else:
            url = f"sqlite:///{tmp / 'ops.db'}"
        migrate(url)
        engine = make_engine(url)
        service, notifier = immediate_alerting(engine, slack_url=standin.base_url)
        wcfg = load_watcher_config(overrides={"follower": {"poll_interval_s": 0.5}})

        processed: list[list[tuple[int, float, int]]] = [[] for _ in nodes]  # (block, processed_at, block ts)
        watchers: dict[int, Any] = {}

        def on_block_for(i: int):
            def cb(block: Any, _alerts: list) -> None:
                processed[i].append((block.number, time.time(), int(block.timestamp)))
            return cb

        for i, (node, info) in enumerate(zip(nodes, infos)):
            stop = threading.Event()
            contracts = {"vault": info.contracts.vault, "timelock": info.contracts.timelock}
            t = threading.Thread(target=run_watcher, name=f"soak-watcher-{i}", daemon=True, kwargs=dict(
                environment="devnet", stop_event=stop, engine=engine, rpc_urls=[node.rpc_url], contracts=contracts,
                chain_id=info.chain_id, confirmations=1, watcher_config=wcfg, emit_events=False,
                alert_service=service, on_notifications=notifier, on_block=on_block_for(i),
                ready=lambda w, i=i: watchers.__setitem__(i, w)))
            t.start()
            stops.append(stop)
            threads.append(t)
        deadline = time.monotonic() + 60
        while (len(watchers) < len(nodes) or any(w.stats.last_block is None for w in watchers.values())) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3)  # WebSocket subscriptions settle

        counters = [{"deposits": 0, "pauses": 0, "unpauses": 0, "errors": 0} for _ in nodes]
        traffic_threads = [threading.Thread(target=traffic, args=(n.rpc_url, info, traffic_stop, args.alert_every, c),
                                            daemon=True) for n, info, c in zip(nodes, infos, counters)]
        first_seen: list[dict[int, float]] = [{} for _ in nodes]
        observers = [threading.Thread(target=observe_heads, args=(n.rpc_url, seen, traffic_stop), daemon=True)
                     for n, seen in zip(nodes, first_seen)]
        sweeps: list[float] = []

        def sweeper() -> None:
            # production's ops-sweep: expire silences, resolve stale event alerts, send due notifications/pages
            while args.sweep_every_s and not traffic_stop.wait(args.sweep_every_s):
                t0 = time.monotonic()
                msgs = service.due_escalations(datetime.now(timezone.utc))
                if msgs:
                    notifier(msgs)
                sweeps.append(time.monotonic() - t0)

        resolved_by_oncall: list[int] = []

        def oncall() -> None:
            # people close what they have handled: without it every pause stays open for its 24 h resolve_after,
            # and the open set (which each alert-service call re-plans) grows for the whole run
            while args.resolve_after_s and not traffic_stop.wait(5):
                cutoff = datetime.now(timezone.utc) - timedelta(seconds=args.resolve_after_s)
                with session_scope(engine) as s_:
                    ids = list(s_.scalars(select(Alert.id).where(Alert.status.in_(("firing", "acknowledged")),
                                                                 Alert.starts_at < cutoff)))
                for alert_id in ids:
                    msgs = service.resolve(alert_id, now=datetime.now(timezone.utc), by="soak-oncall",
                                           reason="handled")
                    if msgs:
                        notifier(msgs)
                    resolved_by_oncall.append(alert_id)

        for t in [*observers, threading.Thread(target=sweeper, daemon=True), threading.Thread(target=oncall, daemon=True),
                  *traffic_threads]:
            t.start()
        t_start = time.monotonic()
        end = t_start + args.minutes * 60
        warmed_up_at = t_start + args.minutes * 60 / 3  # same warm-up as the RSS slope below
        if args.tracemalloc:
            tracemalloc.start(TRACE_FRAMES)
        warm_snapshot = None
        rss_series: list[tuple[float, float]] = []
        while time.monotonic() < end:
            rss_series.append((round(time.monotonic() - t_start), round(rss_mb(), 1)))
            if args.tracemalloc and warm_snapshot is None and time.monotonic() >= warmed_up_at:
                warm_snapshot = tracemalloc.take_snapshot()
            time.sleep(min(args.rss_every_s, max(0.0, end - time.monotonic())))
        rss_series.append((round(time.monotonic() - t_start), round(rss_mb(), 1)))
        if args.tracemalloc:
            end_snapshot = tracemalloc.take_snapshot()
            tracemalloc.stop()
            out["tracemalloc"] = allocation_growth(warm_snapshot or end_snapshot, end_snapshot,
                                                   minutes=(time.monotonic() - warmed_up_at) / 60)
        traffic_stop.set()
        for t in traffic_threads:
            t.join(10)
        # let the watchers reach the heads (bounded), then read them
        heads = [Chain(n.rpc_url).block_number() for n in nodes]
        wait_until = time.monotonic() + 15
        while time.monotonic() < wait_until and any(
                (w.stats.last_block or 0) < h - 1 for w, h in zip([watchers[i] for i in range(len(nodes))], heads)):
            time.sleep(0.2)

        # missed blocks
        per_chain = []
        block_lat: list[float] = []
        block_lat_mined: list[float] = []
        for i, rows in enumerate(processed):
            nums = [b for b, _, _ in rows]
            uniq = sorted(set(nums))
            gaps = (uniq[-1] - uniq[0] + 1 - len(uniq)) if uniq else None
            lag = heads[i] - (watchers[i].stats.last_block or 0)
            per_chain.append({"chain_id": infos[i].chain_id, "blocks_processed": len(uniq), "first": uniq[0] if uniq else None,
                              "last": uniq[-1] if uniq else None, "missed": gaps, "duplicates": len(nums) - len(uniq),
                              "head_lag_at_end": lag, "reorgs": watchers[i].stats.reorgs,
                              "rpc_errors": watchers[i].stats.rpc_errors, "ws_heads": watchers[i].stats.ws_heads,
                              **{k: v for k, v in counters[i].items()}})
            block_lat += [at - ts for _, at, ts in rows[3:]]  # the first blocks are the start-up catch-up
            block_lat_mined += [at - first_seen[i][n] for n, at, _ in rows[3:] if n in first_seen[i]]
        # alert latency
        stored_at: dict[str, float] = {}
        for w in watchers.values():
            stored_at.update(w.store_sink.stored_at)
        with session_scope(engine) as s:
            rows = [(a.fingerprint, a.rule, a.annotations) for a in s.scalars(select(Alert))]
        seen_by_chain = {infos[i].chain_id: first_seen[i] for i in range(len(nodes))}
        alert_lat_mined = [stored_at[fp] - seen_by_chain[int(ann["chain_id"])][int(ann["block_number"])]
                           for fp, rule, ann in rows
                           if fp in stored_at and rule in ("vault_paused", "vault_unpaused")
                           and int(ann.get("block_number") or -1) in seen_by_chain.get(int(ann.get("chain_id") or 0), {})]
        alert_lat = [stored_at[fp] - int(ann["block_timestamp"]) for fp, rule, ann in rows
                     if fp in stored_at and ann.get("block_timestamp") is not None and rule in ("vault_paused", "vault_unpaused")]
        rules: dict[str, int] = {}
        for _, rule, _ in rows:
            rules[rule] = rules.get(rule, 0) + 1
        expected_alerts = sum(c["pauses"] + c["unpauses"] for c in counters)
        # growth after warm-up (first third): least-squares slope in MB per minute
        tail_ = rss_series[max(1, len(rss_series) // 3):] or rss_series
        if len(tail_) >= 2:
            xs, ys = [t for t, _ in tail_], [r for _, r in tail_]
            mx, my = statistics.fmean(xs), statistics.fmean(ys)
            den = sum((x - mx) ** 2 for x in xs)
            slope = (sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 60) if den else 0.0
        else:
            slope = 0.0
        third = max(1, len(rss_series) // 3)
        mid = statistics.median(r for _, r in rss_series[third:2 * third] or rss_series)
        last = statistics.median(r for _, r in rss_series[2 * third:] or rss_series)
        standin_counts = standin.counts()
        posted = standin_counts["posted"]
        sink_calls = sum(w.stats.sink_calls for w in watchers.values())
        service_calls = sum(w.store_sink.service_calls for w in watchers.values())
        alerts_seen = sum(w.stats.alerts for w in watchers.values())
        out.update({
            "per_chain": per_chain,
            "missed_blocks_total": sum(c["missed"] or 0 for c in per_chain),
            "block_latency_s": {"n": len(block_lat), "p50": round(pct(block_lat, 50), 3),
                                "p95": round(pct(block_lat, 95), 3), "max": round(max(block_lat), 3) if block_lat else None},
            "alert_latency_s": {"n": len(alert_lat), "expected_alerts": expected_alerts,
                                "p50": round(pct(alert_lat, 50), 3), "p95": round(pct(alert_lat, 95), 3),
                                "max": round(max(alert_lat), 3) if alert_lat else None, "target_p95": 2.0},
            "block_latency_from_mined_s": {"n": len(block_lat_mined), "p50": round(pct(block_lat_mined, 50), 3),
                                           "p95": round(pct(block_lat_mined, 95), 3),
                                           "max": round(max(block_lat_mined), 3) if block_lat_mined else None},
            "alert_latency_from_mined_s": {"n": len(alert_lat_mined), "p50": round(pct(alert_lat_mined, 50), 3),
                                           "p95": round(pct(alert_lat_mined, 95), 3),
                                           "max": round(max(alert_lat_mined), 3) if alert_lat_mined else None,
                                           "target_p95": 2.0},
            "sweeps": {"n": len(sweeps), "max_s": round(max(sweeps), 3) if sweeps else None},
            "resolved_by_oncall": len(resolved_by_oncall),
            "alert_rows_by_rule": rules,
            "slack_posts": posted, "outbox_enqueued": notifier.enqueued,
            "batching": {"alerts": alerts_seen, "sink_calls": sink_calls, "alert_service_calls": service_calls,
                         "alerts_per_sink_call": round(alerts_seen / sink_calls, 2) if sink_calls else None},
            "bookkeeping_records": {"per_block_records": sum(len(r) for r in processed),
                                    "standin_requests": standin_counts["requests"]},
            "rss_mb_series": rss_series,
            "rss_mb": {"first": rss_series[0][1], "median_2nd_third": mid, "median_last_third": last,
                       "max": max(r for _, r in rss_series), "growth_mb_per_min_after_warmup": round(slope, 2),
                       "flat": slope < 0.5},
        })
    finally:
        traffic_stop.set()
        for s_ in stops:
            s_.set()
        for t in threads:
            t.join(15)
        if notifier is not None:
            notifier.close()
        if engine is not None:
            engine.dispose()
        if pg_created:
            import psycopg

            with psycopg.connect(args.pg_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True,
                                 connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
        standin.stop()
        for n in nodes:
            n.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    out["load_avg_end"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            if k == "per_chain":
                print("per_chain")
                for c in v:
                    print("  " + json.dumps(c))
            elif k == "tracemalloc":
                print("tracemalloc " + json.dumps({x: y for x, y in v.items() if x != "top10"}))
                for row in v["top10"]:
                    print(f"  {row['growth_kb']:>9.1f} KB  {row['blocks']:>+7d} blocks  {row['site']}"
                          f"  via {row['via']}")
            elif k == "rss_mb_series":
                print("rss_mb_series " + " ".join(f"{t}s:{r}" for t, r in v))
            else:
                print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
