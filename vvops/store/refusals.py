"""Refused actions in the audit log: every refusal recorded with the rule that refused it, bounded in size,
and aggregated under a flood.

* `audit_refusal(session, ...)` appends one `<action>` entry whose details carry `rule` (the rule that
  refused: `limits.cooldown_hours`, `slack.signature`, `roster`...), `reason` (one line for people) and the
  caller's details cut to a bounded size (long text shortened with its length and sha256 kept, so the row
  still proves what was sent without storing it). Use it from the CLI, the Slack endpoint, the flows and
  any API handler, so every refusal looks the same in the log.
* `RefusalAggregator` keeps a flood of refusals from one source to a bounded number of rows: the first
  refusal of each kind in a window is written in full, the rest are counted and written as one
  `<action>.aggregated` row (count, first/last time, a few samples) when the window closes.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.orm import Session

from vvops.store.audit import append_audit, canonical_json, normalize_json

MAX_TEXT = 256
"""Characters kept of any one text value in a refusal's details."""
MAX_ITEMS = 20
"""Items kept of any list or mapping in a refusal's details."""
MAX_DETAILS_BYTES = 4096
"""Bytes a refusal's details may take once bounded; beyond that only a digest is kept."""
MAX_DEPTH = 4


def bounded_text(value: str, limit: int = MAX_TEXT) -> str:
    """The text itself when short; else its start, its length and its sha256 (enough to prove what was sent)."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{value[:limit]}… [{len(value)} chars, sha256 {digest}]"


def bounded(value: Any, *, depth: int = 0) -> Any:
    """A JSON-able copy of `value` with every text, list and mapping cut to the bounds above."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return bounded_text(value)
    if depth >= MAX_DEPTH and isinstance(value, (dict, list, tuple, set, frozenset)):
        return bounded_text(str(value))
    if isinstance(value, dict):
        items = list(value.items())
        out = {bounded_text(str(k), 64): bounded(v, depth=depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["…"] = f"{len(items) - MAX_ITEMS} more keys"
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        out_list = [bounded(v, depth=depth + 1) for v in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            out_list.append(f"… {len(items) - MAX_ITEMS} more")
        return out_list
    try:
        return normalize_json(value)
    except (TypeError, ValueError):
        return bounded_text(repr(value))


def bounded_details(details: dict[str, Any] | None) -> dict[str, Any]:
    out = bounded(details or {})
    text = canonical_json(out)
    if len(text.encode("utf-8")) > MAX_DETAILS_BYTES:
        return {"truncated": True, "bytes": len(text.encode("utf-8")),
                "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "keys": sorted(out)[:MAX_ITEMS]}
    return out


def audit_refusal(session: Session, *, actor: str, action: str, subject: str, source: str, rule: str,
                  reason: str, details: dict[str, Any] | None = None, at: datetime | None = None):
    """Append one refusal to the audit chain (the caller's transaction): who, what, which rule, why."""
    body = bounded_details(details)
    body.update({"rule": bounded_text(rule, 120), "reason": bounded_text(reason, 500)})
    return append_audit(session, actor=bounded_text(actor or "(unknown)", 120)[:200],
                        action=action[:200], subject=bounded_text(subject or "(none)", 400)[:500],
                        source=source[:64], details=body, at=at)


@dataclass
class _Window:
    started: float
    first_at: str
    count: int = 0
    last_at: str = ""
    samples: list[dict[str, Any]] = field(default_factory=list)


class RefusalAggregator:
    """At most one full row per refusal kind per window, plus one aggregate row counting the rest.

    `write(entry)` appends one row (a dict of audit_refusal's keyword arguments); it is called outside
    the aggregator's lock. `flush()` writes the counts of windows that have closed (call it periodically
    and at shutdown; `refuse` also flushes a kind's closed window before opening the next one).
    """

    def __init__(self, write: Callable[[dict[str, Any]], None], *, window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, samples: int = 3):
        self._write = write
        self._window_s = window_s
        self._clock = clock
        self._samples = samples
        self._windows: dict[str, tuple[dict[str, Any], _Window]] = {}
        self._lock = threading.Lock()

    def refuse(self, kind: str, entry: dict[str, Any]) -> bool:
        """Record one refusal of `kind`; True when it was written in full, False when only counted."""
        now, wall = self._clock(), datetime.now(timezone.utc).isoformat(timespec="seconds")
        to_write: list[dict[str, Any]] = []
        with self._lock:
            current = self._windows.get(kind)
            if current is not None and now - current[1].started >= self._window_s:
                to_write.extend(self._closed(kind))
                current = None
            if current is None:
                self._windows[kind] = (entry, _Window(started=now, first_at=wall))
                to_write.append(entry)
                written = True
            else:
                window = current[1]
                window.count += 1
                window.last_at = wall
                if len(window.samples) < self._samples:
                    window.samples.append(bounded(entry.get("details") or {}))
                written = False
        for row in to_write:
            self._write(row)
        return written

    def flush(self, *, force: bool = False) -> int:
        """Write the aggregate rows of closed windows (all windows when `force`); returns rows written."""
        now = self._clock()
        rows: list[dict[str, Any]] = []
        with self._lock:
            for kind in list(self._windows):
                if force or now - self._windows[kind][1].started >= self._window_s:
                    rows.extend(self._closed(kind))
        for row in rows:
            self._write(row)
        return len(rows)

    def _closed(self, kind: str) -> list[dict[str, Any]]:
        first, window = self._windows.pop(kind)
        if window.count == 0:
            return []
        return [{**first, "action": f"{first['action']}.aggregated",
                 "reason": f"{window.count} more refusals like the one before within {self._window_s:.0f} s",
                 "details": {"count": window.count, "kind": kind, "first_at": window.first_at,
                             "last_at": window.last_at, "samples": window.samples}}]
