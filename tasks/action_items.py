"""Post-incident action items in the store (vvops/procedures/action_items.py): created from the post-incident
report, reminded once a day while overdue (the ops sweep), listed by the reviews."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from prefect import task
from sqlalchemy import select

from tasks.incidents import STORE, _now, add_event, notify_quietly
from tasks.runtime import ops_config, store_engine
from vvops.procedures.action_items import as_dict, default_due, due_reminders, parse_item, record_items
from vvops.store import session_scope
from vvops.store.action_item_models import ActionItem, ActionItemStatus
from vvops.store.models import Incident, NotificationOutbox

REMINDER_CHANNEL = "ops"


@task(name="record-action-items", **STORE)
def record_action_items(*, key: str, environment: str, items: list[str], resolved_by: str | None = None,
                        now: datetime | None = None) -> list[dict[str, Any]]:
    """The report's action items as records (owner from the roster, due date); idempotent per incident."""
    now = _now(now)
    cfg = ops_config(environment)
    roster = [p.id for p in cfg.people]
    with session_scope(store_engine()) as session:
        incident = session.scalar(select(Incident).where(Incident.key == key))
        if incident is None:
            raise KeyError(f"no incident {key}")
        resolved_at = incident.resolved_at or now
        commander = incident.commander
    default_owner = next((p for p in (commander, resolved_by) if p in roster), None) or \
        next((p.id for p in cfg.people_with_role("ops_lead")), roster[0])
    due = default_due(resolved_at, cfg.procedures.incidents.action_item_due_days)
    parsed = [parse_item(line, roster=roster, default_owner=default_owner, default_due=due)
              for line in items if line and line.strip()]
    with session_scope(store_engine(), immediate=True) as session:
        ids = record_items(session, incident_key=key, items=parsed, now=now)
        rows = [as_dict(session.get(ActionItem, i), today=now.date()) for i in ids]
    unknown = sorted({p.owner_unknown for p in parsed if p.owner_unknown})
    if unknown:
        add_event.fn(key=key, kind="status_update", actor="action-items",
                     message=f"action item owner(s) not on the roster: {', '.join('@' + u for u in unknown)}; "
                             f"assigned to {default_owner}", data={"unknown_owners": unknown})
    return rows


@task(name="sweep-action-item-reminders", **STORE)
def sweep_action_item_reminders(*, environment: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """One Slack reminder (ops channel, the owner mentioned) per overdue open item per UTC day, until it is done."""
    now = _now(now).astimezone(timezone.utc)
    cfg = ops_config(environment)
    with session_scope(store_engine()) as session:
        rows = session.scalars(select(ActionItem).where(ActionItem.status == ActionItemStatus.OPEN.value,
                                                        ActionItem.due_on < now.date())).all()
        due = due_reminders(rows, now)
        keys = [d["idempotency_key"] for d in due]
        queued_before = set(session.scalars(select(NotificationOutbox.idempotency_key).where(
            NotificationOutbox.idempotency_key.in_(keys)))) if keys else set()
    due = [d for d in due if d["idempotency_key"] not in queued_before]  # today's reminder is already out
    sent = []
    for item in due:
        try:
            slack_id = cfg.person(item["owner"]).slack_user_id
        except KeyError:
            slack_id = None
        queued = notify_quietly(kind="action_item_reminder", environment=environment, thread_key=None,
                                idempotency_key=item["idempotency_key"], channel_purpose=REMINDER_CHANNEL,
                                payload={"item_id": item["id"], "incident": item["incident"], "title": item["title"],
                                         "owner": item["owner"], "owner_slack_id": slack_id,
                                         "due_on": item["due_on"], "days_overdue": item["days_overdue"]})
        sent.append({**item, "queued": queued})
    return sent
