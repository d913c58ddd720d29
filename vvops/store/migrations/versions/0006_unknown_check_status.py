"""Check results and runs may be `unknown`: a check with nothing configured to look at says so instead of `ok`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECK = ("check_results", "'ok', 'warn', 'crit', 'error'", "'ok', 'unknown', 'warn', 'crit', 'error'")
_RUN = ("check_runs", "'running', 'ok', 'warn', 'crit', 'error'", "'running', 'ok', 'unknown', 'warn', 'crit', 'error'")


def _swap(table: str, values: str) -> None:
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint("status", type_="check")  # ck_<table>_status by the naming convention
        batch.create_check_constraint("status", f"status IN ({values})")


def upgrade() -> None:
    """Allow `unknown` in check_results.status and check_runs.status."""
    for table, _old, new in (_CHECK, _RUN):
        _swap(table, new)


def downgrade() -> None:
    """Back to ok/warn/crit/error (unknown rows become warn: something to look at)."""
    for table, old, _new in (_CHECK, _RUN):
        op.execute(f"UPDATE {table} SET status = 'warn' WHERE status = 'unknown'")
        _swap(table, old)
