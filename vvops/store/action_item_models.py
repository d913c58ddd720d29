"""Post-incident action items as records of their own (issue 17 item 4, "Knowledge that stays").

One row per item of a post-incident report: who owns it (a roster person), when it is due, and, once done, who
closed it, when, and the evidence (a link, a commit, a ticket). `(incident_key, position)` is unique, so writing
the report of the same incident again finds its items instead of adding them twice.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vvops.store.models import Base, BigId, _one_of, utcnow


class ActionItemStatus(str, enum.Enum):
    OPEN = "open"
    DONE = "done"


class ActionItem(Base):
    __tablename__ = "action_items"
    __table_args__ = (
        _one_of("status", ActionItemStatus),
        UniqueConstraint("incident_key", "position"),
        Index(None, "status", "due_on"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_key: Mapped[str] = mapped_column(String(32), ForeignKey("incidents.key", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(200))
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(8), default=ActionItemStatus.OPEN.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(200))
    evidence: Mapped[str | None] = mapped_column(Text)
