"""Alerting tasks: check outcomes → alerts (rules, routing, dedup, silences, escalation) → notifications.

The decisions are made by `vvops.alerting.AlertService` (plain Python, store-backed); these tasks only bind it
to the run's config and store and hand the resulting notifications to Slack delivery (`tasks.notify.notify`).
Every notification is a plain dict `{kind, channel_purpose, payload, thread_key, idempotency_key}`:
kinds `alert.firing` / `alert.repeat` / `alert.resolved` (one per route group), `alert.acknowledged`,
and `alert.page` (one per escalation step; `payload.targets` are person ids).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

from prefect import task
from prefect.cache_policies import NONE as NO_CACHE
from prefect.logging import get_run_logger

from tasks.policies import STORE_RETRIES as BASE_STORE_RETRIES
from tasks.runtime import ops_config, store_engine
from vvops.alerting import AlertService
from vvops.checks import CheckOutcome

STORE_RETRIES = {**BASE_STORE_RETRIES, "cache_policy": NO_CACHE}


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(timezone.utc)


def _service(environment: str) -> AlertService:
    return AlertService(store_engine(), ops_config(environment))


@task(name="raise-alerts", **STORE_RETRIES)
def raise_alerts_for_outcomes(outcomes: Iterable[CheckOutcome], environment: str,
                              now: datetime | None = None) -> list[dict[str, Any]]:
    """crit/warn outcomes fire alerts (per alerting.yaml rules), `ok` ones resolve them; returns the
    notifications due now (group notifications and first pages)."""
    msgs = _service(environment).process_outcomes(list(outcomes), environment, _now(now))
    get_run_logger().info("alerting: %d notification(s) from %d outcome(s)", len(msgs), len(list(outcomes)))
    return msgs


@task(name="run-due-escalations", **STORE_RETRIES)
def run_due_escalations(environment: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """Pages due since the last sweep (exactly once), repeats, delayed group notifications, expired silences."""
    return _service(environment).due_escalations(_now(now))


@task(name="acknowledge-alert", **STORE_RETRIES)
def acknowledge_alert(ref: int | str, by: str, source: str, environment: str,
                      now: datetime | None = None) -> list[dict[str, Any]]:
    """Acknowledge an alert (id or fingerprint) for a roster person from `source` (slack/ui); audited."""
    return _service(environment).acknowledge(ref, by=by, source=source, now=_now(now))


def page_messages(msg: dict[str, Any], environment: str) -> list[dict[str, Any]]:
    """An `alert.page` as one `escalation_page` Slack message per target person (with their Slack mention)."""
    cfg = ops_config(environment)
    p = msg["payload"]
    out = []
    for person_id in p.get("targets") or []:
        try:
            person = cfg.person(person_id)
            name, slack_id = person.name, person.slack_user_id
        except KeyError:
            name, slack_id = person_id, None
        out.append({
            "kind": "escalation_page", "channel_purpose": msg["channel_purpose"], "thread_key": msg.get("thread_key"),
            "idempotency_key": f"{msg['idempotency_key']}:{person_id}",
            "payload": {"subject": p["summary"], "severity": p["severity"], "target_name": name,
                        "target_slack_id": slack_id, "step": p["step"] + 1,
                        "reason": "first page" if p["step"] == 0 and p["cycle"] == 0 else "not acknowledged",
                        "ack_hint": f"acknowledge alert {p['alert_id']} in Slack or the Prefect UI",
                        "alert_id": p["alert_id"]},
        })
    return out


def send_alert_notifications(messages: list[dict[str, Any]], environment: str) -> dict[str, Any]:
    """Deliver what Slack delivery can render (pages → `escalation_page`); return the rest unsent.

    Call inside a flow. Group notifications (`alert.firing`/`repeat`/`resolved`/`acknowledged`) need a
    message kind in vvops.notify.messages; until one exists they are returned under "unsent"."""
    try:
        from tasks.notify import notify
        from vvops.notify.messages import KINDS
    except ImportError:  # Slack delivery not there: everything goes back to the caller
        return {"sent": [], "unsent": list(messages)}
    sent, unsent = [], []
    for msg in messages:
        parts = page_messages(msg, environment) if msg["kind"] == "alert.page" else [msg]
        for part in parts:
            if part["kind"] in KINDS:
                sent.append(notify(kind=part["kind"], channel_purpose=part["channel_purpose"], payload=part["payload"],
                                   idempotency_key=part["idempotency_key"], thread_key=part.get("thread_key"),
                                   environment=environment))
            else:
                unsent.append(part)
    return {"sent": sent, "unsent": unsent}
