"""Parameter changes and the timelock operations the ops system scheduled (issue 13 item 6).

- `ParameterChange`: one change by its change id (derived from what is changed, so a rerun of the same
  change finds it and resumes instead of scheduling again); its status and when it was executed (the
  cooldown of `procedures.yaml` counts from there).
- `TimelockOperation`: every operation we scheduled, by chain, timelock and operation id; the ops sweep
  compares it with the operations pending on chain (scheduled, neither executed nor cancelled).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vvops.store.models import Base, BigId, utcnow


class ParameterChangeStatus(str, enum.Enum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    EXECUTED = "executed"
    VERIFIED = "verified"
    ROLLED_BACK = "rolled_back"
    REJECTED = "rejected"
    REFUSED = "refused"
    NO_CHANGE = "no_change"


OPEN_STATUSES = (ParameterChangeStatus.PROPOSED.value, ParameterChangeStatus.APPROVED.value,
                 ParameterChangeStatus.SCHEDULED.value, ParameterChangeStatus.EXECUTED.value)
APPLIED_STATUSES = (ParameterChangeStatus.EXECUTED.value, ParameterChangeStatus.VERIFIED.value,
                    ParameterChangeStatus.ROLLED_BACK.value)


class ParameterChange(Base):
    __tablename__ = "parameter_changes"
    __table_args__ = (Index(None, "environment", "contract", "parameter", "executed_at"),)

    change_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    environment: Mapped[str] = mapped_column(String(64))
    contract: Mapped[str] = mapped_column(String(64))
    parameter: Mapped[str] = mapped_column(String(100))
    new_value: Mapped[str] = mapped_column(Text)
    previous_value: Mapped[str | None] = mapped_column(Text)
    proposer: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(24), default=ParameterChangeStatus.PROPOSED.value)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    operation_id: Mapped[str | None] = mapped_column(String(66))
    approvers: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    executed_at: Mapped[datetime | None]


class TimelockOperation(Base):
    __tablename__ = "timelock_operations"
    __table_args__ = (UniqueConstraint("chain_id", "timelock", "operation_id"), Index(None, "status"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    environment: Mapped[str] = mapped_column(String(64))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    timelock: Mapped[str] = mapped_column(String(42))
    operation_id: Mapped[str] = mapped_column(String(66))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(String(42))
    description: Mapped[str] = mapped_column(Text, default="")
    ready_at: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
