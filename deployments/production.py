"""The production layout: deployments on a process work pool served by workers, Prefect on PostgreSQL."""

from __future__ import annotations

import contextlib
import io

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron

from deployments import DEPLOYMENTS, cron_for, environment_schedules
from deployments.prefect_yaml import WORK_POOL
from vvops.paths import REPO_ROOT


def ensure_work_pool(name: str = WORK_POOL) -> bool:
    """Create the process work pool unless it exists; True when it was created."""
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process",
                                                   description="VeritasVault Ops flows, run by `prefect worker` processes"))
            return True


def deploy_to_work_pool(*, environment: str, work_pool: str = WORK_POOL) -> list[str]:
    """Register every deployment on the work pool, code pulled from this checkout; returns their names."""
    names = []
    configured = environment_schedules(environment)
    for spec in DEPLOYMENTS:
        cron = cron_for(spec, configured)
        flow = Flow.from_source(source=str(REPO_ROOT), entrypoint=spec.entrypoint)
        with contextlib.redirect_stdout(io.StringIO()):  # deploy() prints a table per deployment
            flow.deploy(
                name=environment,
                work_pool_name=work_pool,
                schedules=[Cron(cron, timezone="UTC")] if cron else None,
                tags=[*spec.tags, environment],
                parameters={"environment": environment, **spec.parameters},
                description=spec.description,
                build=False,
                push=False,
                print_next_steps=False,
                ignore_warnings=True,
            )
        names.append(f"{spec.flow_name}/{environment}")
    return names
