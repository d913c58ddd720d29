"""Who was told about an incident and when: one row per recipient of each published public statement
or announcement.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "statement_notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("incident_key", sa.String(32), nullable=True),
        sa.Column("statement_kind", sa.String(40), nullable=False),
        sa.Column("statement_sha256", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("contact", sa.String(200), nullable=False),
        sa.Column("contact_kind", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("notified_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["incident_key"], ["incidents.key"], ondelete="CASCADE",
                                name="fk_statement_notifications_incident_key_incidents"),
        sa.CheckConstraint("status IN ('sent', 'failed', 'skipped')", name="ck_statement_notifications_status"),
    )
    op.create_index("ix_statement_notifications_incident_key_notified_at", "statement_notifications",
                    ["incident_key", "notified_at"])


def downgrade() -> None:
    op.drop_table("statement_notifications")
