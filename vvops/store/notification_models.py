"""Who outside the team was told about an incident, when, through which channel (issue 17 item 3, "Partners and
exchanges"): one row per recipient of each published statement. A regulator's or an exchange's question "when
did you tell us" is answered from here, next to the statement's digest (what exactly was said) and its approval
in the audit log."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vvops.store.models import Base, BigId, _one_of, utcnow


class NotificationStatus(str, enum.Enum):
    SENT = "sent"          # the receiving server (SMTP, webhook) accepted it
    FAILED = "failed"      # tried and refused or unreachable; `detail` says why
    SKIPPED = "skipped"    # the channel is not configured here (its variable unset); `detail` names it


class StatementNotification(Base):
    __tablename__ = "statement_notifications"
    __table_args__ = (
        _one_of("status", NotificationStatus),
        Index(None, "incident_key", "notified_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_key: Mapped[str | None] = mapped_column(String(32), ForeignKey("incidents.key", ondelete="CASCADE"))
    """None for an announcement outside incidents."""
    statement_kind: Mapped[str] = mapped_column(String(40))  # initial|update|resolution|post_incident|announcement:<topic>
    statement_sha256: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))         # email | webhook
    contact: Mapped[str] = mapped_column(String(200))        # the contact list's or webhook's name from config
    contact_kind: Mapped[str] = mapped_column(String(32))    # partner, exchange, ... or the webhook kind
    recipient: Mapped[str] = mapped_column(String(254))      # the address (never a webhook URL: it holds a token)
    status: Mapped[str] = mapped_column(String(8))
    detail: Mapped[str | None] = mapped_column(Text)
    notified_at: Mapped[datetime] = mapped_column(default=utcnow)
