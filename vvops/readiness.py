"""Is this process ready to run a flow of an environment? Config valid, store reachable and at the schema this
code expects. Each problem is one line naming the command that fixes it, so a run started from a team's own
Prefect (prefect deploy, a worker) fails in its first second with something to do, not deep in a task.

Migrating is left to a person on purpose: flows of one deployment start in parallel and would race on the DDL,
and upgrading a production store's schema is a step to take with a backup (`vvops store migrate`).
"""

from __future__ import annotations

from collections.abc import Callable

from vvops.config import ConfigError
from vvops.store.db import StoreError, current_revision, head_revision, known_revisions, ping, redact_url


def config_problem(environment: str, load: Callable[[str], object]) -> str | None:
    """One line when config/ is not valid for the environment (the first problem and how many there are)."""
    try:
        load(environment)
    except ConfigError as exc:
        problems = [str(p) for p in exc.problems] or [str(exc)]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return f"config/ is not valid for {environment}: {problems[0]}{more}: run `vvops config check -e {environment}`"
    return None


def store_problem(url: str) -> str | None:
    """One line when the store cannot be reached or is not at the schema head this code was written for."""
    where = redact_url(url)
    try:
        ping(url)
        current = current_revision(url)
    except StoreError as exc:
        return f"ops store {where} is not reachable: {exc}: check VVOPS_STORE_URL or the vv-store block"
    head = head_revision()
    if current == head:
        return None
    if current is None:
        return f"ops store {where} was never migrated (this code needs revision {head}): run `vvops store migrate`"
    if current in known_revisions():
        return f"ops store {where} is at revision {current}, this code needs {head}: run `vvops store migrate`"
    return (f"ops store {where} is at revision {current}, which this code does not know (newer code migrated it): "
            f"deploy the same version of vvops to every worker")


def readiness_problem(environment: str, *, store_url: str, load_config: Callable[[str], object]) -> str | None:
    """The first reason a flow of `environment` cannot run here, or None when it can."""
    return config_problem(environment, load_config) or store_problem(store_url)
