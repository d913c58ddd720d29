"""Watcher benchmark (loopback only, bounded): detection latency, catch-up throughput, steady memory.

    uv run python benchmarks/bench_watcher.py [--events 60] [--outage-blocks 10000] [--json]

1. Latency: anvil --block-time 1; the guardian pauses and the (impersonated) timelock unpauses the vault in
   alternate blocks; each transaction raises one alert (vault_paused P1 / vault_unpaused P2). For every alert:
   (a) stored: the moment the store sink committed its row, minus the timestamp of the block that mined the tx;
   (b) Slack: the first chat.postMessage the Slack stand-in (tests/slack_standin.py) received after that,
   minus the same block timestamp. The alerting routes are used as configured except group_interval = 0, so
   every alert is notified at once (the configured 5 min batches follow-up alerts of a group by design; this
   measures the pipeline, not the batching). Confirmations: 1 (environments.yaml for devnet), so the floor
   is one block.
2. Catch-up: the watcher stops, anvil mines `--outage-blocks` blocks with deposits spread over them, the
   watcher restarts and catches up; blocks/s and logs/s from restart to checkpoint (including start-up) and
   for the catch-up ranges alone.
3. Memory: RSS of this process (watcher threads + the benchmark's own small clients) in steady state.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vvops.devnet import AnvilProcess, Chain, deploy_devnet, free_port  # noqa: E402
from vvops.devnet.timetravel import impersonate, set_balance  # noqa: E402
from benchmarks.stats import immediate_alerting, pct, rss_mb  # noqa: E402
from vvops.store import make_engine, migrate  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=60)
    ap.add_argument("--outage-blocks", type=int, default=10_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from tests.slack_standin import SlackStandIn
    from vvops.alerting.service import AlertService
    from vvops.watcher import run_watcher
    from vvops.watcher.config import load_watcher_config
    from vvops.watcher.sinks import OutboxNotifier

    tmp = Path(tempfile.mkdtemp(prefix="bench-watcher-"))
    node = AnvilProcess(free_port(), block_time=1, log_path=tmp / "anvil.log").start()
    standin = SlackStandIn().start()
    out: dict = {}
    try:
        info = deploy_devnet(node.rpc_url)
        url = f"sqlite:///{tmp / 'ops.db'}"
        migrate(url)
        engine = make_engine(url)
        service, notifier = immediate_alerting(engine, slack_url=standin.base_url)
        wcfg = load_watcher_config(overrides={"follower": {"poll_interval_s": 0.5}})
        contracts = {"vault": info.contracts.vault, "timelock": info.contracts.timelock}
        holder: dict = {}

        def start_watcher(rpc_url: str) -> tuple[threading.Thread, threading.Event]:
            stop = threading.Event()
            t = threading.Thread(target=lambda: holder.__setitem__("stats", run_watcher(
                environment="devnet", stop_event=stop, engine=engine, rpc_urls=[rpc_url], contracts=contracts,
                chain_id=info.chain_id, confirmations=1, watcher_config=wcfg, emit_events=False,
                alert_service=service, on_notifications=notifier,
                ready=lambda w: holder.__setitem__("watcher", w))), daemon=True)
            t.start()
            return t, stop

        # Slack arrival times, polled every 5 ms
        arrivals: list[float] = []
        poll_stop = threading.Event()

        def poll_slack() -> None:
            seen = 0
            while not poll_stop.is_set():
                n = len(standin.posted())
                arrivals.extend([time.time()] * (n - seen))
                seen = n
                time.sleep(0.005)

        threading.Thread(target=poll_slack, daemon=True).start()
        t, stop = start_watcher(node.rpc_url)
        while "watcher" not in holder or holder["watcher"].stats.last_block is None:
            time.sleep(0.1)
        time.sleep(3)  # web3 import + WebSocket subscription settle

        # 1. latency
        chain = Chain(node.rpc_url)
        vault = chain.contract("VaultV1", info.contracts.vault)
        impersonate(chain, info.contracts.timelock)
        set_balance(chain, info.contracts.timelock, 10**20)
        txs: list[tuple[str, int]] = []
        for i in range(args.events):
            sender, fn = ((info.accounts.guardian.address, "pause") if i % 2 == 0 else (info.contracts.timelock, "unpause"))
            r = vault.transact(sender, fn, gas=200_000)
            txs.append((r["transactionHash"], int(r["blockNumber"], 16)))
        last_block = txs[-1][1]
        deadline = time.monotonic() + 30
        while (holder["watcher"].stats.last_block or 0) < last_block and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)
        rss_steady = rss_mb()
        watcher = holder["watcher"]
        store_sink = watcher.store_sink
        from sqlalchemy import select

        from vvops.store import session_scope
        from vvops.store.models import Alert

        with session_scope(engine) as s:
            rows = [(a.fingerprint, a.annotations) for a in s.scalars(select(Alert))]
        by_tx = {ann.get("tx_hash"): (fp, ann) for fp, ann in rows}
        lat_a, lat_b, missing = [], [], 0
        arr = sorted(arrivals)
        for tx, _ in txs:
            if tx not in by_tx:
                missing += 1
                continue
            fp, ann = by_tx[tx]
            ts = int(ann["block_timestamp"])
            stored = store_sink.stored_at.get(fp)
            if stored is None:
                continue
            lat_a.append(stored - ts)
            after = next((x for x in arr if x >= stored), None)
            if after is not None and after - stored < 10:
                lat_b.append(after - ts)
        out["latency"] = {
            "events": len(txs), "alerts_stored": len(lat_a), "missing": missing,
            "stored_p50_s": round(pct(lat_a, 50), 3), "stored_p95_s": round(pct(lat_a, 95), 3),
            "stored_max_s": round(max(lat_a), 3) if lat_a else None,
            "slack_samples": len(lat_b), "slack_p50_s": round(pct(lat_b, 50), 3), "slack_p95_s": round(pct(lat_b, 95), 3),
            "ws_heads": watcher.stats.ws_heads, "target_p95_s": 2.0,
        }
        out["memory"] = {"rss_mb_steady": round(rss_steady, 1)}

        # 2. catch-up after an outage, on a second node without --block-time (anvil_mine on a --block-time
        # node slows down badly as the chain grows): checkpoint at its head, 10,000 blocks with deposits, restart
        stop.set()
        t.join(15)
        chain.close()
        node2 = AnvilProcess(free_port(), log_path=tmp / "anvil2.log").start()
        info2 = deploy_devnet(node2.rpc_url)
        chain = Chain(node2.rpc_url, timeout=600)
        contracts = {"vault": info2.contracts.vault, "timelock": info2.contracts.timelock}
        node_url = node2.rpc_url
        url2 = f"sqlite:///{tmp / 'ops2.db'}"  # same chain id, another chain: a store of its own
        migrate(url2)
        engine = make_engine(url2)
        service = AlertService(engine, service.cfg)
        notifier.close()
        notifier = OutboxNotifier(engine, dict(service.cfg.slack.channels.model_dump()))
        holder.pop("watcher", None)
        t, stop = start_watcher(node_url)
        while "watcher" not in holder or holder["watcher"].stats.last_block is None:
            time.sleep(0.05)
        stop.set()
        t.join(15)
        cp_before = holder["watcher"].stats.last_block
        vault2 = chain.contract("VaultV1", info2.contracts.vault)
        deposit = vault2.encode("deposit", 10**18)
        rounds = 100
        per_round = max(1, args.outage_blocks // rounds)
        users = info2.accounts.users
        nonces = {u.address: chain.nonce(u.address) for u in users}
        sent = 0
        tm = time.monotonic()
        for r in range(rounds):
            batch = []
            for u in users:
                batch.append({"sender": u.address, "to": info2.contracts.vault, "data": deposit, "gas": 200_000,
                              "nonce": nonces[u.address]})
                nonces[u.address] += 1
            chain.send_many(batch)  # automine: one block per transaction
            sent += len(batch)
            chain.request("anvil_mine", [hex(max(1, per_round - len(batch)))])
        mining_s = time.monotonic() - tm
        target = chain.block_number() - 1
        holder.pop("watcher", None)
        t0 = time.monotonic()
        t, stop = start_watcher(node_url)
        while "watcher" not in holder:
            time.sleep(0.01)
        while (holder["watcher"].stats.last_block or 0) < target:
            time.sleep(0.05)
            if time.monotonic() - t0 > 600:
                break
        elapsed = time.monotonic() - t0
        w2 = holder["watcher"]
        ranges = w2.stats.catchup
        pure = sum(c["seconds"] for c in ranges)
        logs = sum(c["logs"] for c in ranges)
        blocks = target - (cp_before or 0)
        out["catchup"] = {
            "blocks": blocks, "logs": logs, "deposits_sent": sent, "ranges": len(ranges),
            "mining_s": round(mining_s, 1),
            "wall_s_incl_startup": round(elapsed, 2),
            "blocks_per_s": round(blocks / elapsed, 1), "logs_per_s": round(logs / elapsed, 1),
            "ranges_only_s": round(pure, 2),
            "blocks_per_s_ranges_only": round(sum(c["to"] - c["from"] + 1 for c in ranges) / pure, 1) if pure else None,
            "log_range_shrinks": w2.fetcher.stats["log_range_shrinks"],
        }
        time.sleep(3)
        out["memory"]["rss_mb_after_catchup"] = round(rss_mb(), 1)
        stop.set()
        t.join(15)
        poll_stop.set()
        notifier.close()
        chain.close()
        node2.stop()
    finally:
        standin.stop()
        node.stop()
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for section, values in out.items():
            print(section)
            for k, v in values.items():
                print(f"  {k:28s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
