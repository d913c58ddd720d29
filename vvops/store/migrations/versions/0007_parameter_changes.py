"""Parameter changes by change id (a rerun resumes) and the timelock operations we scheduled (the ops sweep
compares them with the chain).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 14:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "parameter_changes",
        sa.Column("change_id", sa.String(100), primary_key=True),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("contract", sa.String(64), nullable=False),
        sa.Column("parameter", sa.String(100), nullable=False),
        sa.Column("new_value", sa.Text(), nullable=False),
        sa.Column("previous_value", sa.Text(), nullable=True),
        sa.Column("proposer", sa.String(200), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.Column("operation_id", sa.String(66), nullable=True),
        sa.Column("approvers", sa.String(500), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("executed_at", _TS, nullable=True),
    )
    op.create_index("ix_parameter_changes_environment_contract_parameter_executed_at", "parameter_changes",
                    ["environment", "contract", "parameter", "executed_at"])
    op.create_table(
        "timelock_operations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("timelock", sa.String(42), nullable=False),
        sa.Column("operation_id", sa.String(66), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("target", sa.String(42), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("ready_at", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("chain_id", "timelock", "operation_id",
                            name="uq_timelock_operations_chain_id_timelock_operation_id"),
    )
    op.create_index("ix_timelock_operations_status", "timelock_operations", ["status"])


def downgrade() -> None:
    op.drop_table("timelock_operations")
    op.drop_table("parameter_changes")
