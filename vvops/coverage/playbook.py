"""Parse the operations playbook (markdown) into the items the coverage registry must map.

Which sections count
--------------------
Every bullet under these top-level sections is an item: Regular Operations, Protocol Operations,
Infrastructure Operations, Incident Management, Communication Protocols, Operational Resilience, Continuous
Improvement, and the "Operational Coverage" part of Operational Structure.

Skipped, on purpose:
- the front matter, the title and its tagline, "Introduction" (prose, nothing to do);
- "Operational Structure / Operations Team" (Core Roles, Support Roles): these define *who* the team is, not
  activities; they are the `roles` of config/team.yaml and appear here as the registry's `owner_role`;
- "Appendices" (lists of documents to keep: tool docs, contact lists, templates) and "References" (links).

What an item is
---------------
Bullets are read with their nesting. A bold group bullet (`* **Protocol Health Verification**:`) with
children is a group: it becomes the last part of the heading path and each of its leaf children is an item.
A bullet without children is itself an item. A bullet's text is its bold label when it has one
(`**P0 (Critical)**: Complete protocol outage...` → "P0 (Critical)", the rest kept as `detail`), else the
whole bullet text.

Where the playbook is
---------------------
`VVOPS_PLAYBOOK` when set, else `<repo>/../shared/playbook/operations-playbook.md` (CI runs with a copy of
shared/ beside the clone). Nothing is vendored: `playbook_path()` says where it looked and `load_items()` raises
`PlaybookMissing` naming that path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PLAYBOOK = REPO_ROOT.parent / "shared" / "playbook" / "operations-playbook.md"
ENV_VAR = "VVOPS_PLAYBOOK"

# Top-level (##) sections whose bullets count, and heading paths below them that do not.
COUNTED_SECTIONS = (
    "Operational Structure",
    "Regular Operations",
    "Protocol Operations",
    "Infrastructure Operations",
    "Incident Management",
    "Communication Protocols",
    "Operational Resilience",
    "Continuous Improvement",
)
SKIPPED_PREFIXES = (
    ("Operational Structure", "Operations Team"),
)

SEP = " / "


class PlaybookMissing(FileNotFoundError):
    """The playbook file is not where we looked."""


@dataclass(frozen=True)
class PlaybookItem:
    path: tuple[str, ...]   # headings, then the bold group label when the item sits under one
    text: str               # the bullet's bold label, else its whole text
    detail: str = ""        # what follows the bold label, if anything
    line: int = 0           # 1-based line in the playbook

    @property
    def heading_path(self) -> str:
        return SEP.join(self.path)

    @property
    def key(self) -> tuple[str, str]:
        return (self.heading_path, self.text)

    @property
    def section(self) -> str:
        return self.path[0]


def playbook_path() -> Path:
    """Where the playbook is read from (the env var, else the default beside the repository)."""
    env = os.environ.get(ENV_VAR, "").strip()
    return Path(env).expanduser() if env else DEFAULT_PLAYBOOK


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[*+-]\s+(.*?)\s*$")
_BOLD_LABEL = re.compile(r"^\*\*(.+?)\*\*\s*:?\s*(.*)$")


def _split_label(text: str) -> tuple[str, str]:
    m = _BOLD_LABEL.match(text)
    if not m:
        return text.strip(), ""
    label = m.group(1).strip().rstrip(":").strip()
    return label, m.group(2).strip()


def _counted(path: tuple[str, ...]) -> bool:
    if not path or path[0] not in COUNTED_SECTIONS:
        return False
    return not any(path[: len(p)] == p for p in SKIPPED_PREFIXES)


def _strip_front_matter(lines: list[str]) -> int:
    """Index of the first line after a leading `---` ... `---` block (0 when there is none)."""
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() == "---":
                return i + 1
    return 0


def parse_items(markdown: str) -> list[PlaybookItem]:
    """The playbook's items, in document order (see the module docstring for the rules)."""
    lines = markdown.splitlines()
    start = _strip_front_matter(lines)
    headings: list[str] = []          # index = level - 2 (## is the top section; # is the title)
    # bullets of the current list: (indent, label, detail, line, has_children)
    bullets: list[dict] = []
    items: list[PlaybookItem] = []

    def flush() -> None:
        path = tuple(headings)
        if not _counted(path):
            bullets.clear()
            return
        for i, b in enumerate(bullets):
            if b["children"]:
                continue
            parents = [p for p in bullets[:i] if p["indent"] < b["indent"]]
            # the chain of enclosing bullets: the nearest parent of each smaller indent
            chain: list[dict] = []
            indent = b["indent"]
            for p in reversed(parents):
                if p["indent"] < indent:
                    chain.insert(0, p)
                    indent = p["indent"]
            items.append(PlaybookItem(path=path + tuple(p["label"] for p in chain), text=b["label"],
                                      detail=b["detail"], line=b["line"]))
        bullets.clear()

    in_code = False
    for n, raw in enumerate(lines[start:], start=start + 1):
        if raw.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        h = _HEADING.match(raw)
        if h:
            flush()
            level = len(h.group(1))
            if level < 2:
                headings = []
                continue
            headings = headings[: level - 2] + [h.group(2).strip()]
            continue
        b = _BULLET.match(raw)
        if b:
            indent = len(b.group(1).expandtabs(4))
            label, detail = _split_label(b.group(2))
            for prev in reversed(bullets):
                if prev["indent"] < indent:
                    prev["children"] = True
                    break
            bullets.append({"indent": indent, "label": label, "detail": detail, "line": n, "children": False})
    flush()
    return items


def load_items(path: Path | None = None) -> list[PlaybookItem]:
    """Read and parse the playbook; `PlaybookMissing` names the path looked at."""
    p = path or playbook_path()
    if not p.is_file():
        raise PlaybookMissing(
            f"operations playbook not found at {p} (set {ENV_VAR} to its path; the default is "
            f"<repo>/../shared/playbook/operations-playbook.md)")
    return parse_items(p.read_text(encoding="utf-8"))
