"""config/runbooks.yaml: the runbook section that handles each alert rule and each check (issue 17 item 4,
playbook: Knowledge Management / Troubleshooting guides). Optional: without the file no link is shown, and
`vvops config check` has nothing to hold the rules to. `runbook_problems` is the cross-file check: every rule and
check covered, every section a heading of the document."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import field_validator

from vvops import paths

from .schema import Frozen, did_you_mean, problem

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


def runbook_document(books: RunbooksFile, config_dir: Path) -> Path:
    """The runbook document: in the config folder's repository, else in this repository."""
    beside = books.document_path(config_dir.resolve().parent)
    return beside if beside.is_file() else books.document_path(paths.REPO_ROOT)


def runbook_problems(books: RunbooksFile, config_dir: Path, *, check_ids: list[str] | None,
                     alert_rules: list[str] | None) -> list[tuple[str, tuple[Any, ...], str, str]]:
    """(file, key path, message, hint) for each rule or check without a section, each section that is not a
    heading of the document, and each key naming no rule or check: a link to nowhere is found by `config check`,
    not by someone following it at 3 a.m. Watcher rules (config/watcher.yaml) are held to it too."""
    out: list[tuple[str, tuple[Any, ...], str, str]] = []
    doc = runbook_document(books, config_dir)
    if not doc.is_file():
        return [("runbooks.yaml", ("document",), f"{books.document} does not exist",
                 "write the runbook there, or point document at it (relative to the repository root)")]
    anchors = document_anchors(doc.read_text(encoding="utf-8"))
    for what in ("checks", "rules"):
        for key, anchor in getattr(books, what).items():
            if anchor not in anchors:
                out.append(("runbooks.yaml", (what, key), f"section {anchor!r} is not a heading of {books.document}",
                            did_you_mean(anchor, sorted(anchors))))
    if check_ids is not None:
        for key in books.checks:
            if not any(i == key or i.startswith(key + ".") or key.startswith(i + ".") for i in check_ids):
                out.append(("runbooks.yaml", ("checks", key), f"no check is named {key!r}",
                            did_you_mean(key, check_ids)))
        for i, check_id in enumerate(check_ids):
            if books.check_anchor(check_id) is None:
                out.append(("checks.yaml", ("checks", i, "id"), f"check {check_id!r} has no runbook section",
                            f"add `{check_id}: <section>` under checks: in runbooks.yaml"))
    rules = {name: "alerting.yaml" for name in alert_rules or ()}
    try:
        from vvops.watcher.config import load_watcher_config

        rules.update({r.name: "watcher.yaml" for r in load_watcher_config(config_dir).rules if r.name not in rules})
    except Exception:  # noqa: BLE001 - the watcher validates its own file; its rules are then not held here
        pass
    for name, file in rules.items():
        if name not in books.rules:
            out.append((file, ("rules", name), f"alert rule {name!r} has no runbook section",
                        f"add `{name}: <section>` under rules: in runbooks.yaml"))
    for key in books.rules:
        if alert_rules is not None and key not in rules:
            out.append(("runbooks.yaml", ("rules", key), f"no alert rule is named {key!r}",
                        did_you_mean(key, sorted(rules))))
    return out
