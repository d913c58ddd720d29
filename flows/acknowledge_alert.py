"""Alert Response / Initial triage: acknowledge an alert from the Prefect UI, which stops its escalation."""

from __future__ import annotations

from prefect import flow

from tasks.alerts import acknowledge_alert, send_alert_notifications
from tasks.preflight import preflight


@flow(name="acknowledge-alert", log_prints=True)
def acknowledge_alert_flow(alert: str, acknowledged_by: str, environment: str = "devnet") -> dict:
    """Acknowledge alert `alert` (its id or fingerprint) as a roster person; audited, escalation stops."""
    if (not_ready := preflight(environment)) is not None:
        return not_ready
    ref: int | str = int(alert) if alert.strip().isdigit() else alert.strip()
    messages = acknowledge_alert(ref, acknowledged_by, "ui", environment)
    delivery = send_alert_notifications(messages, environment)
    return {"alert": alert, "acknowledged_by": acknowledged_by, "notifications": len(delivery["sent"])}
