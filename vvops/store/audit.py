"""The append-only, hash-chained audit log: append entries, verify the chain, anchor its head.

Each row's `hash` is HMAC-SHA256, keyed with a secret that is not in the database (the variable
VVOPS_AUDIT_KEY, or the one VVOPS_AUDIT_KEY_ENV names), over the canonical JSON of its fields and the
previous row's hash. Whoever can write the database but not read that key cannot edit a row and re-hash the
rest. Cutting rows off the end, or emptying the table, leaves a valid chain: that is what the published
head (`audit_anchor`: row count + head hash, written at every ops sweep to an append-only file and the audit
Slack channel) is for — `verify_audit_chain(session, anchor=...)` says whether the log was truncated, emptied
or rewritten since. Without the variable, a devnet-only default key is used, and verification says so.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import math
import os
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from vvops.store.db import lock_for_write
from vvops.store.models import AuditEntry, utcnow

GENESIS_HASH = "0" * 64
AUDIT_KEY_ENV = "VVOPS_AUDIT_KEY"
AUDIT_KEY_ENV_POINTER = "VVOPS_AUDIT_KEY_ENV"
DEVNET_AUDIT_KEY = b"vvops devnet audit key: NOT SECRET, devnet only - set VVOPS_AUDIT_KEY anywhere else"


def audit_key_env() -> str:
    """The variable holding the audit key (config `store.audit_key_env`, passed on as VVOPS_AUDIT_KEY_ENV)."""
    return os.environ.get(AUDIT_KEY_ENV_POINTER) or AUDIT_KEY_ENV


def audit_key() -> tuple[bytes, bool]:
    """(key, is_devnet_default): the HMAC key of the audit chain, read in this process from its variable."""
    value = os.environ.get(audit_key_env())
    if value:
        return value.encode("utf-8"), False
    return DEVNET_AUDIT_KEY, True


@dataclass(frozen=True)
class AuditAnchor:
    """A published head of the audit log: how many rows it had and the hash of the last one."""

    rows: int
    head_hash: str

    def __str__(self) -> str:
        return f"{self.rows}:{self.head_hash}"

    @classmethod
    def parse(cls, text: str) -> AuditAnchor:
        """`ROWS:HASH`, a JSON anchor line, or a path to an anchor file (its last line)."""
        text = text.strip()
        if text and not text.startswith("{") and ":" not in text or os.path.isfile(text):
            lines = [line for line in open(text, encoding="utf-8").read().splitlines() if line.strip()]
            if not lines:
                raise ValueError(f"anchor file {text} is empty")
            text = lines[-1]
        if text.startswith("{"):
            doc = json.loads(text)
            return cls(int(doc["rows"]), str(doc["head_hash"]))
        rows, sep, head = text.partition(":")
        if not sep or not rows.strip().isdigit() or len(head.strip()) != 64:
            raise ValueError("an anchor is ROWS:HEAD_HASH (64 hex), a JSON anchor line or an anchor file")
        return cls(int(rows), head.strip().lower())
# Key of the PostgreSQL advisory lock that serialises appends ("vvopsaud" as a 64-bit integer).
AUDIT_ADVISORY_LOCK = int.from_bytes(b"vvopsaud", "big") & 0x7FFF_FFFF_FFFF_FFFF
_MAX_LENGTHS = {"actor": 200, "action": 200, "subject": 500, "source": 64}


@dataclass(frozen=True)
class AuditVerification:
    """The result of walking the audit chain."""

    ok: bool
    checked: int
    first_bad_id: int | None
    reason: str
    problem: str | None = None
    """None when ok; else one of: gap, rewritten, truncated, emptied."""
    devnet_key: bool = False


def iso_utc(value: datetime) -> str:
    """An aware datetime as ISO-8601 in UTC with microseconds (`2024-01-02T03:04:05.000006+00:00`)."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError("naive datetime in audit data: use timezone-aware UTC datetimes")
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def normalize_json(value: Any) -> Any:
    """Plain JSON data that survives a round trip through SQLite JSON and PostgreSQL JSONB unchanged.

    Datetimes become ISO strings, enums their values, Decimals strings, tuples/sets lists and
    integral floats ints (JSONB would print `1e20` as an integer); NaN and infinities are refused.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, enum.Enum):
        return normalize_json(value.value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN/infinity cannot be stored in audit data")
        return int(value) if value.is_integer() else value
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"audit data keys must be strings, got {type(key).__name__}")
            out[str(key)] = normalize_json(item)
        return out
    if isinstance(value, (list, tuple)):
        return [normalize_json(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((normalize_json(item) for item in value), key=canonical_json)
    raise TypeError(f"cannot store {type(value).__name__} in audit data")


def canonical_json(value: Any) -> str:
    """Canonical JSON: normalized values, sorted keys, no whitespace, UTF-8 text kept as is."""
    return json.dumps(normalize_json(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def compute_audit_hash(
    *,
    id: int,  # noqa: A002 - the column is called id
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    source: str,
    details: Any,
    prev_hash: str,
) -> str:
    """HMAC-SHA256 (keyed with `audit_key()`) hex of the canonical JSON of every audit field except `hash`."""
    body = {
        "id": id,
        "at": iso_utc(at),
        "actor": actor,
        "action": action,
        "subject": subject,
        "source": source,
        "details": details if details is not None else {},
        "prev_hash": prev_hash,
    }
    return hmac.new(audit_key()[0], canonical_json(body).encode("utf-8"), hashlib.sha256).hexdigest()


def entry_hash(entry: AuditEntry) -> str:
    """The hash an audit row should carry given its stored content."""
    return compute_audit_hash(
        id=entry.id,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        subject=entry.subject,
        source=entry.source,
        details=entry.details,
        prev_hash=entry.prev_hash,
    )


def _lock_audit_tail(session: Session) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_ADVISORY_LOCK})
    else:
        lock_for_write(session, AuditEntry.__tablename__)


def audit_head(session: Session) -> tuple[int, str] | None:
    """(id, hash) of the newest audit entry, or None when the log is empty (store it elsewhere as an anchor)."""
    row = session.execute(select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)).first()
    return (row[0], row[1]) if row else None


def append_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    source: str = "system",
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry to the audit chain inside the session's transaction (the caller commits)."""
    fields = {"actor": actor, "action": action, "subject": subject, "source": source}
    for name, value in fields.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"audit {name} must be a non-empty string")
        if len(value) > _MAX_LENGTHS[name]:
            raise ValueError(f"audit {name} longer than {_MAX_LENGTHS[name]} characters")
    stored_details = normalize_json(details or {})
    if not isinstance(stored_details, dict):
        raise TypeError("audit details must be a dict")
    if at is not None and (at.tzinfo is None or at.tzinfo.utcoffset(at) is None):
        raise ValueError("audit `at` must be timezone-aware")
    when = (at or utcnow()).astimezone(timezone.utc)

    _lock_audit_tail(session)
    head = audit_head(session)
    new_id, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
    entry = AuditEntry(id=new_id, at=when, details=stored_details, prev_hash=prev_hash, **fields)
    entry.hash = entry_hash(entry)
    session.add(entry)
    session.flush()
    return entry


def audit_anchor(session: Session) -> AuditAnchor:
    """The head to publish: row count and the newest row's hash (GENESIS_HASH when empty)."""
    head = audit_head(session)
    return AuditAnchor(head[0] if head else 0, head[1] if head else GENESIS_HASH)


def verify_audit_chain(
    session: Session, *, expected_head_hash: str | None = None, anchor: AuditAnchor | None = None,
    batch_size: int = 1000,
) -> AuditVerification:
    """Walk the chain from id 1: ids consecutive, each prev_hash the previous hash, each HMAC recomputable;
    then, with an `anchor`, the row it names must still be there with the same hash."""
    devnet_key = audit_key()[1]

    def bad(checked: int, first: int | None, reason: str, problem: str) -> AuditVerification:
        return AuditVerification(False, checked, first, reason, problem, devnet_key)

    expected_id, expected_prev, checked = 1, GENESIS_HASH, 0
    anchored_hash: str | None = None
    last_id = 0
    while True:
        rows = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.id > last_id)
            .order_by(AuditEntry.id)
            .limit(batch_size)
            .execution_options(populate_existing=True)
        ).all()
        if not rows:
            break
        for row in rows:
            if row.id != expected_id:
                missing = f"id {expected_id}" if row.id == expected_id + 1 else f"ids {expected_id}..{row.id - 1}"
                return bad(checked, row.id, f"gap before id {row.id}: {missing} missing (deleted?)", "gap")
            if row.prev_hash != expected_prev:
                return bad(checked, row.id, f"id {row.id}: prev_hash does not match the previous entry "
                                            "(deleted or reordered)", "rewritten")
            try:
                recomputed = entry_hash(row)
            except (TypeError, ValueError) as error:
                return bad(checked, row.id, f"id {row.id}: content cannot be hashed ({error})", "rewritten")
            if not hmac.compare_digest(recomputed, row.hash):
                return bad(checked, row.id, f"id {row.id}: hash mismatch (content was modified, or re-hashed "
                                            "without the audit key)", "rewritten")
            if anchor is not None and row.id == anchor.rows:
                anchored_hash = row.hash
            expected_prev, expected_id, checked = row.hash, row.id + 1, checked + 1
            last_id = row.id
    if expected_head_hash is not None and expected_prev != expected_head_hash:
        return bad(checked, None, "chain head differs from the expected anchor (tail truncated?)", "truncated")
    if anchor is not None and anchor.rows > 0:
        if checked == 0:
            return bad(0, None, f"the audit log is empty but the anchor says it had {anchor.rows} rows (emptied)",
                       "emptied")
        if checked < anchor.rows:
            return bad(checked, checked + 1, f"{anchor.rows - checked} rows after id {checked} are gone: the anchor "
                                             f"says {anchor.rows} rows (truncated)", "truncated")
        if anchored_hash != anchor.head_hash:
            return bad(checked, anchor.rows, f"id {anchor.rows} no longer has the anchored hash: the log was "
                                              "rewritten up to there and re-hashed (rewritten)", "rewritten")
    suffix = f"; anchor {anchor.rows} rows matches" if anchor is not None else ""
    return AuditVerification(True, checked, None, f"ok: {checked} entries{suffix}", None, devnet_key)
