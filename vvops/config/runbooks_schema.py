"""config/runbooks.yaml: the runbook section that handles each alert rule and each check (issue 17 item 4,
playbook: Knowledge Management / Troubleshooting guides). Optional: without the file no link is shown, and
`vvops config check` has nothing to hold the rules to. The cross-file checks (every rule and check covered, every
section a heading of the document) are in loader.py `_runbook_checks`."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import field_validator

from .schema import Frozen, problem

_ANCHOR = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def heading_anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading: lower case, punctuation dropped, spaces → hyphens."""
    text = heading.strip().lstrip("#").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def document_anchors(markdown: str) -> set[str]:
    """Every heading anchor of a markdown document (fenced code is skipped; duplicates get GitHub's -1, -2)."""
    anchors: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or not re.match(r"^#{1,6}\s", line):
            continue
        base = heading_anchor(line)
        anchor, n = base, 0
        while anchor in anchors:
            n += 1
            anchor = f"{base}-{n}"
        anchors.add(anchor)
    return anchors


class RunbooksFile(Frozen):
    document: str = "docs/runbooks.md"
    """The runbook file, relative to the repository root (or absolute)."""
    base_url: str | None = None
    """Where people open the document (links become `base_url#section`); null: the document path."""
    checks: dict[str, str] = {}
    """Check id or prefix → section anchor (the longest matching prefix wins)."""
    rules: dict[str, str] = {}
    """Alert rule name (alerting.yaml, watcher.yaml) → section anchor."""

    @field_validator("checks", "rules")
    @classmethod
    def _anchors(cls, value: dict[str, str]) -> dict[str, str]:
        for key, anchor in value.items():
            if not _ANCHOR.match(anchor or ""):
                raise problem(f"{key}: {anchor!r} is not a section anchor",
                              "write the heading's anchor: lower case, hyphens for spaces (### RPC down → rpc-down)")
        return value

    def document_path(self, repo_root: Path) -> Path:
        path = Path(self.document)
        return path if path.is_absolute() else repo_root / path

    def url(self, anchor: str | None) -> str | None:
        if not anchor:
            return None
        return f"{(self.base_url or self.document).rstrip('#')}#{anchor}"

    def check_anchor(self, check_id: str) -> str | None:
        best = max((p for p in self.checks if check_id == p or check_id.startswith(p + ".")), key=len, default=None)
        return self.checks[best] if best is not None else None

    def for_check(self, check_id: str | None) -> str | None:
        """The runbook URL of a check (or of one of its sub-ids such as protocol.contract_state.vault.paused)."""
        return self.url(self.check_anchor(check_id)) if check_id else None

    def for_rule(self, rule: str | None) -> str | None:
        return self.url(self.rules.get(rule)) if rule else None

    def for_alert(self, rule: str | None, labels: dict | None = None) -> str | None:
        """A check alert links the check's own section (more precise than a catch-all rule's), else the rule's."""
        return self.for_check((labels or {}).get("check")) or self.for_rule(rule)
