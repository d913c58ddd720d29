"""Quiet devnet: `vvops up` as a user runs it, left alone for `--minutes` with no scenario.

    uv run python benchmarks/bench_quiet_devnet.py [--minutes 30] [--json] [--keep]

Set-up: `python -m vvops.cli up` on free ports (Prefect server, anvil) with its own VVOPS_HOME (a fresh store,
no demo history), exactly as `./vv up` runs: devnet on a 2 s block clock with the synthetic traffic, the
watcher, every deployment served (ops-sweep every minute), the P0/P1 automations.

Sampled every minute from the outside: alerts in the ops store by severity and rule, incidents, flow runs by
state (Prefect API), the vault's TVL (anvil), the watcher's processed block. At the end, `vvops run daily-checks
--json` against the running system (exit code and the checks that were not ok), then SIGINT: the seconds until
`vvops up` exited and whether any process it started outlived it.

Goal (issue 14): zero P0/P1 alerts, zero incidents, daily-checks exit 0 or 1, Ctrl-C within 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vvops.devnet import Chain, free_port  # noqa: E402


def _reader(process: subprocess.Popen, lines: list[str], ready: threading.Event) -> None:
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if "Ctrl-C stops everything" in line:
            ready.set()


def _store_counts(db: Path) -> dict[str, Any]:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        alerts = conn.execute("SELECT severity, rule, status FROM alerts").fetchall()
        incidents = conn.execute("SELECT severity, title FROM incidents").fetchall()
        checkpoint = conn.execute("SELECT max(last_block) FROM watcher_checkpoints").fetchone()[0]
    finally:
        conn.close()
    return {"alerts_by_severity": dict(Counter(a[0] for a in alerts)),
            "alerts_by_rule": dict(Counter(f"{a[1]} ({a[0]})" for a in alerts)),
            "incidents": len(incidents), "incident_titles": [i[1] for i in incidents][:10],
            "processed_block": checkpoint}


def _flow_runs(api: str) -> dict[str, int]:
    runs = httpx.post(f"{api}/flow_runs/filter", json={"limit": 200}, timeout=30).json()
    return dict(Counter(r["state"]["type"] for r in runs if r.get("state")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the VVOPS_HOME directory (logs, store)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="vv-quiet-"))
    port, anvil_port = free_port(), free_port()
    env = {**os.environ, "VVOPS_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    for key in ("PREFECT_API_URL", "PREFECT_HOME", "VVOPS_STORE_URL"):
        env.pop(key, None)
    api = f"http://127.0.0.1:{port}/api"
    lines: list[str] = []
    ready = threading.Event()
    t0 = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "vvops.cli", "up", "--port", str(port), "--anvil-port",
                                str(anvil_port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env, cwd=ROOT)
    threading.Thread(target=_reader, args=(process, lines, ready), daemon=True).start()
    report: dict[str, Any] = {"minutes": args.minutes, "home": str(home)}
    samples: list[dict[str, Any]] = []
    children: list[psutil.Process] = []
    try:
        if not ready.wait(900):
            raise SystemExit("vvops up was not ready within 15 min:\n" + "\n".join(lines[-30:]))
        report["ready_s"] = round(time.monotonic() - t0, 1)
        children = psutil.Process(process.pid).children(recursive=True)
        info = json.loads((home / "devnet.json").read_text())
        chain = Chain(info["rpc_url"])
        vault = chain.contract("VaultV1", info["contracts"]["vault"])
        start_block = chain.block_number()
        end = time.monotonic() + args.minutes * 60
        while True:
            sample = {"t_min": round((time.monotonic() - t0) / 60, 1), "tvl": vault.call("totalAssets") / 1e18,
                      "block": chain.block_number(), **_store_counts(home / "ops.db")}
            samples.append(sample)
            print(f"[{sample['t_min']:5.1f} min] block {sample['block']} TVL {sample['tvl']:,.0f} alerts "
                  f"{sample['alerts_by_severity']} incidents {sample['incidents']}", file=sys.stderr, flush=True)
            if time.monotonic() >= end:
                break
            time.sleep(min(60.0, max(0.0, end - time.monotonic())))
        blocks = chain.block_number() - start_block
        txs = sum(len(chain.get_block(n)["transactions"]) for n in range(start_block + 1, chain.block_number() + 1))
        daily = subprocess.run([sys.executable, "-m", "vvops.cli", "run", "daily-checks", "--json"],
                               env={**env, "PREFECT_API_URL": api}, cwd=ROOT, capture_output=True, text=True,
                               timeout=900)
        try:
            summary = json.loads(daily.stdout[daily.stdout.index("{"):])
        except ValueError:
            summary = {}
        report["daily_checks"] = {
            "exit_code": daily.returncode,
            "not_ok": [f"{c['status']} {c['id']}: {c.get('message', '')}"[:160]
                       for c in summary.get("checks", []) if c.get("status") != "ok"]}
        final = _store_counts(home / "ops.db")
        tvls = [s["tvl"] for s in samples]
        report.update({
            "alerts_by_severity": final["alerts_by_severity"], "alerts_by_rule": final["alerts_by_rule"],
            "incidents": final["incidents"], "incident_titles": final["incident_titles"],
            "flow_runs": _flow_runs(api),
            "blocks": blocks, "transactions": txs,
            "tvl": {"first": round(tvls[0]), "min": round(min(tvls)), "max": round(max(tvls)), "last": round(tvls[-1]),
                    "max_drift_pct": round(100 * max(abs(t - tvls[0]) for t in tvls) / tvls[0], 1)},
            "watcher_processed_block": final["processed_block"], "node_head": chain.block_number(),
        })
        chain.close()
    finally:
        sigint_at = time.monotonic()
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        report["stop_s"] = round(time.monotonic() - sigint_at, 1)
        report["exit_code"] = process.returncode
        time.sleep(0.5)
        report["leftover_processes"] = [" ".join(c.cmdline()[:4]) for c in children
                                        if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        after = lines[next((i for i, line in enumerate(lines) if line.startswith("stopping")), len(lines)):]
        report["console_lines_after_sigint"] = after
        report["console_lines_total"] = len(lines)
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    sev = report.get("alerts_by_severity", {})
    report["goal_met"] = (sev.get("P0", 0) == 0 and sev.get("P1", 0) == 0 and report.get("incidents") == 0
                          and report.get("daily_checks", {}).get("exit_code") in (0, 1) and report["stop_s"] <= 10
                          and not report["leftover_processes"])
    if args.json:
        print(json.dumps({**report, "samples": samples}, indent=2, default=str))
    else:
        for key, value in report.items():
            print(f"{key:<28} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
