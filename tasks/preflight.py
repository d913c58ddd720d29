"""The first step of every deployed flow: refuse to start, in one line that names the fix, when this worker
cannot run the flow (config invalid for the environment, store unreachable or not migrated).

Not a @task: a failed task logs a traceback, and the operator should see only the line that says what to do.
The flow returns the Failed state this gives, so the run ends Failed with that line as its message.
"""

from __future__ import annotations

from prefect.logging import get_run_logger
from prefect.states import Failed, State

from tasks.runtime import ops_config, store_url
from vvops.readiness import readiness_problem

_ready: set[tuple[str, str]] = set()  # (environment, store URL) already found ready in this process


def preflight(environment: str) -> State | None:
    """None when the flow may run; else a Failed state whose message is the one line to act on."""
    url = store_url()
    if (environment, url) in _ready:
        return None
    problem = readiness_problem(environment, store_url=url, load_config=ops_config)
    if problem is None:
        _ready.add((environment, url))
        return None
    get_run_logger().error(problem)
    return Failed(message=problem)
