"""The audit chain is keyed: every row's hash becomes HMAC-SHA256 with the audit key (VVOPS_AUDIT_KEY, or the
variable VVOPS_AUDIT_KEY_ENV names; the devnet default key without it). Existing rows are re-chained in id order
with the key of the process that migrates, so run `vvops store migrate` with the production key set.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 14:40:00
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from alembic import op
from sqlalchemy.orm import Session

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rechain(keyed: bool) -> None:
    from sqlalchemy import select

    from vvops.store import audit
    from vvops.store.models import AuditEntry

    session = Session(bind=op.get_bind())
    prev, last_id = audit.GENESIS_HASH, 0
    while True:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.id > last_id).order_by(AuditEntry.id)
                               .limit(1000)).all()
        if not rows:
            break
        for row in rows:
            row.prev_hash = prev
            if keyed:
                row.hash = audit.entry_hash(row)
            else:
                body = {"id": row.id, "at": audit.iso_utc(row.at), "actor": row.actor, "action": row.action,
                        "subject": row.subject, "source": row.source, "details": row.details or {},
                        "prev_hash": prev}
                row.hash = hashlib.sha256(audit.canonical_json(body).encode("utf-8")).hexdigest()
            prev, last_id = row.hash, row.id
        session.flush()
    session.flush()


def upgrade() -> None:
    _rechain(keyed=True)


def downgrade() -> None:
    _rechain(keyed=False)
