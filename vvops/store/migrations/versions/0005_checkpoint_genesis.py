"""Watcher checkpoints remember the genesis hash of the chain they were taken on, so a new chain with the same
chain id (a restarted devnet, a re-created testnet) starts afresh instead of looking like a deep reorg.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the genesis hash (NULL for existing rows: the watcher adopts the node's genesis on its next step)."""
    with op.batch_alter_table("watcher_checkpoints") as batch:
        batch.add_column(sa.Column("genesis_hash", sa.String(length=66), nullable=True))


def downgrade() -> None:
    """Drop the genesis hash."""
    with op.batch_alter_table("watcher_checkpoints") as batch:
        batch.drop_column("genesis_hash")
