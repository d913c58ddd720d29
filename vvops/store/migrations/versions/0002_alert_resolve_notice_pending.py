"""Alerts: `resolve_notice_pending`, so each alert-service call reads only the resolved alerts still owed a
"resolved" notification instead of every alert resolved in the last week.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the flag; resolved alerts that were ever notified are marked (the service clears the ones not owed)."""
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("resolve_notice_pending", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.create_index("ix_alerts_resolve_notice_pending", ["resolve_notice_pending"])
    op.execute(sa.text("UPDATE alerts SET resolve_notice_pending = true "
                       "WHERE status = 'resolved' AND last_notified_at IS NOT NULL"))


def downgrade() -> None:
    """Drop the flag."""
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_resolve_notice_pending")
        batch.drop_column("resolve_notice_pending")
