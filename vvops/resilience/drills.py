"""Drills people run (tabletop exercises, failover or key-compromise walk-throughs...): recorded with who took
part and what they found, so the monthly compliance control counts them like the automated `dr-drill` runs.

The automated store-restore drill writes its own row (flows/dr_drill.py); this is for the drills a person leads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy.orm import Session

from vvops.store import append_audit
from vvops.store.models import Drill

#: kinds of drill the playbook names ("Recovery Testing": recovery scenario testing, tabletop exercises)
DRILL_KINDS = ("tabletop", "store-restore", "rpc-failover", "incident-response", "key-compromise", "emergency-pause")
RECORD_ACTION = "drill.record"


class DrillError(ValueError):
    """A drill record that cannot be kept (unknown kind, nobody took part, no findings)."""


@dataclass(frozen=True)
class DrillRecord:
    kind: str
    scenario: str
    participants: tuple[str, ...]
    findings: tuple[str, ...]
    started_at: datetime
    duration_minutes: float
    ok: bool
    recorded_by: str
    proof: dict[str, Any] = field(default_factory=dict)  # how `recorded_by` was proven (vvops.identity)


def validate_drill(record: DrillRecord) -> None:
    """Raise DrillError when the record cannot be kept (checked before anything is written)."""
    if record.kind not in DRILL_KINDS:
        raise DrillError(f"unknown drill kind {record.kind!r}: one of {', '.join(DRILL_KINDS)}")
    people = tuple(dict.fromkeys(p.strip() for p in record.participants if p.strip()))
    if not people:
        raise DrillError("a drill needs its participants (--participant, once per person)")
    findings = tuple(f.strip() for f in record.findings if f.strip())
    if not findings:
        raise DrillError("record what the drill found (--finding, once per finding; 'none' is a finding too)")


def record_drill(session: Session, record: DrillRecord) -> int:
    """Store the drill (and an audit entry) and return its id."""
    validate_drill(record)
    people = tuple(dict.fromkeys(p.strip() for p in record.participants if p.strip()))
    findings = tuple(f.strip() for f in record.findings if f.strip())
    started = record.started_at if record.started_at.tzinfo else record.started_at.replace(tzinfo=timezone.utc)
    details: dict[str, Any] = {"scenario": record.scenario, "participants": list(people), "findings": list(findings),
                               "recorded_by": record.recorded_by, "source": "person"}
    row = Drill(kind=record.kind, started_at=started, finished_at=started + timedelta(minutes=record.duration_minutes),
                ok=record.ok, details=details)
    session.add(row)
    session.flush()
    append_audit(session, actor=record.recorded_by, action=RECORD_ACTION, subject=f"drill:{row.id}", source="cli",
                 details={"kind": record.kind, "participants": list(people), "findings": len(findings),
                          **record.proof})
    return row.id
