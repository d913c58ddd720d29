"""Disaster-recovery drill tasks: back up the ops store, restore it into a scratch database, validate the restore
with Great Expectations, and record the drill (RTO/RPO) — drills never count as incidents."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from prefect import task
from prefect.cache_policies import NONE as NO_CACHE

from tasks.runtime import store_engine, store_url
from vvops import paths
from vvops.resilience.backup import (BackupFile, backup_store, drop_scratch_database, newest_row_at, restore_comparison,
                                     restore_store, scratch_database_url, table_fingerprints,
                                     validate_restore_with_gx, write_checksum_sidecar)
from vvops.store import make_engine, session_scope
from vvops.store.models import Backup, Drill

DRILL = dict(cache_policy=NO_CACHE, retries=0)


@task(name="fingerprint-store", **DRILL)
def fingerprint_store() -> dict[str, Any]:
    engine = store_engine()
    newest = newest_row_at(engine)
    return {"tables": table_fingerprints(engine), "newest_row_at": newest.isoformat() if newest else None}


@task(name="backup-store", **DRILL)
def take_backup(*, stamp: str) -> dict[str, Any]:
    """SQLite online backup API or pg_dump -Fc, with a `.sha256` sidecar."""
    backup = backup_store(url=store_url(), dest_dir=paths.state_dir() / "backups", stamp=stamp)
    write_checksum_sidecar(backup)
    return {"path": str(backup.path), "size": backup.size, "sha256": backup.sha256}


@task(name="restore-and-validate", **DRILL)
def restore_and_validate(*, backup: dict[str, Any], stamp: str, source: dict[str, Any],
                         source_after: dict[str, Any] | None = None, use_gx: bool = True) -> dict[str, Any]:
    """Restore into a scratch database, fingerprint it, validate with GE against the source, drop the scratch DB.

    A table written to while the backup ran (it differs between `source` and `source_after`) is compared with
    both and passes when it matches either."""
    from pathlib import Path

    url = store_url()
    scratch_url = scratch_database_url(url=url, name=f"vvops_drill_{stamp.lower()}",
                                       scratch_dir=paths.state_dir() / "drills")
    try:
        restore_store(backup=BackupFile(Path(backup["path"]), backup["size"], backup["sha256"]), url=url,
                      scratch_url=scratch_url)
        engine = make_engine(scratch_url)
        try:
            restored = table_fingerprints(engine)
            newest = newest_row_at(engine)
        finally:
            engine.dispose()
        reference = dict(source["tables"])
        if source_after:
            for table, fp in source_after["tables"].items():
                if restored.get(table) == fp and reference.get(table) != fp:
                    reference[table] = fp        # written during the backup: the later state is what was dumped
        comparison = restore_comparison(reference, restored)
        validation = validate_restore_with_gx(comparison, scratch_url) if use_gx else {
            "success": all(r["rows"] == r["source_rows"] and r["sha256"] == r["source_sha256"] for r in comparison),
            "results": [], "failed": []}
    finally:
        drop_scratch_database(scratch_url=scratch_url)
    restored_at = datetime.now(timezone.utc)
    mismatched = [r["table"] for r in comparison if r["rows"] != r["source_rows"] or r["sha256"] != r["source_sha256"]]
    return {"comparison": comparison, "mismatched_tables": mismatched, "validation": validation,
            "newest_row_at": newest.isoformat() if newest else None, "restored_at": restored_at.isoformat(),
            "backend": "sqlite" if url.startswith("sqlite") else "postgresql"}


@task(name="record-drill", retries=3, retry_delay_seconds=[1, 2, 4], cache_policy=NO_CACHE)
def record_drill(*, started_at: datetime, rto_seconds: float, rpo_seconds: float | None, ok: bool,
                 details: dict[str, Any], backup: dict[str, Any]) -> int:
    with session_scope(store_engine(), immediate=True) as session:
        session.add(Backup(kind="drill", path=backup["path"], checksum=backup["sha256"], size=backup["size"],
                           details={"drill": True}))
        drill = Drill(kind="store-restore", started_at=started_at, finished_at=datetime.now(timezone.utc),
                      rto_seconds=rto_seconds, rpo_seconds=rpo_seconds, ok=ok, details=details)
        session.add(drill)
        session.flush()
        return drill.id


def last_backup_before(at: datetime) -> dict[str, Any] | None:
    """The newest non-drill backup before `at` (the realistic recovery point if disaster struck then)."""
    from sqlalchemy import select

    with session_scope(store_engine()) as session:
        b = session.scalar(select(Backup).where(Backup.kind != "drill", Backup.created_at < at)
                           .order_by(Backup.created_at.desc()).limit(1))
        return {"kind": b.kind, "created_at": b.created_at.isoformat(), "path": b.path} if b else None
