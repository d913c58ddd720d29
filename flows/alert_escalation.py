"""Alert escalation sweep (scheduled every minute): pages due since the last sweep, each exactly once;
repeat and delayed group notifications; silences and maintenance windows that ended release their alerts.

Give `now` to replay a sweep at a chosen time (tests); by default it is the current time."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger

from tasks.alerts import run_due_escalations, send_alert_notifications


@flow(name="alert-escalation-sweep", log_prints=True)
def alert_escalation_sweep(environment: str = "devnet", now: datetime | None = None) -> dict:
    messages = run_due_escalations(environment, now)
    delivery = send_alert_notifications(messages, environment)
    counts = {"pages": sum(m["kind"] == "alert.page" for m in messages),
              "notifications": sum(m["kind"] != "alert.page" for m in messages),
              "sent": len(delivery["sent"]), "unsent": len(delivery["unsent"])}
    get_run_logger().info("alert sweep: %s", counts)
    return {**counts, "messages": messages, "unsent": delivery["unsent"]}
