"""Post-incident action items as records: owner, due date, status, who closed them, when and with what evidence.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "action_items",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("incident_key", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("done_at", _TS, nullable=True),
        sa.Column("done_by", sa.String(200), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["incident_key"], ["incidents.key"], ondelete="CASCADE",
                                name="fk_action_items_incident_key_incidents"),
        sa.CheckConstraint("status IN ('open', 'done')", name="ck_action_items_status"),
        sa.UniqueConstraint("incident_key", "position", name="uq_action_items_incident_key_position"),
    )
    op.create_index("ix_action_items_status_due_on", "action_items", ["status", "due_on"])


def downgrade() -> None:
    op.drop_table("action_items")
