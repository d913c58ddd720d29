"""Prefect automations that turn the watcher's alert events into procedure runs (created by `vvops up`).

    ensure_automations("devnet")   # idempotent: replaces the automations of that name

- `vv-alert-incident-response-<env>`: a `vv.alert.p0` or `vv.alert.p1` event of the environment's chain
  (`vv.chain` = environment) runs the `incident-response/<env>` deployment, once per event, with
  title, severity, incident_type, opened_by="watcher", environment and `alert` = the event payload
  (the watcher alert: rule, severity, chain id, block number/hash, tx hash, contract, labels, annotations,
  fingerprint), rendered by the server from Jinja templates.
- P2 and P3 alerts start nothing: the watcher writes every alert through the alerting framework
  (`vvops.alerting.service.AlertService.process_firing`), whose routes in config/alerting.yaml post them to
  Slack (group notifications, no page for P2/P3). That is the "Slack only" path; no automation is created for
  it, so a P2 can never start a procedure by accident.

- `vv-reschedule-crashed-<env>`: a cadence run (tag `cadence`, e.g. daily-checks) of the environment that
  ends Crashed — its worker died — is set back to Scheduled, so another worker picks it up. Cadence runs only
  read and report; procedures are not rescheduled by themselves (their exactly-once keys make a manual rerun
  safe, but whether to rerun a change is a person's decision).

The flows do not have to be deployed by the time an event arrives for the event to be recorded, but the
automation needs the deployment's id: call this after the deployments are applied/served.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

INCIDENT_DEPLOYMENT = "incident-response"
INCIDENT_SEVERITIES = ("p0", "p1")


def automation_name(environment: str) -> str:
    return f"vv-alert-incident-response-{environment}"


def incident_parameters(environment: str) -> dict[str, Any]:
    """The incident-response parameters as Jinja templates over the triggering event."""
    return {
        "title": "{{ event.resource['vv.summary'] }}",
        "severity": "{{ event.resource['vv.severity'] }}",
        "incident_type": "{{ event.resource['vv.incident_type'] }}",
        "opened_by": "watcher",
        "environment": environment,
        "alert": "{{ event.payload }}",
    }


def build_automation(environment: str, deployment_id: Any) -> Any:
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=automation_name(environment),
        description=(f"A P0/P1 watcher alert on {environment} starts incident-response/{environment} with the alert "
                     "as parameters. P2/P3 alerts go to Slack through the alerting routes only."),
        enabled=True,
        trigger=EventTrigger(
            expect={f"vv.alert.{s}" for s in INCIDENT_SEVERITIES},
            match={"prefect.resource.id": "vv.alert.*", "vv.chain": environment},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[RunDeployment(source="selected", deployment_id=deployment_id,
                               parameters=incident_parameters(environment))],
    )


def reschedule_crashed_name(environment: str) -> str:
    return f"vv-reschedule-crashed-{environment}"


def build_reschedule_crashed(environment: str) -> Any:
    """Crashed cadence runs of the environment go back to Scheduled (worker recovery)."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=reschedule_crashed_name(environment),
        description=f"A crashed cadence run on {environment} (its worker died) is scheduled again.",
        enabled=True,
        trigger=EventTrigger(
            expect={"prefect.flow-run.Crashed"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=[{"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.cadence"},
                           {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{environment}"}],
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[ChangeFlowRunState(state=StateType.SCHEDULED, message="rescheduled: its worker crashed")],
    )


def ensure_automations(environment: str, *, client: Any = None) -> list[str]:
    """Create (or replace) the environment's alert automations; returns their ids. Needs the
    `incident-response/<environment>` deployment to exist (LookupError otherwise)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    own = client is None
    if own:
        client = get_client(sync_client=True)
        client.__enter__()
    try:
        try:
            deployment = client.read_deployment_by_name(f"{INCIDENT_DEPLOYMENT}/{environment}")
        except ObjectNotFound:
            raise LookupError(f"deployment {INCIDENT_DEPLOYMENT}/{environment} does not exist yet: "
                              "apply or serve the deployments first") from None
        ids = []
        for automation in (build_automation(environment, deployment.id), build_reschedule_crashed(environment)):
            for existing in client.read_automations_by_name(automation.name):
                client.delete_automation(existing.id)
            ids.append(str(client.create_automation(automation)))
        return ids
    finally:
        if own:
            client.__exit__(None, None, None)
