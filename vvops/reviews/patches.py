"""Patch compliance of our own dependencies (monthly Security review).

Pure functions over plain mappings: installed distributions (`importlib.metadata`) versus the versions pinned
in `uv.lock`, and the newest pip-audit report the daily `security.vulnerability_reports` check ingests
cross-referenced with what we run → "patch due" rows with the fix versions. No network access.
Small readers (`installed_versions`, `read_lock`, `newest_pip_audit_report`) do the I/O for the flow.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version


def normalize(name: str) -> str:
    """PEP 503 name normalisation (Foo_Bar.baz → foo-bar-baz)."""
    return re.sub(r"[-_.]+", "-", str(name)).lower()


def _version(text: Any) -> Version | None:
    try:
        return Version(str(text))
    except (InvalidVersion, TypeError):
        return None


# ---------------------------------------------------------------------------- readers (I/O)

def parse_lock(text: str) -> dict[str, str]:
    """`[[package]] name/version` of a uv.lock (TOML) → {normalized name: version}; entries without a version
    (virtual or dynamic projects) are left out."""
    doc = tomllib.loads(text)
    return {normalize(p["name"]): str(p["version"]) for p in doc.get("package") or []
            if p.get("name") and p.get("version")}


def read_lock(path: Path) -> dict[str, str] | None:
    try:
        return parse_lock(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None


def installed_versions(distributions: Iterable[Any] | None = None) -> dict[str, str]:
    """{normalized name: version} of the installed distributions (importlib.metadata)."""
    if distributions is None:
        from importlib.metadata import distributions as _dists

        distributions = _dists()
    out: dict[str, str] = {}
    for d in distributions:
        name = d.metadata["Name"] if d.metadata else None
        if name:
            out.setdefault(normalize(name), d.version)
    return out


def is_pip_audit(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("dependencies"), list)


def newest_pip_audit_report(folder: Path) -> tuple[str, datetime, dict[str, Any]] | None:
    """The newest (by modification time) readable pip-audit JSON in `folder`: (file name, mtime UTC, document)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    for path in sorted((p for p in folder.glob("*.json") if p.is_file()), key=lambda p: p.stat().st_mtime,
                       reverse=True):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if is_pip_audit(doc):
            return path.name, datetime.fromtimestamp(path.stat().st_mtime, timezone.utc), doc
    return None


# ---------------------------------------------------------------------------- pure

def lock_mismatches(installed: Mapping[str, str], locked: Mapping[str, str]) -> list[dict[str, Any]]:
    """Packages installed at a version other than the one uv.lock pins (both sides present)."""
    inst = {normalize(k): v for k, v in installed.items()}
    rows = []
    for name, pinned in sorted((normalize(k), v) for k, v in locked.items()):
        have = inst.get(name)
        if have is None:
            continue
        a, b = _version(have), _version(pinned)
        same = a == b if a is not None and b is not None else str(have) == str(pinned)
        if not same:
            rows.append({"package": name, "installed": have, "locked": pinned,
                         "status": "behind lock" if a is not None and b is not None and a < b else "differs from lock"})
    return rows


def locked_not_installed(installed: Mapping[str, str], locked: Mapping[str, str]) -> list[str]:
    """Locked packages absent from the environment (often platform-specific markers, e.g. Windows-only)."""
    inst = {normalize(k) for k in installed}
    return sorted(n for n in (normalize(k) for k in locked) if n not in inst)


def _is_fixed(version: Version, fixes: list[Version]) -> bool:
    """Whether `version` already carries a fix: at or above a fix of its own major line, or above them all."""
    if not fixes:
        return False
    if version >= max(fixes):
        return True
    return any(version >= f and f.release[:1] == version.release[:1] for f in fixes)


def patch_due(report: Mapping[str, Any] | None, installed: Mapping[str, str],
              locked: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Findings of a pip-audit report that concern our dependencies (installed or locked).

    Each row: package, vulnerability, aliases, reported (version the scan saw), installed, locked, fix_versions,
    target (the smallest fix above what is installed), status: `patch due` (installed still vulnerable, a fix
    exists), `no fix available`, or `fixed` (installed at or past a fix; the lock still vulnerable says so).
    """
    if not report or not is_pip_audit(report):
        return []
    inst = {normalize(k): v for k, v in installed.items()}
    lock = {normalize(k): v for k, v in (locked or {}).items()}
    rows = []
    for dep in report["dependencies"]:
        name = normalize(dep.get("name", ""))
        if not dep.get("vulns") or (name not in inst and name not in lock):
            continue
        have = inst.get(name) or lock.get(name)
        hv = _version(have)
        for v in dep["vulns"]:
            fix_texts = [str(f) for f in v.get("fix_versions") or []]
            fixes = sorted(f for f in map(_version, fix_texts) if f is not None)
            if hv is None:
                status, target = ("patch due" if fixes else "no fix available"), (str(fixes[0]) if fixes else None)
            elif _is_fixed(hv, fixes):
                status, target = "fixed", None
            else:
                above = [f for f in fixes if f > hv]
                target = str(above[0]) if above else None
                status = "patch due" if target else "no fix available"
            lv = _version(lock.get(name))
            if status == "fixed" and lv is not None and not _is_fixed(lv, fixes):
                status = "fixed (lock still vulnerable)"
            rows.append({"package": name, "vulnerability": str(v.get("id", "?")),
                         "aliases": ", ".join(v.get("aliases") or []), "reported": dep.get("version"),
                         "installed": inst.get(name), "locked": lock.get(name),
                         "fix_versions": ", ".join(fix_texts), "target": target, "status": status})
    order = {"patch due": 0, "no fix available": 1}
    return sorted(rows, key=lambda r: (order.get(r["status"], 2), r["package"], r["vulnerability"]))


def patch_compliance(*, installed: Mapping[str, str], locked: Mapping[str, str] | None,
                     report: Mapping[str, Any] | None = None, report_name: str | None = None,
                     report_time: datetime | None = None) -> dict[str, Any]:
    """The section's dict: lock mismatches, patch-due rows, and which report was used."""
    due = patch_due(report, installed, locked)
    return {
        "lock_available": locked is not None,
        "installed": len(installed),
        "locked": len(locked or {}),
        "mismatches": lock_mismatches(installed, locked or {}),
        "locked_not_installed": locked_not_installed(installed, locked or {}),
        "report": report_name,
        "report_time": report_time.isoformat() if report_time else None,
        "findings": due,
        "patch_due": sum(1 for r in due if r["status"] == "patch due"),
    }
