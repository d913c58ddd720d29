"""Incident Management / Incident Response Workflow: detection and triage open a recorded incident."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.reports import publish_markdown
from tasks.runtime import ops_config
from tasks.store import open_incident
from vvops.config import who_is_on_call


@flow(name="incident-response", log_prints=True)
def incident_response(
    title: str,
    severity: str = "P2",
    incident_type: str = "technical",
    opened_by: str = "automation",
    alert: dict[str, Any] | None = None,
    is_drill: bool = False,
    environment: str = "devnet",
) -> dict:
    """Initial Assessment: classify by the severity matrix, name the commander (on-call lead), open the record."""
    from datetime import datetime, timezone

    cfg = ops_config(environment)
    level = cfg.severity(severity)
    policy = cfg.escalation_policy(level.escalation_policy)
    rotation_name = next((t.split(":")[1] for s in policy.steps for t in s.notify if t.startswith("rotation:")), None)
    commander = who_is_on_call(cfg.rotation(rotation_name), datetime.now(timezone.utc)).primary if rotation_name else None
    key = open_incident(title=title, incident_type=incident_type, severity=severity, commander=commander,
                        opened_by=opened_by, is_drill=is_drill, data={"alert": alert or {}})
    publish_markdown(key="incident", description=f"{key} {severity} {title}",
                     markdown=f"# {key}: {title}\n\n| | |\n| --- | --- |\n| severity | {severity} ({level.name}) |\n"
                     f"| type | {incident_type} |\n| commander | {commander or 'unassigned'} |\n| ack SLA | {level.ack_sla_minutes} min |\n"
                     f"| updates every | {level.update_interval_minutes} min |\n| drill | {is_drill} |\n")
    return {"incident": key, "severity": severity, "commander": commander}
