"""Protocol Upgrades / Post-upgrade Activities / Stabilization Period: heightened monitoring.

For `upgrades.stabilisation_hours` after a verified rollout (the window `upgrade-rollout` writes to the Prefect
Variable `vv_stabilisation_until`), the protocol-health checks run every
`upgrades.stabilisation_check_every_minutes` instead of once a day: the every-minute ops sweep calls this flow,
which does nothing outside a window or before the next run is due. Each run is stored as a `stabilisation-checks`
check run and its failures go through the alerting framework like the daily checks'.
"""

from __future__ import annotations

from datetime import datetime, timezone

from prefect import flow, get_run_logger

from flows.daily import protocol_health
from tasks.alerts import raise_alerts_for_outcomes, send_alert_notifications
from tasks.runtime import ops_config
from tasks.store import last_check_run_started, record_check_run
from tasks.upgrades import stabilisation_active
from vvops.checks import worst_status
from vvops.procedures.upgrades import stabilisation_check_due

FLOW_NAME = "stabilisation-checks"


@flow(name=FLOW_NAME, log_prints=True)
def stabilisation_checks(environment: str = "devnet") -> dict:
    """Run protocol-health now if a stabilisation window is open and the last run is old enough."""
    now = datetime.now(timezone.utc)
    window = stabilisation_active(environment, now)
    if window is None:
        return {"active": False}
    every = ops_config(environment).procedures.upgrades.stabilisation_check_every_minutes
    last = last_check_run_started(flow_name=FLOW_NAME, environment=environment)
    if not stabilisation_check_due(window=window, last_run_at=last, now=now, every_minutes=every):
        return {"active": True, "ran": False, "until": window["until"], "last_run_at": last.isoformat()}

    outcomes = protocol_health(environment=environment, window_hours=max(every / 60, 1))
    run_id = record_check_run(flow_name=FLOW_NAME, environment=environment, outcomes=outcomes, started_at=now)
    alerts = raise_alerts_for_outcomes(outcomes, environment)
    delivery = send_alert_notifications(alerts, environment)
    status = worst_status([o.status for o in outcomes])
    get_run_logger().info("stabilisation of %s (change %s, until %s): protocol health %s",
                          window.get("contract"), window.get("change_id"), window["until"], status)
    return {"active": True, "ran": True, "until": window["until"], "change_id": window.get("change_id"),
            "check_run_id": run_id, "status": status, "alerts": len(alerts), "notifications": len(delivery["sent"])}
