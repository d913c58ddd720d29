"""Communication Protocols / escalation pathways, every minute: deliver queued Slack messages, page the next
escalation step of unacknowledged alerts, escalate approvals nobody answered, remind incident commanders of
status updates that are due, remind owners of overdue post-incident action items (once a day each, until done),
regenerate the public status page, compare the timelock operations pending on chain
with the ones we scheduled (alert on any we did not schedule or lost track of), run the protocol-health checks every
few minutes while an upgrade's stabilisation window is open (`flows/stabilisation_checks.py`), and publish the audit
log's head when it changed (`tasks/audit_anchor.py`: anchor file + audit channel), last, so it covers what the other
sweeps wrote. It also probes every RPC URL and HTTP endpoint once (`probe_up`/`probe_latency_ms`: the monthly
availability per endpoint) and announces the on-call hand-off when a rotation's shift changes.

`now` (default: the current time) dates the probes and the hand-off; tests pass a time-travelled chain's time.

One scheduled flow runs the sweeps so the machine starts one flow-run process a minute, not three.
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger

from flows.alert_escalation import alert_escalation_sweep
from flows.approval_sweep import approval_escalation_sweep
from flows.incident_response import incident_reminder_sweep
from flows.stabilisation_checks import stabilisation_checks
from tasks.action_items import sweep_action_item_reminders
from tasks.audit_anchor import publish_audit_anchor
from tasks.notify import slack_outbox_drain
from tasks.oncall_handoff import oncall_handoff_sweep
from tasks.preflight import preflight
from tasks.probes import probe_endpoints
from tasks.status_page import publish_status_page
from tasks.timelock_watch import reconcile_timelock


@flow(name="ops-sweep", log_prints=True)
def ops_sweep(environment: str = "devnet", now: datetime | None = None) -> dict:
    """Run each sweep; one failing sweep is reported and never stops the others."""
    if (not_ready := preflight(environment)) is not None:
        return not_ready
    logger = get_run_logger()
    results: dict = {}
    sweeps = (
        ("alerts", lambda: alert_escalation_sweep(environment=environment)),
        ("approvals", lambda: approval_escalation_sweep()),
        ("incident_reminders", lambda: {"reminders": len(incident_reminder_sweep(environment=environment))}),
        ("action_item_reminders", lambda: {"reminders": len(sweep_action_item_reminders(environment=environment))}),
        ("stabilisation", lambda: stabilisation_checks(environment=environment)),
        ("timelock", lambda: reconcile_timelock(environment=environment)),
        ("probes", lambda: probe_endpoints(environment=environment, now=now)),
        ("oncall_handoff", lambda: {"handoffs": len(oncall_handoff_sweep(environment=environment, now=now))}),
        ("slack_outbox", lambda: slack_outbox_drain(environment=environment)),
        ("status_page", lambda: publish_status_page(environment)),
        ("audit_anchor", lambda: publish_audit_anchor(environment=environment)),
    )
    for name, sweep in sweeps:
        try:
            result = sweep()
            results[name] = {k: v for k, v in result.items() if k not in ("messages", "unsent")} if isinstance(result, dict) else result
        except Exception as exc:
            logger.error("%s sweep failed: %s", name, exc)
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return results
