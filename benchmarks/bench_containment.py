"""Time to contain: drain attacks against `vvops up` as a user runs it, hop by hop, in seconds and blocks.

    uv run python benchmarks/bench_containment.py                     # --attacks 20 --block-times 1,2
    uv run python benchmarks/bench_containment.py --attacks 5 --block-times 1 --json

For each block time: `vvops up --block-time B` (its own devnet, Prefect server, served deployments, watcher with
the containment fast path, warm start, automations) on free ports in a temporary VVOPS_HOME, with Slack pointed
at the stand-in (tests/slack_standin.py) in this process. Then `--attacks` times: the drain scenario (depositor
keys withdraw ~90 % of TVL), and this script only watches:

  mined             the attack block (first drain block) appeared at the node (0.05 s eth_blockNumber observer)
  alert stored      the tvl_drop alert row's starts_at (the watcher's alert-service commit)
  slack             the first chat.postMessage the stand-in received after the attack
  pause sent        the containment chain action's created_at (stored just before eth_sendRawTransaction)
  pause mined       the pause receipt's block appeared (also: blocks after the attack block)
  incident opened   the incident whose alert fingerprint is that alert: opened_at
  incident slack    the first Slack post of that incident's thread (the playbook's first message)
  run created       the incident-response flow run's creation by the automation (Prefect API)
  run started       its start_time (Running)

Every time is measured from "mined"; blocks are counted from the attack block. After each attack the incident
run is cancelled (this measures the start, not people answering), the timelock (impersonated) unpauses the vault,
the depositors put their funds back and the script waits out the tvl_drop window so the next drain alerts again.
Goals (issue 16): pause mined <= 3 blocks after the attack block (p95) at 1 s blocks; first playbook message in
Slack <= 2 s; incident run started <= 3 s after its alert.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stats import pct  # noqa: E402

HOPS = ("alert_stored", "slack_first", "pause_sent", "pause_mined", "run_created", "run_started", "incident_opened",
        "incident_slack")


class BlockClock:
    """When each block number first appeared at the node (polled every 50 ms)."""

    def __init__(self, rpc_url: str):
        import httpx

        self.http = httpx.Client(timeout=2)
        self.url = rpc_url
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        last = None
        while not self.stop.is_set():
            try:
                n = int(self.http.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}).json()["result"], 16)
                now = time.time()
                if last is None:
                    self.seen[n] = now
                else:
                    for b in range(last + 1, n + 1):
                        self.seen.setdefault(b, now)
                last = n if last is None else max(last, n)
            except Exception:  # noqa: BLE001 - the node restarts or is busy: keep polling
                pass
            time.sleep(0.05)

    def at(self, block: int, timeout: float = 30) -> float:
        deadline = time.time() + timeout
        while block not in self.seen and time.time() < deadline:
            time.sleep(0.02)
        return self.seen.get(block, float("nan"))


def wait_for(fn, timeout: float, every: float = 0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(every)
    return None


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def start_up(home: Path, block_time: float, standin_url: str, token: str, ports: dict[str, int],
             extra_args: list[str]) -> tuple[subprocess.Popen, subprocess.Popen, float]:
    env = {**os.environ, "VVOPS_HOME": str(home), "PREFECT_HOME": str(home / "prefect"),
           "SLACK_BOT_TOKEN": token, "VVOPS_SLACK_API_BASE_URL": standin_url, "PYTHONUNBUFFERED": "1"}
    for key in ("VVOPS_STORE_URL", "PREFECT_API_URL", "PREFECT_API_DATABASE_CONNECTION_URL"):
        env.pop(key, None)
    # the Prefect server first, with a generous wait (a fresh database under load takes minutes); `vvops up`
    # finds it healthy and uses it, as it does with a server already running
    server = subprocess.Popen([str(ROOT / ".venv/bin/prefect"), "server", "start", "--host", "127.0.0.1",
                               "--port", str(ports["prefect"])], cwd=ROOT, env=env, stdout=(home / "server.log").open("wb"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{ports['prefect']}/api"
    import httpx

    def healthy() -> bool:
        try:
            return httpx.get(f"{api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    if not wait_for(healthy, 900, 1.0):
        raise SystemExit(f"Prefect server not healthy; see {home / 'server.log'}")
    env["PREFECT_API_URL"] = api
    log = (home / "up.log").open("wb")
    started = time.time()
    proc = subprocess.Popen([str(ROOT / ".venv/bin/vvops"), "up", "--block-time", str(block_time), "--no-history",
                             "--port", str(ports["prefect"]), "--anvil-port", str(ports["anvil"]),
                             "--slack-port", str(ports["slack"]), *extra_args],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    ok = wait_for(lambda: b"automations" in (home / "up.log").read_bytes() or proc.poll() is not None, 600, 0.5)
    if not ok or proc.poll() is not None:
        raise SystemExit(f"vvops up did not get ready; see {home / 'up.log'}")
    return proc, server, time.time() - started


def stop_up(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def one_attack(i: int, *, info: Any, chain: Any, clock: BlockClock, engine: Any, standin: Any, api: str,
               deployment_id: str, timeout: float) -> dict[str, Any]:
    import httpx
    from sqlalchemy import select

    from vvops.devnet.scenarios import run_scenario
    from vvops.store import session_scope
    from vvops.store.models import Alert, ChainAction, Incident, IncidentEvent

    posts_before = len(standin.posted())
    rep = run_scenario("drain", devnet_info=info, rpc_url=info.rpc_url)
    attack_block = min(rep.blocks)
    mined = clock.at(attack_block)
    row: dict[str, Any] = {"attack": i, "attack_block": attack_block, "drain_blocks": rep.blocks}

    def alert():
        with session_scope(engine) as s:
            for a in s.scalars(select(Alert).where(Alert.rule == "tvl_drop").order_by(Alert.id.desc()).limit(3)):
                if int(a.annotations.get("block_number", -1)) in rep.blocks:
                    return a.fingerprint, _ts(a.starts_at)
        return None

    found = wait_for(alert, timeout)
    if not found:
        row["error"] = "no tvl_drop alert"
        return row
    fingerprint, stored = found
    row["alert_stored"] = stored - mined

    def action():
        with session_scope(engine) as s:
            a = s.scalar(select(ChainAction).where(ChainAction.idempotency_key.like(f"containment:%:{fingerprint}")))
            return (a.signed_tx_hash, _ts(a.created_at)) if a is not None else None

    sent = wait_for(action, timeout)
    if sent:
        tx_hash, sent_at = sent
        row["pause_sent"] = sent_at - mined
        receipt = wait_for(lambda: chain.request("eth_getTransactionReceipt", [tx_hash]), timeout)
        if receipt:
            block = int(receipt["blockNumber"], 16)
            row["pause_mined"] = clock.at(block) - mined
            row["pause_mined_blocks"] = block - attack_block

    def incident():
        with session_scope(engine) as s:
            rows = s.execute(select(Incident.key, Incident.opened_at, IncidentEvent.data).join(IncidentEvent.incident)
                             .where(IncidentEvent.kind == "opened").order_by(Incident.id.desc()).limit(5))
            for key, opened_at, data in rows:
                if fingerprint in json.dumps((data or {}).get("alert") or {}):
                    return key, _ts(opened_at)
        return None

    opened = wait_for(incident, timeout)
    if opened:
        key, opened_at = opened
        row["incident_opened"] = opened_at - mined
    http = httpx.Client(timeout=30)

    def flow_run():
        body = {"flow_runs": {"deployment_id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_DESC",
                "limit": 10}
        try:
            runs = http.post(f"{api}/flow_runs/filter", json=body).json()
        except httpx.HTTPError:   # the API is slow under load: ask again
            return None
        for run in runs:
            if fingerprint in json.dumps(run.get("parameters") or {}) and run.get("start_time"):
                return run
        return None

    run = wait_for(flow_run, timeout, 0.2)
    if run:
        row["run_created"] = datetime.fromisoformat(run["created"]).timestamp() - mined   # by the automation
        row["run_started"] = datetime.fromisoformat(run["start_time"]).timestamp() - mined
        row["run_started_after_alert"] = row["run_started"] - row["alert_stored"]

    arrivals = standin.arrivals[posts_before:]
    posts = standin.posted()[posts_before:]
    if arrivals:
        row["slack_first"] = min(arrivals) - mined
    if opened:
        own = [t for t, p in zip(arrivals, posts) if key in json.dumps(p)]
        if own:
            row["incident_slack"] = min(own) - mined
    # the run waits for people: cancel it (this benchmark measures the start, not the answers)
    if run:
        try:
            http.post(f"{api}/flow_runs/{run['id']}/set_state",
                      json={"state": {"type": "CANCELLING", "name": "Cancelling"}, "force": True})
        except httpx.HTTPError:
            pass
    return row


def depositor_shares(info: Any, chain: Any) -> dict[str, int]:
    vault = chain.contract("VaultV1", info.contracts.vault)
    return {u.address: vault.call("sharesOf", u.address) for u in info.accounts.users}


def reset(info: Any, chain: Any, clock: BlockClock, block_time: float, shares_before: dict[str, int]) -> None:
    """Unpause (timelock, impersonated), the depositors put their assets back, then wait out the tvl_drop window."""
    from vvops.devnet.timetravel import impersonate, set_balance

    vault = chain.contract("VaultV1", info.contracts.vault)
    if vault.call("paused"):
        with impersonate(chain, info.contracts.timelock):
            set_balance(chain, info.contracts.timelock, 10**20)
            vault.transact(info.contracts.timelock, "unpause", gas=200_000)
    for user in info.accounts.users:
        missing = shares_before[user.address] - vault.call("sharesOf", user.address)
        if missing > 0:
            vault.transact(user.address, "deposit", missing, gas=300_000)
    head = chain.block_number()
    clock.at(head + 12, timeout=12 * block_time + 30)


def summarise(rows: list[dict[str, Any]], block_time: float) -> dict[str, Any]:
    out: dict[str, Any] = {"block_time_s": block_time, "attacks": len(rows),
                           "errors": [r for r in rows if "error" in r]}
    for hop in (*HOPS, "run_started_after_alert"):
        values = [r[hop] for r in rows if hop in r]
        out[hop] = {"n": len(values), "p50_s": round(pct(values, 50), 2), "p95_s": round(pct(values, 95), 2),
                    "p50_blocks": round(pct(values, 50) / block_time, 1), "p95_blocks": round(pct(values, 95) / block_time, 1)}
    blocks = [r["pause_mined_blocks"] for r in rows if "pause_mined_blocks" in r]
    out["pause_mined_blocks_after_attack"] = {"n": len(blocks), "p50": pct(blocks, 50), "p95": pct(blocks, 95),
                                              "max": max(blocks) if blocks else None}
    return out


def tree_memory(*pids: int) -> dict[str, Any]:
    """Processes and memory of `vvops up` (and the Prefect server this script started for it) with everything
    under them: RSS summed (shared pages counted once per process) and USS summed (pages only that process has)."""
    import psutil

    procs = [q for pid in pids for q in (psutil.Process(pid), *psutil.Process(pid).children(recursive=True))]
    rss = uss = 0
    n = 0
    for p in procs:
        try:
            info = p.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        uss += info.uss
        n += 1
    return {"processes": n, "rss_mb": round(rss / 2**20), "uss_mb": round(uss / 2**20)}


def waiting_runs(api: str, deployment_id: str, count: int, timeout: float) -> dict[str, Any]:
    """`count` incident-response runs that wait for their acknowledgement (PAUSED), then their cost."""
    import httpx

    http = httpx.Client(timeout=10)
    ids = []
    for i in range(count):
        r = http.post(f"{api}/deployments/{deployment_id}/create_flow_run", json={"parameters": {
            "title": f"bench waiting run {i}", "severity": "P3", "incident_type": "technical", "environment": "devnet"}})
        ids.append(r.json()["id"])
    started = time.time()

    def paused() -> int:
        body = {"flow_runs": {"id": {"any_": ids}, "state": {"type": {"any_": ["PAUSED"]}}}, "limit": 200}
        return len(http.post(f"{api}/flow_runs/filter", json=body).json())

    done = wait_for(lambda: paused() >= count, timeout, 1.0)
    return {"runs": count, "paused": paused(), "all_paused_after_s": round(time.time() - started, 1) if done else None,
            "ids": ids}


def run_block_time(block_time: float, args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from tests.slack_standin import DEFAULT_TOKEN, SlackStandIn
    from vvops.devnet import Chain, free_port
    from vvops.devnet.deploy import load_devnet_file
    from vvops.store import make_engine

    home = Path(tempfile.mkdtemp(prefix=f"bench-contain-{block_time:g}s-"))
    standin = SlackStandIn().start()
    standin.arrivals = []
    seen = [0]

    def poll_slack() -> None:
        while True:
            n = len(standin.posted())
            standin.arrivals.extend([time.time()] * (n - seen[0]))
            seen[0] = n
            time.sleep(0.005)

    threading.Thread(target=poll_slack, daemon=True).start()
    ports = {"prefect": free_port(), "anvil": free_port(), "slack": free_port()}
    proc, server, ready_s = start_up(home, block_time, standin.base_url, DEFAULT_TOKEN, ports, args.up_args.split())
    api = f"http://127.0.0.1:{ports['prefect']}/api"
    rows: list[dict[str, Any]] = []
    try:
        info = load_devnet_file(home / "devnet.json")
        chain = Chain(info.rpc_url)
        clock = BlockClock(info.rpc_url)
        engine = make_engine(f"sqlite:///{home / 'ops.db'}")
        deployment_id = httpx.get(f"{api}/deployments/name/incident-response/devnet", timeout=5).json()["id"]
        time.sleep(args.settle_s)
        idle = tree_memory(proc.pid, server.pid)
        print(f"vvops up idle: {idle}", flush=True)
        for i in range(args.attacks):
            shares_before = depositor_shares(info, chain)
            row = one_attack(i, info=info, chain=chain, clock=clock, engine=engine, standin=standin, api=api,
                             deployment_id=deployment_id, timeout=args.timeout)
            rows.append(row)
            print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
            reset(info, chain, clock, block_time, shares_before)
        clock.stop.set()
        waiting = None
        if args.waiting:
            waiting = waiting_runs(api, deployment_id, args.waiting, args.waiting_timeout)
            waiting["memory"] = tree_memory(proc.pid, server.pid)
            waiting.pop("ids")
            print(f"vvops up with {args.waiting} waiting runs: {waiting}", flush=True)
    finally:
        stop_up(proc)
        stop_up(server)
        standin.stop()
    summary = summarise(rows, block_time)
    summary["vvops_up_ready_s"] = round(ready_s, 1)
    summary["vvops_up_idle"] = idle
    summary["waiting"] = waiting
    summary["home"] = str(home)
    return summary


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--attacks", type=int, default=20)
    ap.add_argument("--block-times", default="1,2")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--settle-s", type=float, default=10, help="after ready: let the first runs/automations settle")
    ap.add_argument("--up-args", default="", help="extra `vvops up` arguments, e.g. '--activity-interval 0'")
    ap.add_argument("--waiting", type=int, default=0, help="then N incident runs left waiting for people: memory")
    ap.add_argument("--waiting-timeout", type=float, default=900)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = [run_block_time(float(b), args) for b in args.block_times.split(",")]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(f"\n== block time {r['block_time_s']:g} s: {r['attacks']} attacks, {len(r['errors'])} errors; "
              f"vvops up ready in {r['vvops_up_ready_s']} s ==")
        print(f"{'hop (from the attack block mined)':<36} {'n':>3} {'p50 s':>7} {'p95 s':>7} {'p50 blk':>8} {'p95 blk':>8}")
        for hop in (*HOPS, "run_started_after_alert"):
            h = r[hop]
            print(f"{hop:<36} {h['n']:>3} {h['p50_s']:>7} {h['p95_s']:>7} {h['p50_blocks']:>8} {h['p95_blocks']:>8}")
        b = r["pause_mined_blocks_after_attack"]
        print(f"pause mined, blocks after the attack block: p50 {b['p50']} p95 {b['p95']} max {b['max']} (goal p95 <= 3)")
        print(f"vvops up idle: {r['vvops_up_idle']}; with waiting runs: {r['waiting']}")
    print(f"load average {os.getloadavg()[0]:.1f} (2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
