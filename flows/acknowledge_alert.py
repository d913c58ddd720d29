"""Alert Response / Initial triage: acknowledge an alert from the Prefect UI, which stops its escalation.

Who acknowledges is proven like who proposes a procedure (`tasks.approvals.prove_proposer`): an EIP-712 signature
over this run's parameters (`vvops propose acknowledge-alert -p alert=ID --as PERSON` signs and starts it), or the
typed roster name where the environment allows typed names (devnet). A refusal is audited and nothing is acknowledged.
From Slack, the signed button click proves the person instead (vvops.slack_app)."""

from __future__ import annotations

from prefect import flow

from tasks.alerts import acknowledge_alert, send_alert_notifications
from tasks.preflight import preflight

PROCEDURE = "acknowledge_alert"


@flow(name="acknowledge-alert", log_prints=True)
def acknowledge_alert_flow(alert: str, acknowledged_by: str, environment: str = "devnet",
                           proposal_signature: str = "", proposal_expires: int = 0) -> dict:
    """Acknowledge alert `alert` (its id or fingerprint) as a proven roster person; audited, escalation stops."""
    if (not_ready := preflight(environment)) is not None:
        return not_ready
    from tasks.approvals import prove_proposer

    proof = prove_proposer(procedure=PROCEDURE, flow_fn=acknowledge_alert_flow, values=locals(),
                           proposer=acknowledged_by, environment=environment, signature=proposal_signature,
                           expires=proposal_expires, required=True)
    ref: int | str = int(alert) if alert.strip().isdigit() else alert.strip()
    messages = acknowledge_alert(ref, acknowledged_by, "ui", environment)
    delivery = send_alert_notifications(messages, environment)
    return {"alert": alert, "acknowledged_by": acknowledged_by, "proof": proof.get("proof"),
            "notifications": len(delivery["sent"])}
