"""Daily Operations: System Health Checks, Routine Maintenance and Daily Reporting, in the playbook's order."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from prefect import flow, get_run_logger

from flows.daily import infrastructure_checks, protocol_health, routine_maintenance, security_posture
from tasks.alerts import raise_alerts_for_outcomes, send_alert_notifications
from tasks.checklists import checklist_markdown
from tasks.daily_report import gather_report_context, render_daily_report
from tasks.notify import notify_summary, run_url
from tasks.preflight import preflight
from tasks.reports import publish_check_table, publish_markdown
from tasks.store import record_check_run
from vvops.checks import CheckOutcome

SECTIONS = (
    ("protocol", protocol_health),
    ("infrastructure", infrastructure_checks),
    ("security", security_posture),
    ("maintenance", routine_maintenance),
)


def _run_section(area: str, section, environment: str, now: datetime | None) -> list[CheckOutcome]:
    """One playbook section; if the whole section cannot run, that is one `error` outcome, not a crash."""
    try:
        return list(section(environment=environment, now=now))
    except Exception as exc:
        return [CheckOutcome(f"{area}.section", area, "error", f"the {area} checks could not run: {type(exc).__name__}: {exc}",
                             hint="see the sub-flow run's logs")]


@flow(name="daily-checks", log_prints=True)
def daily_checks(environment: str = "devnet", now: datetime | None = None) -> dict:
    """Run every daily check, persist one result per check, alert on failures, report to the UI and Slack.
    `now` (default: the current time) dates the run, its results and metrics (a time-travelled devnet's time)."""
    if (not_ready := preflight(environment)) is not None:
        return not_ready
    logger = get_run_logger()
    started_at = now if now is not None and now.tzinfo else (now.replace(tzinfo=timezone.utc) if now is not None
                                                             else datetime.now(timezone.utc))
    clock = time.monotonic()
    outcomes: list[CheckOutcome] = []
    for area, section in SECTIONS:
        outcomes += _run_section(area, section, environment, started_at if now is not None else None)

    finished_at = started_at + timedelta(seconds=time.monotonic() - clock)
    run_id = record_check_run(flow_name="daily-checks", environment=environment, outcomes=outcomes,
                              started_at=started_at, finished_at=finished_at)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ok", "unknown", "warn", "crit", "error")}
    try:
        alert_messages = raise_alerts_for_outcomes(outcomes, environment)
        delivery = send_alert_notifications(alert_messages, environment)
    except Exception as exc:  # the report must still go out when alerting is unavailable
        logger.error("alerting failed: %s", exc)
        alert_messages, delivery = [], {"sent": [], "unsent": []}

    context = gather_report_context(environment=environment, now=started_at)
    markdown = render_daily_report(environment=environment, started_at=started_at, outcomes=outcomes, counts=counts,
                                   store_run_id=run_id, context=context)
    start_of_day = started_at.replace(hour=0, minute=0, second=0, microsecond=0)
    markdown += "\n" + checklist_markdown(cadence="daily", since=start_of_day)
    publish_markdown(key="daily-report", description=f"Daily checks on {environment}", markdown=markdown)
    publish_check_table(key="daily-checks", outcomes=outcomes, description=f"All daily checks on {environment}")
    failing = [o for o in outcomes if o.status != "ok"]
    try:
        notify_summary(cadence="daily", environment=environment, period=f"{started_at:%Y-%m-%d}", counts=counts,
                       failing=failing, run_link=run_url())
    except Exception as exc:  # Slack trouble delays the summary (outbox); it never fails the checks
        logger.warning("daily summary not queued for Slack: %s", exc)
    return {"environment": environment, "store_run_id": run_id, "counts": counts,
            "alerts": len(alert_messages), "checks": [o.summary() for o in outcomes]}
