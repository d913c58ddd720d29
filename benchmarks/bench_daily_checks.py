"""The whole daily-checks flow on a devnet: wall time, and how much of it is Prefect orchestration.

    uv run python benchmarks/bench_daily_checks.py [--runs 3] [--server live|harness]

Starts its own anvil + devnet and a temporary state dir. `--server live` (default: how a user runs it) starts
`prefect server start` on a free port and keeps Prefect's settings as `vvops up` leaves them: flow-run
heartbeats ON. Two variants run interleaved in this process:
  before  Prefect's own heartbeat thread (each flow and sub-flow waits up to 1 s on exit), blocks loaded by
          every task, a new HTTP client per RPC client
  after   our heartbeat (tasks/heartbeat.py: same events, stops at once), blocks loaded once per flow run,
          one keep-alive HTTP pool per process (tasks/runtime.py)
`--server harness` is the old measurement (Prefect test harness, heartbeats off), for comparison.
Orchestration is estimated per variant from empty flows and tasks measured in the same conditions:
(flow-run count x empty-flow cost) + (task-run count x empty-task cost), against daily-checks' wall time.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _variant(name: str, original_heartbeats) -> None:
    """Switch this process between the before/after orchestration variants."""
    from prefect import flow_engine

    import tasks.runtime as runtime
    from tasks.heartbeat import send_heartbeats

    if name == "before":
        flow_engine._send_heartbeats = original_heartbeats
        runtime._BLOCKS_KEEP = 0
        runtime.shared_http = lambda timeout_s: None
    else:
        flow_engine._send_heartbeats = send_heartbeats
        runtime._BLOCKS_KEEP = 64
        runtime.shared_http = _SHARED_HTTP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--server", choices=("live", "harness"), default="live")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="vvops-bench-"))
    os.environ["VVOPS_HOME"] = str(home)
    os.environ.pop("VVOPS_STORE_URL", None)
    os.environ["PREFECT_HOME"] = str(home / "prefect")
    os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

    from vvops.devnet import AnvilProcess, deploy_devnet, free_port, write_devnet_file
    from vvops.store import default_store_url, migrate

    server = None
    if args.server == "live":
        port = free_port()
        os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
        server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                   "--port", str(port)], stdout=(home / "server.log").open("wb"),
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with AnvilProcess(free_port(), log_path=home / "anvil.log") as anvil:
            write_devnet_file(deploy_devnet(anvil.rpc_url), home / "devnet.json")
            migrate(default_store_url())
            if server is not None:
                import httpx

                deadline = time.monotonic() + 900
                while True:
                    try:
                        if httpx.get(os.environ["PREFECT_API_URL"] + "/health", timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise SystemExit(f"Prefect server not healthy; see {home / 'server.log'}")
                    time.sleep(1)
                from blocks.register import register_blocks

                register_blocks(environment="devnet")   # as `vvops up` does: the flows read these blocks
                results = _measure(args.runs, heartbeats_off=False)
            else:
                from prefect.testing.utilities import prefect_test_harness

                with prefect_test_harness(server_startup_timeout=180):
                    results = _measure(args.runs, heartbeats_off=True)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(60)
    for name, r in results.items():
        print(f"[{name}] daily-checks wall median {r['wall']:.2f} s ({', '.join(f'{w:.2f}' for w in r['walls'])}); "
              f"{r['flows']:.0f} flow runs / {r['tasks']:.0f} task runs; empty flow {r['per_flow'] * 1000:.0f} ms, "
              f"empty task {r['per_task'] * 1000:.1f} ms; orchestration {r['orchestration']:.2f} s = "
              f"{100 * r['orchestration'] / r['wall']:.0f} %")
    print(f"server {args.server}; load average {os.getloadavg()[0]:.1f} (2 cores)")


def _measure(runs: int, *, heartbeats_off: bool) -> dict:
    from contextlib import nullcontext

    from prefect import flow, flow_engine, task
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )
    from prefect.settings import temporary_settings

    import flows  # noqa: F401 - installs our heartbeats; the original is kept for "before"
    import tasks.runtime as runtime
    from flows.daily_checks import daily_checks

    global _SHARED_HTTP
    _SHARED_HTTP = runtime.shared_http
    import tasks.heartbeat as heartbeat

    heartbeat.install()
    original = heartbeat.prefect_original

    @task
    def empty_task() -> None:
        return None

    @flow
    def empty_flow(n: int) -> None:
        for _ in range(n):
            empty_task()

    settings = temporary_settings(updates={"flows.heartbeat_frequency": None}) if heartbeats_off else nullcontext()
    variants = ("before", "after")
    walls = {v: [] for v in variants}
    counts = {v: [] for v in variants}
    with settings:
        for v in variants:
            _variant(v, original)
            daily_checks(environment="devnet")  # warm-up: imports, GE, first connections
        for _ in range(runs):
            for v in variants:
                _variant(v, original)
                started = time.perf_counter()
                state = daily_checks(environment="devnet", return_state=True)
                walls[v].append(time.perf_counter() - started)
                run_id = state.state_details.flow_run_id
                with get_client(sync_client=True) as client:
                    children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                        parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id])))
                    ids = [run_id, *[c.id for c in children]]
                    task_runs = client.read_task_runs(task_run_filter=TaskRunFilter(
                        flow_run_id=TaskRunFilterFlowRunId(any_=ids)), limit=200)
                counts[v].append((len(ids), len(task_runs)))
        out = {}
        for v in variants:
            _variant(v, original)
            empty_flow(0)
            t0 = time.perf_counter()
            for _ in range(5):
                empty_flow(0)
            per_flow = (time.perf_counter() - t0) / 5
            t0 = time.perf_counter()
            empty_flow(50)
            per_task = (time.perf_counter() - t0 - per_flow) / 50
            wall = statistics.median(walls[v])
            flows_n = statistics.median(c[0] for c in counts[v])
            tasks_n = statistics.median(c[1] for c in counts[v])
            out[v] = {"wall": wall, "walls": walls[v], "flows": flows_n, "tasks": tasks_n, "per_flow": per_flow,
                      "per_task": per_task, "orchestration": flows_n * per_flow + tasks_n * per_task}
    return out


_SHARED_HTTP = None


if __name__ == "__main__":
    main()
