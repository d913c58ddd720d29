"""Worker recovery (loopback only, bounded): both workers killed during a daily-checks run of the production profile.

    uv run python benchmarks/bench_worker_recovery.py [--kill-after-s 3] [--pg-url ...] [--json]

1. `vvops up --profile production --workers 2` (PostgreSQL for the Prefect server and the ops store: two scratch
   databases created here and dropped afterwards; devnet anvil; the process work pool; 2 `prefect worker`
   processes under vvops up's supervisor, which restarts a worker that exits).
2. A `daily-checks/devnet` flow run is created through the API; once it is RUNNING (and `--kill-after-s` later)
   both worker processes are killed with SIGKILL — by the pids `vvops up` printed for them, nothing else.
   The flow-run process a worker started is its child: it is recorded, not killed.
3. Measured: time until the supervisor restarted both workers and they are ONLINE in the work pool again; the
   final state of the interrupted run and its stored results (check_runs / check_results rows); then a second
   daily-checks run, which only the restarted workers can pick up, must complete with results stored.
   A crashed run 1 is set back to SCHEDULED by the `vv-reschedule-crashed-<env>` automation `vvops up` creates
   (the benchmark does not touch it) and must then complete on the restarted workers with its results stored.
Finally SIGINT stops `vvops up` (which stops everything it started); the databases are dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402

from vvops.devnet import free_port  # noqa: E402

FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


class Lines:
    """Reads the child's stdout in a thread; `wait_for(pattern)` is bounded."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        self._cv = threading.Condition()
        self._t = threading.Thread(target=self._run, args=(proc,), daemon=True)
        self._t.start()

    def _run(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            with self._cv:
                self.lines.append(line.rstrip("\n"))
                self._cv.notify_all()

    def wait_for(self, pattern: str, timeout: float, count: int = 1, start: int = 0) -> list[str]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                hits = [ln for ln in self.lines[start:] if rx.search(ln)]
                if len(hits) >= count:
                    return hits
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {count}× {pattern!r} within {timeout:.0f} s; last lines:\n"
                                       + "\n".join(self.lines[-30:]))
                self._cv.wait(min(left, 1.0))


def state_of(api: str, run_id: str) -> str:
    return httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()["state"]["type"]


def wait_state(api: str, run_id: str, states: tuple[str, ...], timeout: float) -> tuple[str, float]:
    t = time.monotonic()
    deadline = t + timeout
    while time.monotonic() < deadline:
        s = state_of(api, run_id)
        if s in states:
            return s, time.monotonic() - t
        time.sleep(0.5)
    return "TIMED OUT:" + state_of(api, run_id), time.monotonic() - t


def online_workers(api: str, pool: str) -> list[str]:
    r = httpx.post(f"{api}/work_pools/{pool}/workers/filter", json={}, timeout=10).json()
    return sorted(w["name"] for w in r if w.get("status") == "ONLINE")


def store_results(store_url: str, run_id: str) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    eng = create_engine(store_url)
    try:
        with eng.connect() as conn:
            runs = conn.execute(text("SELECT id, status FROM check_runs WHERE flow_run_id = :r"), {"r": run_id}).all()
            ids = [r[0] for r in runs]
            results = conn.scalar(text("SELECT count(*) FROM check_results WHERE run_id = ANY(:ids)"), {"ids": ids}) if ids else 0
        return {"check_runs": [r[1] for r in runs], "check_results": results}
    finally:
        eng.dispose()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kill-after-s", type=float, default=3.0)
    ap.add_argument("--pg-url", default=os.environ.get("VVOPS_TEST_POSTGRES_URL",
                                                      "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from deployments.prefect_yaml import WORK_POOL
    from vvops.resilience.backup import drop_scratch_database

    tmp = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    base = args.pg_url.rsplit("/", 1)[0]
    suffix = f"{os.getpid()}"
    prefect_db = f"{base.replace('+psycopg', '+asyncpg')}/vv_bench_recovery_prefect_{suffix}"
    store_db = f"{base}/vv_bench_recovery_store_{suffix}"
    port, anvil_port = free_port(), free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "VVOPS_HOME": str(tmp), "PYTHONUNBUFFERED": "1", "PREFECT_WORKER_QUERY_SECONDS": "2",
           "VVOPS_PREFECT_DATABASE_URL": prefect_db, "VVOPS_STORE_URL": store_db}
    for key in ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_API_DATABASE_CONNECTION_URL"):
        env.pop(key, None)
    out: dict[str, Any] = {"load_avg_start": round(os.getloadavg()[0], 2)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vvops.cli", "up", "--profile", "production", "--workers", "2", "--no-history",
         "--port", str(port), "--anvil-port", str(anvil_port), "--activity-interval", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    lines = Lines(proc)
    flow_run_procs: list[int] = []
    try:
        t0 = time.monotonic()
        lines.wait_for("Ctrl-C stops everything", timeout=300)
        out["up_ready_s"] = round(time.monotonic() - t0, 1)
        worker_pids = [int(m.group(1)) for ln in lines.wait_for(r"worker\s+vvops-worker-\d.*\(pid \d+", 5, count=2)
                       if (m := re.search(r"\(pid (\d+)", ln))]
        assert len(worker_pids) == 2, worker_pids
        deadline = time.monotonic() + 60
        while len(online_workers(api, WORK_POOL)) < 2 and time.monotonic() < deadline:
            time.sleep(1)
        out["workers_online_before"] = online_workers(api, WORK_POOL)

        dep = httpx.get(f"{api}/deployments/name/daily-checks/devnet", timeout=10).json()
        run = httpx.post(f"{api}/deployments/{dep['id']}/create_flow_run", json={}, timeout=10).json()
        state, waited = wait_state(api, run["id"], ("RUNNING",) + FINAL, timeout=120)
        out["run1_picked_up_s"] = round(waited, 1)
        assert state == "RUNNING", f"run 1 never ran: {state}"
        time.sleep(args.kill_after_s)
        for pid in worker_pids:
            try:
                flow_run_procs += [c.pid for c in psutil.Process(pid).children(recursive=True)]
            except psutil.Error:
                pass
        out["run1_state_at_kill"] = state_of(api, run["id"])
        n_lines = len(lines.lines)
        t_kill = time.monotonic()
        for pid in worker_pids:
            os.kill(pid, signal.SIGKILL)
        out["killed_worker_pids"] = worker_pids
        out["flow_run_processes_of_killed_workers"] = len(flow_run_procs)
        lines.wait_for(r"worker-\d exited with code .*restarting", timeout=60, count=2, start=n_lines)
        out["workers_restarted_s"] = round(time.monotonic() - t_kill, 1)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            # note: a killed worker's name stays ONLINE until its heartbeat expires; the restarted ones reuse the names
            if len(online_workers(api, WORK_POOL)) >= 2:
                break
            time.sleep(1)
        out["workers_online_after"] = online_workers(api, WORK_POOL)
        state1, w1 = wait_state(api, run["id"], FINAL, timeout=300)
        out["run1_final_state"] = state1
        out["run1_final_after_kill_s"] = round(time.monotonic() - t_kill, 1)
        out["run1_store"] = store_results(store_db, run["id"])
        out["flow_run_processes_alive_after"] = sum(1 for p in flow_run_procs if psutil.pid_exists(p))
        if state1 == "CRASHED":
            # vvops up's `vv-reschedule-crashed-devnet` automation sets a crashed cadence run back to Scheduled;
            # one of the restarted workers then runs the same flow run from the top. Nothing here touches it.
            t_r = time.monotonic()
            state1a, _ = wait_state(api, run["id"], ("SCHEDULED", "PENDING", "RUNNING", "COMPLETED"), timeout=120)
            out["run1_rescheduled_by_automation"] = state1a != "CRASHED"
            out["run1_rescheduled_after_s"] = round(time.monotonic() - t_r, 1)
            state1b, _ = wait_state(api, run["id"], FINAL, timeout=300)
            out["run1_after_reschedule_state"] = state1b
            out["run1_after_reschedule_s"] = round(time.monotonic() - t_r, 1)
            out["run1_after_reschedule_store"] = store_results(store_db, run["id"])

        history = httpx.get(f"{api}/flow_run_states/", params={"flow_run_id": run["id"]}, timeout=10).json()
        out["run1_state_history"] = [h["type"] for h in sorted(history, key=lambda h: h["timestamp"])]

        run2 = httpx.post(f"{api}/deployments/{dep['id']}/create_flow_run", json={}, timeout=10).json()
        t2 = time.monotonic()
        state2, _ = wait_state(api, run2["id"], FINAL, timeout=300)
        out["run2_final_state"] = state2
        out["run2_wall_s"] = round(time.monotonic() - t2, 1)
        out["run2_store"] = store_results(store_db, run2["id"])
        run2_info = httpx.get(f"{api}/flow_runs/{run2['id']}", timeout=10).json()
        out["run2_worker"] = run2_info.get("work_queue_name"), run2_info.get("infrastructure_pid")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()  # the pid we started
                proc.wait(10)
        for pid in flow_run_procs:  # a flow-run process orphaned by a killed worker: stop it, by its pid
            try:
                p = psutil.Process(pid)
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    out.setdefault("orphans_stopped", []).append(pid)
                    p.terminate()
                    p.wait(10)
            except psutil.Error:
                pass
        for url in (prefect_db.replace("+asyncpg", "+psycopg"), store_db):
            try:
                drop_scratch_database(scratch_url=url)
            except Exception as error:  # noqa: BLE001
                print(f"warning: could not drop {url}: {error}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
    out["up_exit_code"] = proc.returncode
    out["load_avg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
