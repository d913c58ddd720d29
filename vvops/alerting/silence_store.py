"""Ad-hoc silences kept in the ops store, so every process (watcher, flows, sweeps) sees the same ones.

    spec = add_silence(session, matchers=['alertname="rpc_down"', 'chain="mainnet"'], starts_at=now,
                       ends_at=now + timedelta(hours=2), created_by="mei", reason="provider migration")
    expire_silence(session, spec.id, by="mei", now=now)       # lift it early
    active_stored_silences(session, now)                       # what AlertService mutes with, on every call

Each add and expiry is audited. Config silences (alerting.yaml) still apply on top.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from vvops.config.alerting_schema import SilenceSpec
from vvops.store import append_audit
from vvops.store.models import SilenceRecord


class SilenceError(ValueError):
    """A silence that cannot be created or expired; the message says why and what to do."""


def _spec(row: SilenceRecord) -> SilenceSpec:
    return SilenceSpec.model_validate({"id": row.id, "matchers": list(row.matchers), "starts_at": row.starts_at,
                                       "ends_at": row.ends_at, "created_by": row.created_by, "reason": row.reason})


def add_silence(session: Session, *, matchers: list[str], starts_at: datetime, ends_at: datetime, created_by: str,
                reason: str, proof: dict | None = None) -> SilenceSpec:
    """Validate and store a silence (audited); raises SilenceError naming the bad matcher or time."""
    silence_id = f"sil-{uuid.uuid4().hex[:8]}"
    try:
        spec = SilenceSpec.model_validate({"id": silence_id, "matchers": matchers, "starts_at": starts_at,
                                           "ends_at": ends_at, "created_by": created_by, "reason": reason})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'silence'}: {e['msg']}" for e in error.errors())
        raise SilenceError(problems) from None
    if not reason.strip():
        raise SilenceError("reason: say why (it is shown on every muted alert and in the audit log)")
    session.add(SilenceRecord(id=silence_id, matchers=[str(m) for m in matchers], starts_at=starts_at,
                              ends_at=ends_at, created_by=created_by, reason=reason))
    append_audit(session, actor=created_by, action="silence.created", subject=f"silence:{silence_id}", source="cli",
                 details={"matchers": list(matchers), "starts_at": starts_at.isoformat(),
                          "ends_at": ends_at.isoformat(), "reason": reason, **(proof or {})})
    return spec


def expire_silence(session: Session, silence_id: str, *, by: str, now: datetime) -> SilenceRecord:
    """End a silence now (audited); its alerts notify again on the next alert-service call."""
    row = session.get(SilenceRecord, silence_id)
    if row is None:
        raise SilenceError(f"no silence {silence_id!r}: `vvops silence list` shows the ids")
    if row.expired_at is not None or row.ends_at <= now:
        raise SilenceError(f"silence {silence_id} has already ended")
    row.expired_at, row.expired_by = max(now, row.starts_at), by
    append_audit(session, actor=by, action="silence.expired", subject=f"silence:{silence_id}", source="cli",
                 details={"matchers": list(row.matchers)})
    return row


def active_stored_silences(session: Session, now: datetime) -> list[SilenceSpec]:
    """Silences in force at `now` (started, not ended, not expired)."""
    rows = session.scalars(select(SilenceRecord).where(SilenceRecord.starts_at <= now, SilenceRecord.ends_at > now,
                                                       SilenceRecord.expired_at.is_(None)))
    return [_spec(row) for row in rows]


def list_silences(session: Session, now: datetime, *, include_ended: bool = False) -> list[SilenceRecord]:
    """Current and future silences (and, with include_ended, the ended ones), newest first."""
    query = select(SilenceRecord).order_by(SilenceRecord.starts_at.desc())
    if not include_ended:
        query = query.where(SilenceRecord.ends_at > now, or_(SilenceRecord.expired_at.is_(None),
                                                             SilenceRecord.expired_at > now))
    return list(session.scalars(query))
