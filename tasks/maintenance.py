"""Routine maintenance tasks: log rotation, backup verification, data integrity, metrics retention + VACUUM.

Each returns `(outcomes, metric points)`; the rules live in `vvops.checks.maintenance`.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.infra import CheckResult, resolve_path
from vvops.checks.maintenance import (
    BackupVerification,
    evaluate_backup,
    evaluate_data_integrity,
    evaluate_log_rotation,
    evaluate_retention,
    plan_log_rotation,
    utc,
)
from vvops.metrics import MetricPoint
from vvops.resilience.backup import SIDECAR_SUFFIX, BackupFile, file_sha256, read_checksum_sidecar

# --------------------------------------------------------------------------- log rotation


def _gzip_file(path: Path) -> int:
    """Compress `path` to `path.gz` (keeping its mtime), remove the original; returns bytes saved."""
    target = path.with_name(path.name + ".gz")
    tmp = target.with_name(target.name + ".tmp")
    stat = path.stat()
    with path.open("rb") as src, gzip.open(tmp, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.utime(tmp, (stat.st_atime, stat.st_mtime))
    os.replace(tmp, target)
    path.unlink()
    return stat.st_size - target.stat().st_size


def files_open_by_processes() -> set[str]:
    """Paths some process (that we may inspect) holds open: a quiet but live log must not be compressed away."""
    import psutil

    paths: set[str] = set()
    for proc in psutil.process_iter():
        try:
            paths.update(f.path for f in proc.open_files())
        except (psutil.Error, OSError):
            continue
    return paths


@task(name="rotate-logs", cache_policy=NO_CACHE, timeout_seconds=600)
def rotate_logs(*, params: Any, now: datetime) -> CheckResult:
    """Gzip logs untouched for compress_after_days, delete archives past retention_days; report what was done.

    Logs a running process still holds open are left alone (compressing them would lose what it writes next).
    """
    compressed, deleted, failures, missing = [], [], [], []
    saved = 0
    open_now = files_open_by_processes()
    skipped: list[str] = []
    for folder in params.folders:
        base = resolve_path(folder.path)
        if not base.is_dir():
            missing.append(str(base))
            continue
        files = [(p, utc(p.stat().st_mtime)) for p in base.glob(folder.pattern) if p.is_file()]
        files += [(p, utc(p.stat().st_mtime)) for p in base.glob(folder.pattern + ".gz") if p.is_file()]
        plan = plan_log_rotation(files=files, now=now, compress_after_days=params.compress_after_days,
                                 retention_days=params.retention_days)
        for path in plan.compress:
            if str(path) in open_now or str(path.resolve()) in open_now:
                skipped.append(str(path))
                continue
            try:
                saved += _gzip_file(path)
                compressed.append(str(path))
            except OSError as exc:
                failures.append(f"compress {path.name}: {exc}")
        for path in plan.delete:
            try:
                path.unlink()
                deleted.append(str(path))
            except OSError as exc:
                failures.append(f"delete {path.name}: {exc}")
    outcome = evaluate_log_rotation(compressed=compressed, deleted=deleted, failures=failures, missing=missing,
                                    bytes_saved=saved, skipped_open=skipped)
    return [outcome], [MetricPoint("maintenance.logs.compressed", len(compressed), ts=now),
                       MetricPoint("maintenance.logs.deleted", len(deleted), ts=now)]


# --------------------------------------------------------------------------- backups


def backup_candidates(folder: Path, pattern: str) -> list[Path]:
    """Backup files in the folder, newest first (sidecars, temp files and SQLite -wal/-shm excluded)."""
    skip = (SIDECAR_SUFFIX, ".tmp", "-wal", "-shm", "-journal")
    files = [p for p in folder.glob(pattern) if p.is_file() and not p.name.endswith(skip)] if folder.is_dir() else []
    return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)


@task(name="take-store-backup", cache_policy=NO_CACHE, timeout_seconds=600, retries=1, retry_delay_seconds=5)
def take_store_backup(*, params: Any, now: datetime) -> dict[str, Any]:
    """Back up the store into the folder with a .sha256 sidecar and a `backups` row (kind "daily")."""
    from sqlalchemy import inspect, text

    from tasks.runtime import store_engine, store_url
    from vvops.resilience.backup import backup_store, write_checksum_sidecar
    from vvops.store import Backup, session_scope

    def count_rows(eng: Any) -> dict[str, int]:
        with eng.connect() as conn:
            quote = eng.dialect.identifier_preparer.quote
            return {name: conn.scalar(text(f"SELECT count(*) FROM {quote(name)}")) or 0
                    for name in inspect(conn).get_table_names()}

    engine = store_engine()
    # PostgreSQL: counts just before pg_dump's snapshot are a lower bound; SQLite: exact counts of the copy itself
    before = None if engine.dialect.name == "sqlite" else count_rows(engine)
    backup = backup_store(url=store_url(), dest_dir=resolve_path(params.folder), stamp=now.strftime("%Y%m%dT%H%M%S%fZ"))
    if before is None:
        import sqlite3

        copy = sqlite3.connect(f"file:{backup.path}?immutable=1", uri=True)  # read-only, no -wal/-shm files
        try:
            names = [r[0] for r in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            rows = {n: copy.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names
                    if not n.startswith("sqlite_")}
            exact = True
        finally:
            copy.close()
    else:
        rows, exact = before, False
    write_checksum_sidecar(backup)
    with session_scope(engine) as session:
        session.add(Backup(kind="daily", path=str(backup.path), checksum=backup.sha256, size=backup.size,
                           created_at=now, details={"rows": rows, "rows_exact": exact}))
    removed = []
    if params.keep_last:
        for old in backup_candidates(resolve_path(params.folder), params.pattern)[params.keep_last:]:
            old.unlink(missing_ok=True)
            old.with_name(old.name + SIDECAR_SUFFIX).unlink(missing_ok=True)
            removed.append(old.name)
    return {"path": str(backup.path), "size": backup.size, "sha256": backup.sha256, "removed": removed}


def _recorded_backup(path: Path) -> Any:
    """The `backups` row for this file (by path, else by file name), or None."""
    from sqlalchemy import select

    from tasks.runtime import store_engine
    from vvops.store import Backup, session_scope

    with session_scope(store_engine()) as session:
        rows = session.execute(select(Backup).where(Backup.path.like(f"%{path.name}")).order_by(Backup.id.desc())).scalars().all()
        for row in rows:
            if row.path == str(path) or Path(row.path).name == path.name:
                session.expunge(row)
                return row
    return None


@task(name="verify-newest-backup", cache_policy=NO_CACHE, timeout_seconds=900)
def verify_newest_backup(*, params: Any, thresholds: dict[str, Any], now: datetime,
                         store_url: str | None = None) -> CheckResult:
    """Newest backup: age vs policy, checksum vs sidecar / `backups` row, restore + data-quality validation."""
    from tasks import runtime

    url = store_url or runtime.store_url()
    v = BackupVerification()
    files = backup_candidates(resolve_path(params.folder), params.pattern)
    if files:
        newest = files[0]
        v.path, v.size = str(newest), newest.stat().st_size
        row = None
        try:
            row = _recorded_backup(newest)
        except Exception as exc:  # noqa: BLE001 - the store may be down; the sidecar still verifies the file
            v.notes.append(f"backups table unreadable: {exc}"[:200])
        v.created_at = row.created_at if row is not None else utc(newest.stat().st_mtime)
        actual = file_sha256(newest)
        expected, source = read_checksum_sidecar(newest), "sidecar"
        if expected is None and row is not None:
            expected, source = row.checksum.lower(), "backups table"
        if expected is not None:
            v.checksum_source, v.checksum_ok = source, expected == actual
        if params.restore_check and v.checksum_ok is not False and v.size >= params.min_size_bytes:
            details = (row.details or {}) if row is not None else {}
            _restore_and_validate(v, newest, actual, url, now, details.get("rows"), details.get("rows_exact", False))
    outcome = evaluate_backup(v=v, now=now, threshold=thresholds.get("backup_age_hours"),
                              min_size_bytes=params.min_size_bytes)
    points = [] if outcome.value is None else [MetricPoint("maintenance.backup.age_hours", outcome.value, ts=now)]
    return [outcome], points


RESTORE_TABLES = ["alembic_version", "check_runs", "check_results", "metrics", "alerts", "backups", "audit_log",
                  "processed_blocks", "watcher_checkpoints"]


def _restore_and_validate(v: BackupVerification, path: Path, sha256: str, url: str, now: datetime,
                          expected_rows: dict[str, int] | None, exact: bool) -> None:
    from tasks.data_quality import validate_database
    from vvops.paths import state_dir
    from vvops.resilience.backup import drop_scratch_database, restore_store, scratch_database_url
    from vvops.store import make_engine

    name = f"vv_backup_verify_{now:%Y%m%d%H%M%S}_{os.getpid()}"
    scratch_url = None
    try:
        scratch_url = scratch_database_url(url=url, name=name, scratch_dir=state_dir() / "scratch")
        restore_store(backup=BackupFile(path, v.size or 0, sha256), url=url, scratch_url=scratch_url)
        engine = make_engine(scratch_url)
        try:
            v.validation = validate_database(engine, tables=RESTORE_TABLES, sample_rows=100_000,
                                             expected_rows={k: n for k, n in (expected_rows or {}).items()
                                                            if k in RESTORE_TABLES}, exact=exact)
        finally:
            engine.dispose()
        v.restore_ok = True
    except Exception as exc:  # noqa: BLE001 - a backup that cannot be restored is the finding
        v.restore_ok, v.restore_error = False, f"{type(exc).__name__}: {exc}"[:300]
    finally:
        if scratch_url is not None:
            try:
                drop_scratch_database(scratch_url=scratch_url)
                for suffix in ("-wal", "-shm"):
                    Path(scratch_url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
            except Exception as exc:  # noqa: BLE001
                v.notes.append(f"scratch database not dropped: {exc}"[:200])


# --------------------------------------------------------------------------- data integrity


@task(name="check-data-integrity", cache_policy=NO_CACHE, timeout_seconds=600)
def check_data_integrity(*, params: Any, thresholds: dict[str, Any], url: str | None = None) -> CheckResult:
    from tasks.data_quality import DEFAULT_TABLES, validate_database
    from tasks.runtime import store_engine
    from vvops.store import make_engine

    engine = make_engine(url) if url else store_engine()
    try:
        summary = validate_database(engine, tables=list(params.tables or DEFAULT_TABLES), sample_rows=params.sample_rows)
    finally:
        if url:
            engine.dispose()
    outcome = evaluate_data_integrity(validation=summary, threshold=thresholds.get("failed_expectations"))
    return [outcome], [MetricPoint("maintenance.data_integrity.failed_expectations", len(summary["failed"]))]


# --------------------------------------------------------------------------- metrics retention + VACUUM

ROLLUP_LABEL = "rollup"


def prune_and_roll_up(engine: Any, *, now: datetime, retention_days: int, raw_retention_days: int) -> tuple[int, int, int]:
    """Delete points older than retention_days; roll raw points older than raw_retention_days into daily means.

    Returns (deleted, rolled_up, aggregates written). Aggregates carry the label `rollup: 1d`.
    """
    from sqlalchemy import delete, select

    from vvops.store import Metric, session_scope

    horizon = now - timedelta(days=retention_days)
    raw_horizon = now - timedelta(days=raw_retention_days)
    with session_scope(engine, immediate=True) as session:
        deleted = session.execute(delete(Metric).where(Metric.ts < horizon)).rowcount or 0
        rows = session.execute(select(Metric.id, Metric.name, Metric.labels, Metric.ts, Metric.value)
                               .where(Metric.ts < raw_horizon)).all()
        groups: dict[tuple[str, str, datetime], list[float]] = defaultdict(list)
        labels_of: dict[tuple[str, str, datetime], dict] = {}
        raw_ids = []
        for r in rows:
            labels = dict(r.labels or {})
            if labels.get(ROLLUP_LABEL) == "1d":
                continue
            day = datetime(r.ts.year, r.ts.month, r.ts.day, tzinfo=timezone.utc)
            key = (r.name, Metric.make_labels_key(labels), day)
            groups[key].append(r.value)
            labels_of[key] = labels
            raw_ids.append(r.id)
        for (name, _, day), values in groups.items():
            labels = {**labels_of[(name, _, day)], ROLLUP_LABEL: "1d"}
            session.add(Metric(name=name, labels=labels, labels_key=Metric.make_labels_key(labels), ts=day,
                               value=sum(values) / len(values)))
        for i in range(0, len(raw_ids), 500):
            session.execute(delete(Metric).where(Metric.id.in_(raw_ids[i:i + 500])))
    return deleted, len(raw_ids), len(groups)


def optimise_database(engine: Any, *, force_vacuum: bool) -> list[str]:
    """SQLite: VACUUM when pages are free (or forced), then ANALYZE + PRAGMA optimize. PostgreSQL: VACUUM ANALYZE."""
    from sqlalchemy import text

    done = []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "sqlite":
            free = conn.execute(text("PRAGMA freelist_count")).scalar() or 0
            pages = conn.execute(text("PRAGMA page_count")).scalar() or 1
            if force_vacuum or free > max(16, pages // 10):
                conn.execute(text("VACUUM"))
                done.append(f"VACUUM ({free} free pages of {pages})")
            conn.execute(text("ANALYZE"))
            conn.execute(text("PRAGMA optimize"))
            done.append("ANALYZE")
        elif engine.dialect.name == "postgresql":
            for table in ("metrics", "check_results", "check_runs"):
                conn.execute(text(f"VACUUM (ANALYZE) {table}"))
            done.append("VACUUM ANALYZE metrics, check_results, check_runs")
    return done


@task(name="optimise-storage", cache_policy=NO_CACHE, timeout_seconds=900)
def optimise_storage(*, params: Any, now: datetime) -> CheckResult:
    from tasks.runtime import store_engine

    engine = store_engine()
    errors: list[str] = []
    deleted = rolled = aggregates = 0
    done: list[str] = []
    try:
        deleted, rolled, aggregates = prune_and_roll_up(engine, now=now, retention_days=params.retention_days,
                                                        raw_retention_days=params.raw_retention_days)
    except Exception as exc:  # noqa: BLE001
        errors.append(f"prune: {type(exc).__name__}: {exc}"[:200])
    try:
        done = optimise_database(engine, force_vacuum=deleted + rolled > 10_000)
    except Exception as exc:  # noqa: BLE001 - e.g. the store busy: VACUUM needs it to itself for a moment
        errors.append(f"optimise: {type(exc).__name__}: {exc}"[:200])
    outcome = evaluate_retention(deleted=deleted, rolled_up=rolled, aggregates=aggregates, optimise=done, errors=errors,
                                 retention_days=params.retention_days, raw_retention_days=params.raw_retention_days)
    return [outcome], [MetricPoint("maintenance.metrics.pruned", deleted + rolled, ts=now)]
