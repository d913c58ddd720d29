"""Alert storm benchmark (loopback only, bounded): 10,000 firing alerts within a minute through the AlertService.

    uv run python benchmarks/bench_alert_storm.py [--fingerprints 50] [--repeats 200] [--window-s 60]
        [--per-alert-sample 1000] [--naive-max 10000] [--stores sqlite,postgres] [--pg-url ...] [--json]

The storm: `fingerprints` distinct alerts (5 alert names × N/5 contracts on 5 chains; two names are team=security,
three team=protocol; P2/P3, so no pages) each repeated `repeats` times, arrival times spread evenly over
`window-s` seconds of simulated time (the service is given `now`; wall time is what we measure). Routes are the
project's config/alerting.yaml: team=security → `security` route (incidents, grouped by alertname+environment+
contract), the rest → `devnet-low` (alerts, grouped by alertname+environment); group_wait 0s, group_interval 5m.

Paths, per store (SQLite file and a scratch PostgreSQL database created and dropped here):
  (1) batched: the alerts that arrive within each simulated second go through one `process_firing` call (as the
      watcher does per block); the notifications returned are enqueued in the outbox (idempotent by key); then
      the escalation sweep at window + group_interval + 1 s (`due_escalations`) sends each group's follow-up.
      Then the outbox is delivered to the Slack stand-in (tests/slack_standin.py) with `SlackDelivery`.
  (2) per-alert: one `process_firing([alert])` transaction per alert, on the first `per-alert-sample` alerts of
      the same storm (a fresh database); throughput only.
  (3) naive: one INSERT of an alert row + one outbox row per alert, one transaction each, no deduplication or
      grouping (a fresh database); throughput and the number of Slack messages it would send.

Asserted (batched path): exactly `fingerprints` alert rows, each with count == repeats (sum == total alerts);
one `alert.firing` per group at its first alert (groups = security names × contracts + protocol names), then one
follow-up per multi-member group at the sweep with all its members; the outbox holds exactly those messages (a
replay of the same notifications adds none); the stand-in receives each exactly once (distinct idempotency keys
in the message metadata == outbox rows, every row `sent`, a second drain sends nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from vvops.store import make_engine, migrate, session_scope  # noqa: E402
from vvops.store.models import Alert, NotificationOutbox  # noqa: E402

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)  # outside the devnet maintenance window (03:00-03:30)
NAMES = 5
SECURITY_NAMES = 2  # storm_0, storm_1 are team=security


def build_storm(fingerprints: int, repeats: int, window_s: float) -> list[tuple[float, Any]]:
    from vvops.alerting.rules import AlertInstance

    contracts = max(1, fingerprints // NAMES)
    insts = []
    for k in range(NAMES):
        for c in range(contracts):
            sev = "P2" if k % 2 == 0 else "P3"
            labels = {"alertname": f"storm_{k}", "severity": sev, "environment": "devnet", "chain": f"chain-{c % 5}",
                      "contract": f"vault-{c:03d}", "team": "security" if k < SECURITY_NAMES else "protocol"}
            insts.append(AlertInstance(rule=f"storm_{k}", severity=sev, labels=labels,
                                       annotations={"summary": f"storm_{k} on vault-{c:03d}"}))
    total = len(insts) * repeats
    # round-robin: every fingerprint shows up in the first len(insts) arrivals, then repeats
    return [(window_s * i / total, insts[i % len(insts)]) for i in range(total)], insts, contracts


def group_of(inst) -> tuple:
    """The group each storm alert belongs to, from the route table in the docstring (independent of vvops.alerting)."""
    lb = inst.labels
    if lb["team"] == "security":
        return ("security", lb["alertname"], lb["contract"])
    return ("devnet-low", lb["alertname"])


def expected_messages(storm, batch_of) -> dict[str, Any]:
    """Per group: the first notification (at the batch of its first alert) lists the members whose first arrival
    is in that batch; if other members arrive later (within group_interval), the sweep sends one follow-up with
    all of them."""
    first_batch: dict[str, int] = {}
    members: dict[tuple, set] = {}
    for off, inst in storm:
        first_batch.setdefault(inst.fingerprint, batch_of(off))
        members.setdefault(group_of(inst), set()).add(inst.fingerprint)
    first_sizes, sweep_sizes = {}, {}
    for g, fps in members.items():
        b0 = min(first_batch[f] for f in fps)
        first_sizes[g] = sum(1 for f in fps if first_batch[f] == b0)
        if first_sizes[g] < len(fps):
            sweep_sizes[g] = len(fps)
    return {"first": len(members), "first_sizes": sorted(first_sizes.values()),
            "sweep": len(sweep_sizes), "sweep_sizes": sorted(sweep_sizes.values())}


# ---------------------------------------------------------------------- stores

class Store:
    def __init__(self, kind: str, url: str, cleanup):
        self.kind, self.url, self.cleanup = kind, url, cleanup


def sqlite_store(tmp: Path, name: str) -> Store:
    url = f"sqlite:///{tmp / (name + '.db')}"
    return Store("sqlite", url, lambda: None)


def pg_store(admin_url: str, name: str) -> Store:
    import psycopg

    dbname = f"vv_bench_storm_{os.getpid()}_{name}"
    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    base = admin_url.rsplit("/", 1)[0]

    def drop() -> None:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

    return Store("postgres", f"{base}/{dbname}", drop)


# ---------------------------------------------------------------------- paths

def enqueue_all(engine, channels: dict[str, str], msgs: list[dict[str, Any]]) -> int:
    from vvops.store.outbox import enqueue
    from vvops.watcher.sinks import _render

    created = 0
    with session_scope(engine, immediate=True) as s:
        for m in msgs:
            _, new = enqueue(s, idempotency_key=m["idempotency_key"], channel=channels.get(m["channel_purpose"], m["channel_purpose"]),
                             kind=m["kind"], payload=_render(m), thread_key=m.get("thread_key"))
            created += int(new)
    return created


def run_batched(store: Store, cfg, storm, insts, contracts, window_s: float, standin) -> dict[str, Any]:
    from tests.slack_standin import DEFAULT_TOKEN
    from vvops.alerting.service import AlertService
    from vvops.notify.delivery import SlackDelivery

    migrate(store.url)
    engine = make_engine(store.url)
    try:
        svc = AlertService(engine, cfg)
        channels = dict(cfg.slack.channels.model_dump())
        # batches: the arrivals of each simulated second
        batches: dict[int, list] = {}
        for off, inst in storm:
            batches.setdefault(int(off), []).append(inst)
        first_msgs: list[dict[str, Any]] = []
        t_ingest = t_enqueue = 0.0
        per_batch = []
        for sec in sorted(batches):
            now = T0 + timedelta(seconds=sec + 1)
            t = time.perf_counter()
            msgs = svc.process_firing(batches[sec], now, environment="devnet")
            dt = time.perf_counter() - t
            t_ingest += dt
            per_batch.append(dt)
            t = time.perf_counter()
            enqueue_all(engine, channels, msgs)
            t_enqueue += time.perf_counter() - t
            first_msgs += msgs
        sweep_at = T0 + timedelta(seconds=window_s + 1) + cfg.alerting.route.group_interval
        t = time.perf_counter()
        sweep_msgs = svc.due_escalations(sweep_at)
        t_sweep = time.perf_counter() - t
        enqueue_all(engine, channels, sweep_msgs)
        replay_created = enqueue_all(engine, channels, first_msgs + sweep_msgs)  # must be 0

        exp = expected_messages(storm, lambda off: int(off))
        with session_scope(engine) as s:
            rows = list(s.execute(select(Alert.fingerprint, Alert.count, Alert.status)))
            outbox_rows = s.scalar(select(func.count()).select_from(NotificationOutbox))
        counts = {fp: c for fp, c, _ in rows}
        repeats = len(storm) // len(insts)
        assert len(rows) == len(insts), f"{len(rows)} alert rows, expected {len(insts)}"
        assert set(counts) == {i.fingerprint for i in insts}
        assert all(c == repeats for c in counts.values()), Counter(counts.values())
        assert sum(counts.values()) == len(storm)
        assert all(st == "firing" for _, _, st in rows)
        kinds = Counter(m["kind"] for m in first_msgs + sweep_msgs)
        assert len(first_msgs) == exp["first"], (len(first_msgs), exp)
        assert sorted(len(m["payload"]["firing"]) for m in first_msgs) == exp["first_sizes"], exp
        assert len(sweep_msgs) == exp["sweep"], (len(sweep_msgs), exp)
        assert sorted(len(m["payload"]["firing"]) for m in sweep_msgs) == exp["sweep_sizes"], exp
        assert set(kinds) <= {"alert.firing"}, kinds
        expected_outbox = exp["first"] + exp["sweep"]
        assert outbox_rows == expected_outbox, (outbox_rows, expected_outbox)
        assert replay_created == 0

        # deliver to the Slack stand-in
        before = len(standin.posted())
        delivery = SlackDelivery(engine, token=DEFAULT_TOKEN, base_url=standin.base_url, timeout_s=5)
        t = time.perf_counter()
        report = delivery.drain(wait_s=30)
        t_deliver = time.perf_counter() - t
        again = delivery.drain()
        posted = standin.posted()[before:]
        keys = [((p.get("metadata") if isinstance(p.get("metadata"), dict) else json.loads(p.get("metadata") or "{}"))
                 .get("event_payload", {}).get("key")) for p in posted]
        with session_scope(engine) as s:
            statuses = Counter(s.scalars(select(NotificationOutbox.status)))
            outbox_keys = set(s.scalars(select(NotificationOutbox.idempotency_key)))
        assert len(posted) == expected_outbox, (len(posted), expected_outbox)
        assert len(set(keys)) == len(keys) and set(keys) == outbox_keys, "a message lost or repeated"
        assert statuses == Counter({"sent": expected_outbox}), statuses
        assert not again.as_dict().get("sent"), again.as_dict()
        per_batch.sort()
        return {
            "alerts": len(storm), "batches": len(batches), "alert_rows": len(rows), "sum_count": sum(counts.values()),
            "groups": exp["first"], "msgs_first": len(first_msgs), "msgs_sweep": len(sweep_msgs),
            "outbox_rows": outbox_rows, "slack_posted": len(posted), "replay_new_rows": replay_created,
            "ingest_s": round(t_ingest, 3), "alerts_per_s": round(len(storm) / t_ingest),
            "batch_p50_ms": round(per_batch[len(per_batch) // 2] * 1000, 1),
            "batch_max_ms": round(per_batch[-1] * 1000, 1),
            "enqueue_s": round(t_enqueue, 3), "sweep_ms": round(t_sweep * 1000, 1), "deliver_s": round(t_deliver, 3),
            "keeps_up": t_ingest + t_enqueue < window_s,
        }
    finally:
        engine.dispose()


def run_per_alert(store: Store, cfg, storm, sample: int, max_s: float) -> dict[str, Any]:
    from vvops.alerting.service import AlertService

    migrate(store.url)
    engine = make_engine(store.url)
    try:
        svc = AlertService(engine, cfg)
        n, msgs = 0, 0
        t = time.perf_counter()
        for off, inst in storm[:sample]:
            msgs += len(svc.process_firing([inst], T0 + timedelta(seconds=off), environment="devnet"))
            n += 1
            if time.perf_counter() - t > max_s:
                break
        dt = time.perf_counter() - t
        rate = n / dt
        return {"alerts": n, "wall_s": round(dt, 2), "alerts_per_s": round(rate), "msgs": msgs,
                "ms_per_alert": round(dt / n * 1000, 2),
                "keeps_up_with_storm": rate >= len(storm) / 60.0}
    finally:
        engine.dispose()


def run_naive(store: Store, storm, max_n: int, max_s: float) -> dict[str, Any]:
    from vvops.store.outbox import enqueue

    migrate(store.url)
    engine = make_engine(store.url)
    try:
        n = 0
        t = time.perf_counter()
        for i, (off, inst) in enumerate(storm[:max_n]):
            now = T0 + timedelta(seconds=off)
            with session_scope(engine, immediate=True) as s:
                s.add(Alert(fingerprint=f"{inst.fingerprint}:{i}", rule=inst.rule, severity=inst.severity,
                            status="firing", labels=dict(inst.labels), annotations=dict(inst.annotations),
                            starts_at=now, count=1))
                enqueue(s, idempotency_key=f"naive:{i}", channel="#vv-alerts", kind="alert.firing",
                        payload={"text": inst.annotations["summary"]})
            n += 1
            if time.perf_counter() - t > max_s:
                break
        dt = time.perf_counter() - t
        with session_scope(engine) as s:
            rows = s.scalar(select(func.count()).select_from(Alert))
            outbox_rows = s.scalar(select(func.count()).select_from(NotificationOutbox))
        return {"alerts": n, "wall_s": round(dt, 2), "alerts_per_s": round(n / dt), "alert_rows": rows,
                "slack_messages_it_would_send": outbox_rows}
    finally:
        engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fingerprints", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--window-s", type=float, default=60.0)
    ap.add_argument("--per-alert-sample", type=int, default=1000)
    ap.add_argument("--naive-max", type=int, default=10_000)
    ap.add_argument("--max-path-s", type=float, default=120.0, help="time cap of the per-alert and naive loops")
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--pg-url", default=os.environ.get("VVOPS_TEST_POSTGRES_URL",
                                                      "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from tests.slack_standin import SlackStandIn
    from vvops.config import load_config

    cfg = load_config(environment="devnet")
    storm, insts, contracts = build_storm(args.fingerprints, args.repeats, args.window_s)
    tmp = Path(tempfile.mkdtemp(prefix="bench-storm-"))
    standin = SlackStandIn().start()
    out: dict[str, Any] = {"load_avg_start": os.getloadavg()[0]}
    try:
        for kind in [k.strip() for k in args.stores.split(",") if k.strip()]:
            res: dict[str, Any] = {}
            for path in ("batched", "per_alert", "naive"):
                store = sqlite_store(tmp, f"{kind}-{path}") if kind == "sqlite" else pg_store(args.pg_url, path)
                try:
                    if path == "batched":
                        res[path] = run_batched(store, cfg, storm, insts, contracts, args.window_s, standin)
                    elif path == "per_alert":
                        res[path] = run_per_alert(store, cfg, storm, args.per_alert_sample, args.max_path_s)
                    else:
                        res[path] = run_naive(store, storm, args.naive_max, args.max_path_s)
                finally:
                    store.cleanup()
            res["batched_vs_naive_x"] = round(res["batched"]["alerts_per_s"] / res["naive"]["alerts_per_s"], 1)
            res["batched_vs_per_alert_x"] = round(res["batched"]["alerts_per_s"] / res["per_alert"]["alerts_per_s"], 1)
            out[kind] = res
    finally:
        standin.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    out["load_avg_end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            if not isinstance(v, dict):
                print(f"{k}: {v}")
                continue
            print(k)
            for path, vals in v.items():
                if isinstance(vals, dict):
                    print(f"  {path}")
                    for kk, vv in vals.items():
                        print(f"    {kk:28s} {vv}")
                else:
                    print(f"  {path:30s} {vals}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
