"""Post-incident action items (playbook: Post-Incident Activities / Process Improvement): each item of a report
becomes a record with an owner from the roster and a due date, stays open until someone closes it with evidence,
and is reminded once a day while overdue.

A report line may name its owner and due date: `Raise the RPC timeout alert to P1 @mei due 2026-12-14`
(`@person` from config/team.yaml, `due YYYY-MM-DD` or `due:YYYY-MM-DD`). Without them the owner is the incident's
commander (else whoever resolved it) and the due date `procedures.incidents.action_item_due_days` after
resolution. An `@name` that is not on the roster is kept in the text and the default owner takes the item (the
report is never lost to a typo); the incident timeline says so.

Plain functions over a SQLAlchemy session; tasks/action_items.py and the CLI bind them to Prefect and argv.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from vvops.store.action_item_models import ActionItem, ActionItemStatus

_OWNER = re.compile(r"(?<!\S)@([A-Za-z0-9_.-]+)")
_DUE = re.compile(r"(?<!\S)due[: ]\s*(\d{4}-\d{2}-\d{2})(?!\S)", re.IGNORECASE)
MAX_TITLE = 2000
MAX_EVIDENCE = 2000


class ActionItemError(ValueError):
    """A request about action items that cannot be done (unknown id, already closed, bad evidence)."""


@dataclass(frozen=True)
class ParsedItem:
    title: str
    owner: str
    due_on: date
    owner_unknown: str | None = None  # an @name that is not on the roster


def parse_item(line: str, *, roster: Iterable[str], default_owner: str, default_due: date) -> ParsedItem:
    """One report line → title, owner and due date (see the module docstring)."""
    people = set(roster)
    text = line.strip()
    owner, unknown = default_owner, None
    found = _OWNER.search(text)
    if found:
        if found.group(1) in people:
            owner = found.group(1)
            text = (text[:found.start()] + text[found.end():]).strip()
        else:
            unknown = found.group(1)
    due = default_due
    when = _DUE.search(text)
    if when:
        try:
            due = date.fromisoformat(when.group(1))
            text = (text[:when.start()] + text[when.end():]).strip()
        except ValueError:
            pass  # not a date: the text stays as written, the default due date applies
    text = re.sub(r"\s{2,}", " ", text).strip(" -–,;") or line.strip()
    return ParsedItem(title=text[:MAX_TITLE], owner=owner, due_on=due, owner_unknown=unknown)


def record_items(session: Session, *, incident_key: str, items: list[ParsedItem], now: datetime) -> list[int]:
    """Store the report's items (position = order in the report); an item already stored at that position is kept
    as it is (a rerun never reopens or reassigns a closed item). Returns the ids in report order."""
    existing = {row.position: row for row in session.scalars(
        select(ActionItem).where(ActionItem.incident_key == incident_key))}
    ids = []
    for position, item in enumerate(items):
        row = existing.get(position)
        if row is None:
            row = ActionItem(incident_key=incident_key, position=position, title=item.title, owner=item.owner,
                             due_on=item.due_on, status=ActionItemStatus.OPEN.value, created_at=now)
            session.add(row)
            session.flush()
        ids.append(row.id)
    return ids


def is_overdue(row: Any, today: date) -> bool:
    return row.status == ActionItemStatus.OPEN.value and row.due_on < today


def list_items(session: Session, *, status: str | None = "open", owner: str | None = None,
               incident_key: str | None = None) -> list[ActionItem]:
    q = select(ActionItem).order_by(ActionItem.due_on, ActionItem.id)
    if status and status != "all":
        q = q.where(ActionItem.status == status)
    if owner:
        q = q.where(ActionItem.owner == owner)
    if incident_key:
        q = q.where(ActionItem.incident_key == incident_key)
    return list(session.scalars(q))


def close_item(session: Session, item_id: int, *, by: str, evidence: str, now: datetime) -> ActionItem:
    """Mark an item done by `by` with its evidence; a closed item stays closed (the first closure counts)."""
    evidence = (evidence or "").strip()
    if not evidence:
        raise ActionItemError("--evidence is required: a link, commit or ticket that shows it is done")
    if len(evidence) > MAX_EVIDENCE:
        raise ActionItemError(f"--evidence is {len(evidence)} characters; at most {MAX_EVIDENCE} (link to the rest)")
    row = session.get(ActionItem, item_id, with_for_update=True)
    if row is None:
        raise ActionItemError(f"no action item {item_id}: `vvops action-items list` shows the ids")
    if row.status == ActionItemStatus.DONE.value:
        raise ActionItemError(f"action item {item_id} was already closed by {row.done_by} on "
                              f"{row.done_at:%Y-%m-%d %H:%M} UTC")
    row.status, row.done_by, row.done_at, row.evidence = ActionItemStatus.DONE.value, by, now, evidence
    return row


def authorize_close(person: Any, *, owner: str, closer_roles: Iterable[str]) -> dict[str, Any]:
    """The owner closes their own item; someone else only with a role that may close others' items
    (procedures.yaml actions.action_item_close_other_roles)."""
    from vvops.identity.actions import ActionRefused

    if person.id == owner:
        return {"owner": owner, "own_item": True}
    allowed = list(closer_roles)
    if not set(allowed) & set(person.roles):
        raise ActionRefused("actions.action_item_close_other_roles", (
            f"{person.id} ({', '.join(person.roles)}) may not close an item owned by {owner} "
            f"(roles allowed to close others' items: {', '.join(allowed) or 'none'})"))
    return {"owner": owner, "own_item": False}


def due_reminders(rows: Iterable[Any], now: datetime) -> list[dict[str, Any]]:
    """One reminder per overdue open item per UTC day: its idempotency key carries the day, so a sweep that runs
    every minute posts it once, and the next day's sweep posts it again until the item is done."""
    today = now.astimezone(timezone.utc).date()
    out = []
    for row in rows:
        if not is_overdue(row, today):
            continue
        out.append({"id": row.id, "incident": row.incident_key, "title": row.title, "owner": row.owner,
                    "due_on": row.due_on.isoformat(), "days_overdue": (today - row.due_on).days,
                    "idempotency_key": f"action-item:{row.id}:reminder:{today.isoformat()}"})
    return out


def as_dict(row: ActionItem, today: date | None = None) -> dict[str, Any]:
    today = today or datetime.now(timezone.utc).date()
    return {"id": row.id, "incident": row.incident_key, "title": row.title, "owner": row.owner,
            "due_on": row.due_on.isoformat(), "status": row.status, "overdue": is_overdue(row, today),
            "done_by": row.done_by, "done_at": row.done_at.isoformat() if row.done_at else None,
            "evidence": row.evidence}


def default_due(resolved_at: datetime, days: int) -> date:
    return (resolved_at.astimezone(timezone.utc) + timedelta(days=days)).date()
