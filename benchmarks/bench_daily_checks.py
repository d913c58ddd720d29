"""The whole daily-checks flow on a devnet: wall time, and how much of it is Prefect orchestration.

    uv run python benchmarks/bench_daily_checks.py [--runs 3]

Starts its own anvil + devnet, a temporary state dir and the Prefect test server. Orchestration is estimated
in the same run from empty flows and tasks: (sub-flow count x empty-flow cost) + (task-run count x empty-task
cost), against the measured wall time of daily-checks.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="vvops-bench-"))
    os.environ["VVOPS_HOME"] = str(home)
    os.environ.pop("VVOPS_STORE_URL", None)
    os.environ["PREFECT_HOME"] = str(home / "prefect")
    os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"

    from vvops.devnet import AnvilProcess, deploy_devnet, free_port, write_devnet_file
    from vvops.store import default_store_url, migrate

    with AnvilProcess(free_port(), log_path=home / "anvil.log") as anvil:
        write_devnet_file(deploy_devnet(anvil.rpc_url), home / "devnet.json")
        migrate(default_store_url())

        from prefect import flow, task
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterParentFlowRunId,
            TaskRunFilter,
            TaskRunFilterFlowRunId,
        )
        from prefect.settings import temporary_settings
        from prefect.testing.utilities import prefect_test_harness

        from flows.daily_checks import daily_checks

        @task
        def empty_task() -> None:
            return None

        @flow
        def empty_flow(n: int) -> None:
            for _ in range(n):
                empty_task()

        with prefect_test_harness(server_startup_timeout=180), \
                temporary_settings(updates={"flows.heartbeat_frequency": None}):
            daily_checks(environment="devnet")  # warm-up: imports, GE, first connections
            walls, task_counts, flow_counts = [], [], []
            for _ in range(args.runs):
                started = time.perf_counter()
                state = daily_checks(environment="devnet", return_state=True)
                walls.append(time.perf_counter() - started)
                run_id = state.state_details.flow_run_id
                with get_client(sync_client=True) as client:
                    children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                        parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id])))
                    ids = [run_id, *[c.id for c in children]]
                    tasks = client.read_task_runs(task_run_filter=TaskRunFilter(
                        flow_run_id=TaskRunFilterFlowRunId(any_=ids)), limit=200)
                task_counts.append(len(tasks))
                flow_counts.append(len(ids))

            empty_flow(0)
            t0 = time.perf_counter()
            for _ in range(5):
                empty_flow(0)
            per_flow = (time.perf_counter() - t0) / 5
            t0 = time.perf_counter()
            empty_flow(50)
            per_task = (time.perf_counter() - t0 - per_flow) / 50

    wall = statistics.median(walls)
    tasks_n, flows_n = statistics.median(task_counts), statistics.median(flow_counts)
    orchestration = flows_n * per_flow + tasks_n * per_task
    print(f"daily-checks wall time   median {wall:.2f} s over {args.runs} runs ({', '.join(f'{w:.2f}' for w in walls)})")
    print(f"flow runs / task runs    {flows_n:.0f} / {tasks_n:.0f} per daily-checks run")
    print(f"empty flow / empty task  {per_flow * 1000:.0f} ms / {per_task * 1000:.1f} ms (measured in this run)")
    print(f"orchestration estimate   {orchestration:.2f} s = {100 * orchestration / wall:.0f} % of the wall time")
    print(f"load average             {os.getloadavg()[0]:.1f} (2 cores)")


if __name__ == "__main__":
    main()
