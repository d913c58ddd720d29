"""Every deployment the system serves: which flow, its schedule, tags and default parameters."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

DAILY_CRON = "0 6 * * *"
WEEKLY_CRON = "0 7 * * 1"
MONTHLY_CRON = "0 8 1 * *"
EVERY_MINUTE_CRON = "* * * * *"


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment: a flow, where it lives, and when it runs by itself (None: on demand only)."""

    flow_name: str
    entrypoint: str
    description: str
    cron: str | None = None
    tags: tuple[str, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def module(self) -> str:
        return self.entrypoint.split(":")[0].removesuffix(".py").replace("/", ".")

    @property
    def function(self) -> str:
        return self.entrypoint.split(":")[1]

    def load_flow(self):
        """Import the flow object this spec points at."""
        return getattr(importlib.import_module(self.module), self.function)


DEPLOYMENTS: tuple[DeploymentSpec, ...] = (
    DeploymentSpec(
        "daily-checks", "flows/daily_checks.py:daily_checks",
        "Daily Operations: protocol health, infrastructure, security posture, maintenance, daily report.",
        cron=DAILY_CRON, tags=("cadence", "daily"),
    ),
    DeploymentSpec(
        "weekly-review", "flows/weekly_review.py:weekly_review",
        "Weekly Activities: capacity planning, protocol assessment, weekly operations review.",
        cron=WEEKLY_CRON, tags=("cadence", "weekly"),
    ),
    DeploymentSpec(
        "monthly-review", "flows/monthly_review.py:monthly_review",
        "Monthly Activities: security, performance and compliance reviews, governance participation.",
        cron=MONTHLY_CRON, tags=("cadence", "monthly"),
    ),
    DeploymentSpec(
        "parameter-change", "flows/parameter_change.py:parameter_change",
        "Parameter Change Process: validate, analyse impact, approve, queue on the timelock, execute, verify.",
        tags=("procedure", "governance"),
    ),
    DeploymentSpec(
        "upgrade-rollout", "flows/upgrade_rollout.py:upgrade_rollout",
        "Protocol Upgrades: pre-deployment checklist, go/no-go, rehearsal, staged rollout, verification.",
        tags=("procedure", "governance"),
    ),
    DeploymentSpec(
        "incident-response", "flows/incident_response.py:incident_response",
        "Incident Response Workflow: triage, containment, evidence, resolution, post-incident report.",
        tags=("procedure", "incident"),
    ),
    DeploymentSpec(
        "emergency-pause", "flows/emergency_pause.py:emergency_pause",
        "Contract Vulnerability Response: the guardian pauses the vault after the required approval.",
        tags=("procedure", "incident"),
    ),
    DeploymentSpec(
        "unpause", "flows/unpause.py:unpause",
        "Recovery after an emergency pause: two leads approve, the timelock (owner) unpauses, verified on chain.",
        tags=("procedure", "incident"),
    ),
    DeploymentSpec(
        "public-statement", "flows/public_statement.py:public_statement",
        "Crisis Communication: draft, edit, approve and publish a public statement about an incident.",
        tags=("procedure", "communication"),
    ),
    DeploymentSpec(
        "announcement", "flows/announcement.py:announcement",
        "External Communication: approve and send an announcement (maintenance, upgrade, API change, ...) to the "
        "partner, exchange and community lists that subscribe to its topic.",
        tags=("procedure", "communication"),
    ),
    DeploymentSpec(
        "dr-drill", "flows/dr_drill.py:dr_drill",
        "Disaster Recovery / Recovery Testing: back up, restore, validate, measure RTO and RPO.",
        tags=("procedure", "resilience"),
    ),
    DeploymentSpec(
        "acknowledge-alert", "flows/acknowledge_alert.py:acknowledge_alert_flow",
        "Alert Response: acknowledge an alert (id or fingerprint) as a roster person; stops its escalation.",
        tags=("procedure", "alerting"),
    ),
    DeploymentSpec(
        "ops-sweep", "flows/ops_sweep.py:ops_sweep",
        "Escalation pathways: deliver queued Slack messages, page unacknowledged alerts, escalate unanswered approvals.",
        cron=EVERY_MINUTE_CRON, tags=("cadence", "sweep"),
    ),
)


def cron_for(spec: DeploymentSpec, schedules: dict[str, str | None]) -> str | None:
    """The flow's schedule in an environment: the environment's `schedules` entry (None: on demand only)
    when it names this flow, else the spec's default."""
    return schedules[spec.flow_name] if spec.flow_name in schedules else spec.cron


def unknown_schedule_names(schedules: dict[str, str | None]) -> list[str]:
    """Names in an environment's `schedules` that are no deployment's flow (a typo would be ignored silently)."""
    names = {spec.flow_name for spec in DEPLOYMENTS}
    return sorted(set(schedules) - names)


def environment_schedules(environment: str) -> dict[str, str | None]:
    """The `schedules` of an environment in config/environments.yaml, its flow names checked."""
    from vvops.config import load_environments

    schedules = dict(load_environments().environments[environment].schedules)
    unknown = unknown_schedule_names(schedules)
    if unknown:
        known = ", ".join(spec.flow_name for spec in DEPLOYMENTS)
        raise ValueError(f"environments.yaml: environments.{environment}.schedules: no deployment named "
                         f"{', '.join(unknown)} (choose from {known})")
    return schedules


def spec_for(flow_name: str) -> DeploymentSpec:
    """The spec of a flow by its name, with a clear error listing the names that exist."""
    for spec in DEPLOYMENTS:
        if spec.flow_name == flow_name:
            return spec
    names = ", ".join(spec.flow_name for spec in DEPLOYMENTS)
    raise KeyError(f"unknown flow {flow_name!r}: choose one of {names}")
