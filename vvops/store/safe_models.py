"""Safe multisig proposals and owners' confirmations in the ops store (imported by vvops.store.models)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vvops.store.models import Base, BigId, JSONType, _one_of, utcnow


class SafeTxStatus(str, enum.Enum):
    PROPOSED = "proposed"  # waiting for owners' confirmations (or for its execution)
    EXECUTED = "executed"  # ExecutionSuccess on chain (by us or by the owners)
    FAILED = "failed"  # ExecutionFailure: the Safe consumed the nonce but the inner call reverted
    SUPERSEDED = "superseded"  # another transaction used its nonce: it can never execute


class SafeTransaction(Base):
    """A Safe transaction the ops system proposed, keyed like every chain action."""

    __tablename__ = "safe_transactions"
    __table_args__ = (
        _one_of("status", SafeTxStatus),
        Index(None, "safe_address", "chain_id", "nonce"),
        Index(None, "status", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    safe_address: Mapped[str] = mapped_column(String(42))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    nonce: Mapped[int] = mapped_column(BigInteger)
    safe_tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=SafeTxStatus.PROPOSED.value)
    proposed_at_block: Mapped[int] = mapped_column(BigInteger, default=0)
    approval_request_id: Mapped[int | None] = mapped_column(BigInteger)
    service_url: Mapped[str | None] = mapped_column(String(500))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    executed_tx_hash: Mapped[str | None] = mapped_column(String(66))
    executed_block: Mapped[int | None] = mapped_column(BigInteger)
    executed_by: Mapped[str | None] = mapped_column(String(16))  # "ops" (our executor) or "owners"
    superseded_by: Mapped[str | None] = mapped_column(String(66))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    confirmations: Mapped[list[SafeConfirmation]] = relationship(
        back_populates="safe_tx", cascade="all, delete-orphan", passive_deletes=True, order_by="SafeConfirmation.id")


class SafeConfirmation(Base):
    """One owner's signature as received (accepted, or refused with the reason); every one is audited too."""

    __tablename__ = "safe_confirmations"
    __table_args__ = (Index(None, "safe_tx_id", "owner"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    safe_tx_id: Mapped[int] = mapped_column(ForeignKey("safe_transactions.id", ondelete="CASCADE"))
    owner: Mapped[str | None] = mapped_column(String(42))
    person: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # ui | slack | cli | service | api
    accepted: Mapped[bool] = mapped_column(Boolean, default=False)
    refusal_reason: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    safe_tx: Mapped[SafeTransaction] = relationship(back_populates="confirmations")


__all__ = ["SafeTxStatus", "SafeTransaction", "SafeConfirmation"]
