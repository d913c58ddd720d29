"""Model-level helpers of the notification outbox: idempotent enqueue, leased claims, sent/failed marks."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from vvops.store.db import lock_for_write
from vvops.store.models import NotificationOutbox, OutboxStatus, SlackThread, utcnow

MAX_ERROR_LENGTH = 4000
_sequence_lock = threading.Lock()
_last_sequence = 0


def next_sequence() -> int:
    """A strictly increasing (per process) ordering key based on the wall clock in nanoseconds."""
    global _last_sequence
    with _sequence_lock:
        _last_sequence = max(time.time_ns(), _last_sequence + 1)
        return _last_sequence


def _insert_for(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return pg_insert
    if dialect == "sqlite":
        return sqlite_insert
    raise NotImplementedError(f"outbox enqueue is not implemented for {dialect}")


def enqueue(
    session: Session,
    *,
    idempotency_key: str,
    channel: str,
    kind: str,
    payload: dict[str, Any],
    thread_key: str | None = None,
) -> tuple[NotificationOutbox, bool]:
    """Queue a message once per idempotency key; returns (row, created) and the existing row on a repeat."""
    insert = _insert_for(session)
    stmt = (
        insert(NotificationOutbox)
        .values(
            idempotency_key=idempotency_key,
            sequence=next_sequence(),
            channel=channel,
            thread_key=thread_key,
            kind=kind,
            payload=payload,
            status=OutboxStatus.PENDING.value,
            attempts=0,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=[NotificationOutbox.idempotency_key])
        .returning(NotificationOutbox.id)
    )
    new_id = session.execute(stmt).scalar_one_or_none()
    row = session.scalars(
        select(NotificationOutbox)
        .where(NotificationOutbox.idempotency_key == idempotency_key)
        .execution_options(populate_existing=True)
    ).one()
    return row, new_id is not None


def _claimable(now: datetime) -> Any:
    o = NotificationOutbox
    return or_(
        and_(o.status == OutboxStatus.PENDING.value, or_(o.next_attempt_at.is_(None), o.next_attempt_at <= now)),
        and_(o.status == OutboxStatus.SENDING.value, o.lease_expires_at <= now),
    )


def claim_next(
    session: Session, *, worker_id: str, now: datetime, lease_seconds: float, limit: int = 10
) -> list[NotificationOutbox]:
    """Lease up to `limit` due messages (pending, or sending with an expired lease) to one worker, in sequence order."""
    o = NotificationOutbox
    order = (o.sequence, o.id)
    claim_values = {
        "status": OutboxStatus.SENDING.value,
        "claimed_by": worker_id,
        "claimed_at": now,
        "lease_expires_at": now + timedelta(seconds=lease_seconds),
        "attempts": o.attempts + 1,
    }
    dialect = session.get_bind().dialect.name
    claimed: list[int] = []
    if dialect == "postgresql":
        claimed = list(
            session.scalars(
                select(o.id).where(_claimable(now)).order_by(*order).limit(limit).with_for_update(skip_locked=True)
            )
        )
        if claimed:
            session.execute(
                update(o).where(o.id.in_(claimed)).values(**claim_values).execution_options(synchronize_session=False)
            )
    else:
        lock_for_write(session, o.__tablename__)
        candidates = list(session.scalars(select(o.id).where(_claimable(now)).order_by(*order).limit(limit)))
        for row_id in candidates:
            result = session.execute(
                update(o)
                .where(o.id == row_id, _claimable(now))
                .values(**claim_values)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:
                claimed.append(row_id)
    if not claimed:
        return []
    return list(
        session.scalars(
            select(o).where(o.id.in_(claimed)).order_by(*order).execution_options(populate_existing=True)
        )
    )


def mark_sent(
    session: Session,
    *,
    outbox_id: int,
    worker_id: str,
    now: datetime,
    slack_ts: str | None = None,
    slack_channel_id: str | None = None,
) -> bool:
    """Record a delivery; False when the row is no longer leased to this worker (nothing is changed then)."""
    o = NotificationOutbox
    result = session.execute(
        update(o)
        .where(o.id == outbox_id, o.status == OutboxStatus.SENDING.value, o.claimed_by == worker_id)
        .values(
            status=OutboxStatus.SENT.value,
            sent_at=now,
            slack_ts=slack_ts,
            slack_channel_id=slack_channel_id,
            lease_expires_at=None,
            last_error=None,
        )
        .execution_options(synchronize_session="fetch")
    )
    return result.rowcount == 1


def mark_failed(
    session: Session,
    *,
    outbox_id: int,
    worker_id: str,
    error: str,
    retry_at: datetime | None,
) -> bool:
    """Record a failed attempt: back to pending until `retry_at`, or `failed` for good when retry_at is None."""
    o = NotificationOutbox
    if retry_at is None:
        values: dict[str, Any] = {"status": OutboxStatus.FAILED.value, "next_attempt_at": None}
    else:
        values = {"status": OutboxStatus.PENDING.value, "next_attempt_at": retry_at}
    result = session.execute(
        update(o)
        .where(o.id == outbox_id, o.status == OutboxStatus.SENDING.value, o.claimed_by == worker_id)
        .values(last_error=(error or "")[:MAX_ERROR_LENGTH], lease_expires_at=None, **values)
        .execution_options(synchronize_session="fetch")
    )
    return result.rowcount == 1


# --------------------------------------------------------------------------- threads and ordering (Slack delivery)


def get_thread(session: Session, thread_key: str) -> SlackThread | None:
    """Where the thread `thread_key` lives in Slack (channel id and parent ts), once its first message was sent."""
    return session.scalars(select(SlackThread).where(SlackThread.thread_key == thread_key)).one_or_none()


def record_thread(session: Session, *, thread_key: str, channel: str, ts: str) -> SlackThread:
    """Remember the parent message of a thread (idempotent: the first recorded parent wins)."""
    insert = _insert_for(session)
    session.execute(
        insert(SlackThread)
        .values(thread_key=thread_key, channel=channel, ts=ts, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=[SlackThread.thread_key])
    )
    return session.scalars(
        select(SlackThread).where(SlackThread.thread_key == thread_key).execution_options(populate_existing=True)
    ).one()


def release(session: Session, *, outbox_id: int, worker_id: str, retry_at: datetime | None) -> bool:
    """Hand a claimed row back untouched (not an attempt): pending again from `retry_at`, attempts restored."""
    o = NotificationOutbox
    result = session.execute(
        update(o)
        .where(o.id == outbox_id, o.status == OutboxStatus.SENDING.value, o.claimed_by == worker_id)
        .values(status=OutboxStatus.PENDING.value, next_attempt_at=retry_at, attempts=o.attempts - 1,
                claimed_by=None, claimed_at=None, lease_expires_at=None)
        .execution_options(synchronize_session="fetch")
    )
    return result.rowcount == 1


def predecessor(session: Session, row: NotificationOutbox) -> NotificationOutbox | None:
    """The earliest row queued before `row` in the same channel or thread that is not delivered yet.

    Pending/sending predecessors mean `row` must wait (order per channel and thread); a failed predecessor in
    the same thread means the thread has no parent in Slack. Failed rows of the channel do not block it.
    """
    o = NotificationOutbox
    earlier = or_(o.sequence < row.sequence, and_(o.sequence == row.sequence, o.id < row.id))
    unsent = o.status.in_([OutboxStatus.PENDING.value, OutboxStatus.SENDING.value])
    same = o.channel == row.channel
    if row.thread_key is not None:
        same = or_(same, o.thread_key == row.thread_key)
        blocking = or_(and_(same, unsent), and_(o.thread_key == row.thread_key, o.status == OutboxStatus.FAILED.value))
    else:
        blocking = and_(same, unsent)
    return session.scalars(
        select(o).where(o.id != row.id, earlier, blocking).order_by(o.sequence, o.id).limit(1)
    ).one_or_none()


def next_due_at(session: Session) -> datetime | None:
    """When the next pending row becomes due (None when nothing is pending)."""
    o = NotificationOutbox
    rows = session.execute(
        select(o.next_attempt_at).where(o.status == OutboxStatus.PENDING.value).order_by(o.next_attempt_at.is_not(None), o.next_attempt_at).limit(1)
    ).all()
    if not rows:
        return None
    return rows[0][0] or utcnow()


def known_channel_id(session: Session, channel: str) -> str | None:
    """The Slack channel id a channel name resolved to in an earlier delivery, if any."""
    o = NotificationOutbox
    return session.scalars(
        select(o.slack_channel_id).where(o.channel == channel, o.slack_channel_id.is_not(None)).limit(1)
    ).first()
