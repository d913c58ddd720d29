"""Routine maintenance rules (playbook: Daily Operations / Routine Maintenance), no Prefect here.

Which log files to compress or delete, whether the newest backup is fresh and intact, and how a data-quality
validation turns into an outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from vvops.checks.infra import _threshold_text
from vvops.checks.outcome import CheckOutcome, worst_status

AREA = "maintenance"


# --------------------------------------------------------------------------- log rotation


@dataclass(frozen=True)
class RotationPlan:
    compress: tuple[Path, ...]
    delete: tuple[Path, ...]


def plan_log_rotation(*, files: list[tuple[Path, datetime]], now: datetime, compress_after_days: int,
                      retention_days: int) -> RotationPlan:
    """Logs (not .gz) untouched for compress_after_days get gzipped; archives (.gz) past retention_days go.

    Archives keep their log's modification time, so retention counts from the last write to the log.
    """
    compress, delete = [], []
    for path, mtime in files:
        age = now - mtime
        if path.suffix == ".gz":
            if age > timedelta(days=retention_days):
                delete.append(path)
        elif age > timedelta(days=retention_days):
            delete.append(path)  # never compressed (e.g. rotation was off): past retention all the same
        elif age > timedelta(days=compress_after_days):
            compress.append(path)
    return RotationPlan(tuple(sorted(compress)), tuple(sorted(delete)))


def evaluate_log_rotation(*, compressed: list[str], deleted: list[str], failures: list[str], missing: list[str],
                          bytes_saved: int, skipped_open: list[str] | None = None) -> CheckOutcome:
    status = "warn" if failures else "ok"
    message = f"compressed {len(compressed)} logs ({bytes_saved / 1024:.0f} KiB saved), deleted {len(deleted)} archives"
    if skipped_open:
        message += f"; left {len(skipped_open)} logs a process still has open"
    if missing:
        message += f"; no folder {', '.join(missing)}"
    if failures:
        message += f"; {len(failures)} failed: {'; '.join(failures[:3])}"
    return CheckOutcome(f"{AREA}.log_rotation", AREA, status, message, value=float(len(compressed) + len(deleted)),
                        hint="check permissions and free space on the log folders" if failures else None,
                        details={"compressed": compressed, "deleted": deleted, "failures": failures,
                                 "missing_folders": missing, "bytes_saved": bytes_saved,
                                 "skipped_open": skipped_open or []})


# --------------------------------------------------------------------------- backups


@dataclass
class BackupVerification:
    """What the backup verification found; each step that did not run stays None."""

    path: str | None = None
    created_at: datetime | None = None
    size: int | None = None
    checksum_source: str | None = None  # "sidecar" | "store" | None
    checksum_ok: bool | None = None
    restore_ok: bool | None = None
    restore_error: str | None = None
    validation: dict[str, Any] | None = None  # data-quality summary (see summarise_validation)
    notes: list[str] = field(default_factory=list)


def evaluate_backup(*, v: BackupVerification, now: datetime, threshold: Any, min_size_bytes: int) -> CheckOutcome:
    check_id = f"{AREA}.backups"
    if v.path is None:
        return CheckOutcome(check_id, AREA, "crit", "no backup found", threshold=_threshold_text(threshold),
                            hint="backups are not being written: check the backup job (or run the dr-drill flow)",
                            details={"notes": v.notes})
    age_h = (now - v.created_at).total_seconds() / 3600 if v.created_at else None
    statuses = [threshold.evaluate(age_h) if threshold is not None and age_h is not None else "ok"]
    problems: list[str] = []
    hint = None
    if v.size is not None and v.size < min_size_bytes:
        statuses.append("crit")
        problems.append(f"only {v.size} bytes")
    if v.checksum_ok is False:
        statuses.append("crit")
        problems.append(f"checksum does not match the recorded one ({v.checksum_source})")
        hint = "the backup file is corrupted or was replaced: take a new backup now and investigate the storage"
    elif v.checksum_ok is None:
        statuses.append("warn")
        problems.append("no recorded checksum (no .sha256 sidecar, no row in the backups table)")
    if v.restore_ok is False:
        statuses.append("crit")
        problems.append(f"restore failed: {v.restore_error}")
        hint = hint or "the newest backup cannot be restored: take a new backup and run the dr-drill flow"
    validation = v.validation or {}
    if validation and not validation.get("success", True):
        statuses.append("crit")
        failed = validation.get("failed", [])
        problems.append(f"restored data fails {len(failed)} expectations: {'; '.join(failed[:3])}")
        hint = hint or "the backup restores but its data is wrong: compare it with the live store"
    status = worst_status(statuses)
    if status != "ok" and hint is None:
        hint = "the newest backup is too old: check the backup schedule and its last run"
    message = f"{Path(v.path).name}: {age_h:.1f} h old, {v.size or 0} bytes" if age_h is not None else Path(v.path).name
    if v.checksum_ok:
        message += f", checksum ok ({v.checksum_source})"
    if v.restore_ok:
        message += ", restored"
        if validation.get("success"):
            message += f" and validated ({validation.get('evaluated', 0)} expectations)"
    if problems:
        message += "; " + "; ".join(problems)
    return CheckOutcome(check_id, AREA, status, message, value=None if age_h is None else round(age_h, 2),
                        threshold=_threshold_text(threshold), hint=hint,
                        details={"path": v.path, "created_at": v.created_at.isoformat() if v.created_at else None,
                                 "size": v.size, "checksum_source": v.checksum_source, "checksum_ok": v.checksum_ok,
                                 "restore_ok": v.restore_ok, "validation": validation, "notes": v.notes})


# --------------------------------------------------------------------------- data integrity


def evaluate_data_integrity(*, validation: dict[str, Any], threshold: Any) -> CheckOutcome:
    """A data-quality summary ({success, evaluated, failed: [text], tables}) → outcome."""
    failed = validation.get("failed", [])
    status = threshold.evaluate(len(failed)) if threshold is not None else ("crit" if failed else "ok")
    if failed and status == "ok":
        status = "warn"
    tables = validation.get("tables", {})
    message = (f"{validation.get('evaluated', 0)} expectations over {len(tables)} tables "
               f"({', '.join(f'{t} {n} rows' for t, n in tables.items())}): {len(failed)} failed")
    if failed:
        message += ": " + "; ".join(failed[:3])
    return CheckOutcome(f"{AREA}.data_integrity", AREA, status, message, value=float(len(failed)),
                        threshold=_threshold_text(threshold),
                        hint=None if status == "ok" else "find the writer of the bad rows (check/metric producers) "
                                                          "and fix it; correct the rows with an audited change",
                        details=validation)


def evaluate_retention(*, deleted: int, rolled_up: int, aggregates: int, optimise: list[str],
                       errors: list[str], retention_days: int, raw_retention_days: int) -> CheckOutcome:
    status = "warn" if errors else "ok"
    message = (f"deleted {deleted} metric points older than {retention_days} days, rolled {rolled_up} raw points "
               f"older than {raw_retention_days} days into {aggregates} daily aggregates; {', '.join(optimise) or 'no optimisation'}")
    if errors:
        message += f"; failed: {'; '.join(errors)}"
    return CheckOutcome(f"{AREA}.metrics_retention", AREA, status, message, value=float(deleted + rolled_up),
                        hint="see the task log; the store may be busy (retry later)" if errors else None,
                        details={"deleted": deleted, "rolled_up": rolled_up, "aggregates": aggregates,
                                 "optimise": optimise, "errors": errors})


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)
