"""SQLAlchemy 2 typed models for the ops store (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import enum
import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite hands back naive values; they are UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError("naive datetime given to the store: pass a timezone-aware (UTC) datetime")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


JSONType = JSON().with_variant(JSONB(), "postgresql")
# Autoincrementing 64-bit ids; SQLite only auto-assigns rowids for a column typed plain INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class CheckStatus(str, enum.Enum):
    OK = "ok"
    UNKNOWN = "unknown"  # nothing configured to check
    WARN = "warn"
    CRIT = "crit"
    ERROR = "error"


class RunStatus(str, enum.Enum):
    RUNNING = "running"
    OK = "ok"
    UNKNOWN = "unknown"
    WARN = "warn"
    CRIT = "crit"
    ERROR = "error"


class Severity(str, enum.Enum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class AlertStatus(str, enum.Enum):
    FIRING = "firing"
    RESOLVED = "resolved"
    SILENCED = "silenced"
    ACKNOWLEDGED = "acknowledged"


class IncidentType(str, enum.Enum):
    TECHNICAL = "technical"
    SECURITY = "security"
    OPERATIONAL = "operational"
    EXTERNAL = "external"


class IncidentStatus(str, enum.Enum):
    OPEN = "open"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Risk(str, enum.Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class ApprovalStatus(str, enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    ESCALATED = "escalated"


class Decision(str, enum.Enum):
    APPROVE = "approve"
    REJECT = "reject"


class DecisionSource(str, enum.Enum):
    UI = "ui"
    SLACK = "slack"
    API = "api"


class OutboxStatus(str, enum.Enum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class ChainActionStatus(str, enum.Enum):
    PENDING = "pending"
    BROADCAST = "broadcast"
    MINED = "mined"
    FAILED = "failed"
    REPLACED = "replaced"


def _one_of(column: str, values: type[enum.Enum], name: str | None = None) -> CheckConstraint:
    """A CHECK constraint `column IN (...)` named `ck_<table>_<name or column>` by the naming convention."""
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name or column)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


# --------------------------------------------------------------------------- checks


class CheckRun(Base):
    """One execution of a cadence flow."""

    __tablename__ = "check_runs"
    __table_args__ = (
        _one_of("status", RunStatus),
        Index(None, "flow_name", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    flow_name: Mapped[str] = mapped_column(String(200))
    flow_run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    environment: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING.value)

    results: Mapped[list[CheckResult]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True, order_by="CheckResult.id"
    )


class CheckResult(Base):
    """The outcome of one check in one run (exactly one row per check per run)."""

    __tablename__ = "check_results"
    __table_args__ = (
        UniqueConstraint("run_id", "check_id"),
        _one_of("status", CheckStatus),
        Index(None, "check_id", "created_at"),
        Index(None, "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("check_runs.id", ondelete="CASCADE"))
    check_id: Mapped[str] = mapped_column(String(200))
    area: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[Any | None] = mapped_column(JSONType)
    message: Mapped[str] = mapped_column(Text, default="")
    hint: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    served_by: Mapped[str | None] = mapped_column(String(200))
    duration_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    run: Mapped[CheckRun] = relationship(back_populates="results")


class Metric(Base):
    """One point of a time series; `labels_key` is the canonical text of `labels` (see make_labels_key) for indexing."""

    __tablename__ = "metrics"
    __table_args__ = (
        Index(None, "name", "ts"),
        Index(None, "name", "labels_key", "ts"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    labels: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    labels_key: Mapped[str] = mapped_column(String(1000), default="")
    ts: Mapped[datetime]
    value: Mapped[float] = mapped_column(Float)

    @staticmethod
    def make_labels_key(labels: dict[str, Any] | None) -> str:
        """The canonical text form of a label set (compact JSON with sorted keys), unambiguous for equality lookups."""
        return json.dumps(labels or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


# --------------------------------------------------------------------------- alerts and incidents


class Incident(Base):
    """An incident (real or drill) with its lifecycle timestamps and Slack thread."""

    __tablename__ = "incidents"
    __table_args__ = (
        _one_of("type", IncidentType),
        _one_of("severity", Severity),
        _one_of("status", IncidentStatus),
        Index(None, "status", "opened_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    type: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(16), default=IncidentStatus.OPEN.value)
    commander: Mapped[str | None] = mapped_column(String(200))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    mitigated_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    is_drill: Mapped[bool] = mapped_column(Boolean, default=False)
    slack_channel: Mapped[str | None] = mapped_column(String(100))
    slack_thread_ts: Mapped[str | None] = mapped_column(String(32))
    summary: Mapped[str | None] = mapped_column(Text)
    root_cause: Mapped[str | None] = mapped_column(Text)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    events: Mapped[list[IncidentEvent]] = relationship(
        back_populates="incident",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="(IncidentEvent.at, IncidentEvent.id)",
    )
    alerts: Mapped[list[Alert]] = relationship(back_populates="incident")


class IncidentEvent(Base):
    """One entry of an incident's timeline."""

    __tablename__ = "incident_events"
    __table_args__ = (Index(None, "incident_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(200), default="system")
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    incident: Mapped[Incident] = relationship(back_populates="events")


class Alert(Base):
    """An alert instance; at most one non-resolved row per fingerprint."""

    __tablename__ = "alerts"
    __table_args__ = (
        _one_of("severity", Severity),
        _one_of("status", AlertStatus),
        CheckConstraint("count >= 1", name="count_positive"),
        Index(
            "uq_alerts_active_fingerprint",
            "fingerprint",
            unique=True,
            sqlite_where=text("status <> 'resolved'"),
            postgresql_where=text("status <> 'resolved'"),
        ),
        Index(None, "status", "starts_at"),
        Index(None, "rule"),
        Index(None, "incident_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(128))
    rule: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(16), default=AlertStatus.FIRING.value)
    labels: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    annotations: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    starts_at: Mapped[datetime] = mapped_column(default=utcnow)
    ends_at: Mapped[datetime | None]
    last_notified_at: Mapped[datetime | None]
    # resolved, and some route that announced it firing has not announced it resolved yet
    resolve_notice_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), index=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledged_at: Mapped[datetime | None]
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    count: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    incident: Mapped[Incident | None] = relationship(back_populates="alerts")


# --------------------------------------------------------------------------- approvals


class ApprovalRequest(Base):
    """A request for human approval of a risky procedure."""

    __tablename__ = "approval_requests"
    __table_args__ = (
        _one_of("risk", Risk),
        _one_of("status", ApprovalStatus),
        CheckConstraint("quorum >= 1", name="quorum_positive"),
        Index(None, "status", "expires_at"),
        Index(None, "flow_run_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    procedure: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(500))
    risk: Mapped[str] = mapped_column(String(16))
    proposer: Mapped[str] = mapped_column(String(200))
    required_role: Mapped[str] = mapped_column(String(64))
    quorum: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default=ApprovalStatus.PENDING.value)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    decisions: Mapped[list[ApprovalDecision]] = relationship(
        back_populates="request",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ApprovalDecision.id",
    )


class ApprovalDecision(Base):
    """One approver's vote (accepted or refused with a reason); one accepted vote per approver per request."""

    __tablename__ = "approval_decisions"
    __table_args__ = (
        _one_of("decision", Decision),
        _one_of("source", DecisionSource),
        Index(
            "uq_approval_decisions_accepted_approver",
            "request_id",
            "approver",
            unique=True,
            sqlite_where=text("accepted"),
            postgresql_where=text("accepted"),
        ),
        Index(None, "request_id", "decided_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("approval_requests.id", ondelete="CASCADE"))
    approver: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    accepted: Mapped[bool] = mapped_column(Boolean, default=True)
    refusal_reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)

    request: Mapped[ApprovalRequest] = relationship(back_populates="decisions")


# --------------------------------------------------------------------------- notifications


class NotificationOutbox(Base):
    """A message waiting to be delivered (Slack); delivered in `sequence` order under a worker lease."""

    __tablename__ = "notification_outbox"
    __table_args__ = (
        _one_of("status", OutboxStatus),
        Index(None, "status", "next_attempt_at", "sequence"),
        Index(None, "thread_key", "sequence"),
        Index(None, "sequence"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    sequence: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(100))
    thread_key: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    slack_channel_id: Mapped[str | None] = mapped_column(String(32))
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None]
    lease_expires_at: Mapped[datetime | None]


class SlackThread(Base):
    """Where a logical thread (e.g. `incident:INC-0001`) lives in Slack, so later updates go into it."""

    __tablename__ = "slack_threads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    thread_key: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(100))
    ts: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --------------------------------------------------------------------------- chain


class ChainAction(Base):
    """A transaction the ops system sends (or sent), keyed for idempotent retries."""

    __tablename__ = "chain_actions"
    __table_args__ = (
        _one_of("status", ChainActionStatus),
        Index(None, "chain_id", "from_address", "nonce"),
        Index(None, "status", "updated_at"),
        Index(None, "signed_tx_hash"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    from_address: Mapped[str] = mapped_column(String(42))
    to_address: Mapped[str | None] = mapped_column(String(42))
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    selector: Mapped[str | None] = mapped_column(String(10))
    data_hash: Mapped[str | None] = mapped_column(String(66))
    description: Mapped[str] = mapped_column(Text, default="")
    signed_tx_hash: Mapped[str | None] = mapped_column(String(66))
    raw_tx: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ChainActionStatus.PENDING.value)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    error: Mapped[str | None] = mapped_column(Text)


class WatcherCheckpoint(Base):
    """How far a chain watcher got (one row per chain and watcher), on the chain whose block 0 is `genesis_hash`
    (a different genesis behind the same chain id is a new chain, not a reorg)."""

    __tablename__ = "watcher_checkpoints"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    watcher: Mapped[str] = mapped_column(String(64), primary_key=True, default="events")
    last_block: Mapped[int] = mapped_column(BigInteger)
    last_block_hash: Mapped[str | None] = mapped_column(String(66))
    genesis_hash: Mapped[str | None] = mapped_column(String(66))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ProcessedBlock(Base):
    """A block a watcher processed, kept for reorg detection (hash mismatch at the same height)."""

    __tablename__ = "processed_blocks"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(66))
    parent_hash: Mapped[str | None] = mapped_column(String(66))
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)


# --------------------------------------------------------------------------- resilience


class Backup(Base):
    """A backup file that was written."""

    __tablename__ = "backups"
    __table_args__ = (Index(None, "kind", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    checksum: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Drill(Base):
    """A disaster-recovery or incident drill with its measured RTO/RPO."""

    __tablename__ = "drills"
    __table_args__ = (Index(None, "kind", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    rto_seconds: Mapped[float | None] = mapped_column(Float)
    rpo_seconds: Mapped[float | None] = mapped_column(Float)
    ok: Mapped[bool | None] = mapped_column(Boolean)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


# --------------------------------------------------------------------------- silences


class SilenceRecord(Base):
    """An ad-hoc silence (`vvops silence add`): mutes matching alerts from starts_at to ends_at, or until expired."""

    __tablename__ = "silences"
    __table_args__ = (Index(None, "ends_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    matchers: Mapped[list[str]] = mapped_column(JSONType, default=list)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expired_at: Mapped[datetime | None]
    expired_by: Mapped[str | None] = mapped_column(String(200))


# --------------------------------------------------------------------------- audit


class AuditEntry(Base):
    """One append-only, hash-chained audit record (ids are assigned 1, 2, 3, ... by `append_audit`)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        UniqueConstraint("prev_hash"),
        UniqueConstraint("hash"),
        Index(None, "subject", "at"),
        Index(None, "actor", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


from vvops.store.safe_models import SafeConfirmation, SafeTransaction, SafeTxStatus  # noqa: E402,F401  (split out)
from vvops.store.change_models import ParameterChange, TimelockOperation  # noqa: E402,F401  (split out)
from vvops.store.action_item_models import ActionItem, ActionItemStatus  # noqa: E402,F401  (split out)
from vvops.store.notification_models import NotificationStatus, StatementNotification  # noqa: E402,F401  (split out)

TABLE_NAMES: tuple[str, ...] = tuple(sorted(Base.metadata.tables))
