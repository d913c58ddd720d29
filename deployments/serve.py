"""Turn the deployment specs into Prefect deployments and serve them from this process."""

from __future__ import annotations

from prefect import serve
from prefect.schedules import Cron

from deployments import DEPLOYMENTS, cron_for, environment_schedules


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
