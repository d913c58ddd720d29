"""Flow-run heartbeats that stop as soon as the run ends (installed by `flows/__init__.py`).

Prefect 3.9's heartbeat thread (`prefect.flow_engine._send_heartbeats`) sleeps in one-second steps, so every flow
and sub-flow waits up to 1 s on exit for it to notice the stop: daily-checks (a flow and four sub-flows) paid
~2-4 s of its 8.6 s on the live server, which is why the issue measured 70 % orchestration. Turning heartbeats
off would hide crashed runs, so this keeps them exactly as Prefect sends them (same `prefect.flow-run.heartbeat`
event, same resource and related resources, same `PREFECT_FLOWS_HEARTBEAT_FREQUENCY` interval, none when the
setting is None) and only waits on an Event instead of sleeping, so the thread ends the moment the run does.

Installed only on the Prefect versions it was checked against (3.9.x) and only when the engine still has the
hook it replaces; anything else keeps Prefect's own.
"""

from __future__ import annotations

import contextvars
import threading
from contextlib import contextmanager
from typing import Any, Iterator

CHECKED_VERSIONS = ("3.9.",)
prefect_original: Any = None   # Prefect's own context manager, kept for benchmarks that compare both


@contextmanager
def send_heartbeats(engine: Any, join_on_exit: bool = True) -> Iterator[None]:
    from prefect import flow_engine

    seconds = engine.heartbeat_seconds
    if seconds is None:
        yield
        return
    seconds = max(seconds, flow_engine.MINIMUM_HEARTBEAT_INTERVAL)
    resource, related = engine._build_heartbeat_event_template()
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            run = engine.flow_run
            if run is not None and run.state is not None and run.state.is_final():
                return
            try:
                engine._emit_flow_run_heartbeat(resource, related)
            except Exception:  # noqa: BLE001 - as Prefect: a failed heartbeat is logged at debug and retried
                engine.logger.debug("Failed to emit heartbeat", exc_info=True)
            stop.wait(seconds)

    # the thread sees the caller's settings context (PREFECT_API_URL), as in Prefect's own
    thread = threading.Thread(target=contextvars.copy_context().run, args=(beat,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        if join_on_exit:
            thread.join(timeout=2)


def install() -> bool:
    """Replace Prefect's heartbeat context manager with `send_heartbeats`; True when installed."""
    import prefect
    from prefect import flow_engine

    global prefect_original
    if not prefect.__version__.startswith(CHECKED_VERSIONS) or not hasattr(flow_engine, "_send_heartbeats"):
        return False
    if flow_engine._send_heartbeats is not send_heartbeats:
        prefect_original = flow_engine._send_heartbeats
        flow_engine._send_heartbeats = send_heartbeats
    return True
