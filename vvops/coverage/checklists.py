"""Report checklists: the assisted/manual playbook items of a cadence (daily/weekly/monthly), with evidence.

The team activities (standup, weekly operations review, cross-functional sync, training...) and every other
item the registry marks `manual` or `assisted` on a cadence become lines of that cadence's report. A person ticks
a line by recording an audit entry (`action = CONFIRM_ACTION`, `subject = "checklist:<id>"`); the renderer
shows who/when from those entries and leaves the cell blank until then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

from vvops.coverage.registry import CADENCES, REGISTRY, Entry

CONFIRM_ACTION = "checklist.confirm"


@dataclass(frozen=True)
class ChecklistItem:
    id: str              # stable: "<cadence>.<group slug>.<item slug>"
    playbook_item: str   # heading path / item text
    text: str
    owner_role: str


@dataclass(frozen=True)
class Evidence:
    who: str
    when: datetime


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def item_id(entry: Entry) -> str:
    group = entry.path.split(" / ")[-1]
    return f"{entry.cadence}.{_slug(group)}.{_slug(entry.item)}"


def checklist_for(cadence: str, entries: Iterable[Entry] | None = None) -> list[ChecklistItem]:
    """The checklist lines of the `cadence` report, in playbook order."""
    if cadence not in CADENCES:
        raise ValueError(f"unknown cadence {cadence!r}: choose one of {', '.join(CADENCES)}")
    return [ChecklistItem(id=item_id(e), playbook_item=f"{e.path} / {e.item}", text=e.checklist_text or e.item,
                          owner_role=e.owner_role or "")
            for e in (REGISTRY if entries is None else entries)
            if e.mode in ("manual", "assisted") and e.cadence == cadence]


def evidence_from_audit(rows: Iterable[Mapping[str, Any]]) -> dict[str, Evidence]:
    """Checklist confirmations from audit rows (keys: action, subject, actor, at/created_at); the latest wins."""
    out: dict[str, Evidence] = {}
    for r in rows:
        subject = str(r.get("subject") or "")
        if r.get("action") != CONFIRM_ACTION or not subject.startswith("checklist:"):
            continue
        when = r.get("at") or r.get("created_at")
        if not isinstance(when, datetime):
            continue
        key = subject.split(":", 1)[1]
        if key not in out or when > out[key].when:
            out[key] = Evidence(who=str(r.get("actor") or ""), when=when)
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_checklist(items: list[ChecklistItem], evidence: Mapping[str, Evidence] | None = None,
                     title: str | None = "Checklist") -> str:
    """Markdown table: done, item, owner, who/when (blank until recorded), id."""
    evidence = evidence or {}
    lines = [f"## {title}", ""] if title else []
    if not items:
        return "\n".join(lines + ["_Nothing to confirm._"]) + "\n"
    lines += ["| done | item | owner | who/when | id |", "|:-:|---|---|---|---|"]
    for it in items:
        ev = evidence.get(it.id)
        who = f"{ev.who} {ev.when:%Y-%m-%d %H:%M} UTC" if ev else ""
        lines.append(f"| {'✅' if ev else '☐'} | {_cell(it.text)} | {it.owner_role} | {_cell(who)} | `{it.id}` |")
    return "\n".join(lines) + "\n"
