"""Turn the deployment specs into Prefect deployments and serve them from this process."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from typing import Callable

from prefect import serve
from prefect.runner import Runner
from prefect.schedules import Cron

from deployments import DEPLOYMENTS, cron_for, environment_schedules

log = logging.getLogger(__name__)


def runner_deployments(*, environment: str):
    """One deployment per flow, named after the environment (e.g. `daily-checks/devnet`)."""
    deployments = []
    configured = environment_schedules(environment)
    for spec in DEPLOYMENTS:
        cron = cron_for(spec, configured)
        schedules = [Cron(cron, timezone="UTC")] if cron else None
        deployments.append(
            spec.load_flow().to_deployment(
                name=environment,
                schedules=schedules,
                tags=[*spec.tags, environment],
                parameters={"environment": environment, **spec.parameters},
                description=spec.description,
            )
        )
    return deployments


def serve_all(*, environment: str) -> None:
    """Serve every deployment until interrupted; scheduled runs and UI-triggered runs execute here."""
    serve(*runner_deployments(environment=environment), print_starting_message=False)


def serve_until(deployments: list, stop: threading.Event, *, grace_s: float = 3.0,
                on_ready: Callable[[], None] | None = None, on_stopping: Callable[[], None] | None = None) -> None:
    """Serve `deployments` until `stop` is set, then stop the runner (in-flight runs are cancelled) within about
    `grace_s` seconds. `on_ready` is called once every deployment is registered with the API and the runner polls; `on_stopping`
    when `stop` is seen, before the runner stops its in-flight runs. Unlike `prefect.serve`, a stop is not an exception unwinding through the event loop, so it
    prints no CancelledError/KeyboardInterrupt tracebacks; schedules stay active (`vvops up` stops the server
    with the runner, so nothing piles up)."""
    asyncio.run(_serve_until(deployments, stop, grace_s, on_ready, on_stopping))


async def _serve_until(deployments: list, stop: threading.Event, grace_s: float,
                       on_ready: Callable[[], None] | None, on_stopping: Callable[[], None] | None) -> None:
    runner = Runner(pause_on_shutdown=False)
    for deployment in deployments:
        if stop.is_set():
            return
        await runner.aadd_deployment(deployment)
    ours = signal.getsignal(signal.SIGTERM)
    started = asyncio.create_task(runner.start())
    while not stop.is_set() and not started.done():
        await asyncio.sleep(0.2)
        if runner.started and on_ready is not None:
            on_ready()
            on_ready = None
        if runner.started and signal.getsignal(signal.SIGTERM) is not ours:
            # Runner.start() takes SIGTERM for itself (it stops the runner but not what `vvops up` started
            # around it): SIGTERM must take the same path as Ctrl-C
            signal.signal(signal.SIGTERM, ours)
    if started.done():  # the runner ended by itself: surface why
        started.result()
        return
    if on_stopping is not None:
        on_stopping()
    deadline = asyncio.get_running_loop().time() + grace_s   # one budget for the whole stop
    try:
        if runner.started:
            await asyncio.wait_for(runner.astop(), grace_s)
        await asyncio.wait_for(asyncio.shield(started), max(0.1, deadline - asyncio.get_running_loop().time()))
    except (asyncio.TimeoutError, asyncio.CancelledError, RuntimeError) as error:
        log.warning("runner did not stop within %.0f s (%s); cancelling it", grace_s, error)
        started.cancel()
        try:
            await asyncio.wait_for(started, 1)
        except BaseException:  # noqa: BLE001 - shutting down: whatever it raises, we are leaving
            pass
