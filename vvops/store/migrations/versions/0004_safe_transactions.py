"""Safe multisig: proposals (real SafeTx hashes, Safe nonce) and owners' confirmations.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Create safe_transactions and safe_confirmations."""
    op.create_table(
        "safe_transactions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("safe_address", sa.String(length=42), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("safe_tx_hash", sa.String(length=66), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("proposed_at_block", sa.BigInteger(), nullable=False),
        sa.Column("approval_request_id", sa.BigInteger(), nullable=True),
        sa.Column("service_url", sa.String(length=500), nullable=True),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.Column("executed_tx_hash", sa.String(length=66), nullable=True),
        sa.Column("executed_block", sa.BigInteger(), nullable=True),
        sa.Column("executed_by", sa.String(length=16), nullable=True),
        sa.Column("superseded_by", sa.String(length=66), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('proposed', 'executed', 'failed', 'superseded')",
                           name=op.f("ck_safe_transactions_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safe_transactions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_safe_transactions_idempotency_key")),
        sa.UniqueConstraint("safe_tx_hash", name=op.f("uq_safe_transactions_safe_tx_hash")),
    )
    op.create_index(op.f("ix_safe_transactions_safe_address_chain_id_nonce"), "safe_transactions",
                    ["safe_address", "chain_id", "nonce"], unique=False)
    op.create_index(op.f("ix_safe_transactions_status_updated_at"), "safe_transactions", ["status", "updated_at"],
                    unique=False)
    op.create_table(
        "safe_confirmations",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("safe_tx_id", BIG_ID, nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=True),
        sa.Column("person", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("refusal_reason", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["safe_tx_id"], ["safe_transactions.id"],
                                name=op.f("fk_safe_confirmations_safe_tx_id_safe_transactions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safe_confirmations")),
    )
    op.create_index(op.f("ix_safe_confirmations_safe_tx_id_owner"), "safe_confirmations", ["safe_tx_id", "owner"],
                    unique=False)


def downgrade() -> None:
    """Drop the Safe tables."""
    op.drop_index(op.f("ix_safe_confirmations_safe_tx_id_owner"), table_name="safe_confirmations")
    op.drop_table("safe_confirmations")
    op.drop_index(op.f("ix_safe_transactions_status_updated_at"), table_name="safe_transactions")
    op.drop_index(op.f("ix_safe_transactions_safe_address_chain_id_nonce"), table_name="safe_transactions")
    op.drop_table("safe_transactions")
