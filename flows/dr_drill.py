"""Operational Resilience / Disaster Recovery / Recovery Testing: back up, restore, compare, measure RTO."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from prefect import flow, task

from tasks.reports import publish_markdown
from tasks.runtime import store_engine, store_url
from tasks.store import audit
from vvops import paths
from vvops.resilience.backup import (
    backup_store,
    drop_scratch_database,
    restore_store,
    scratch_database_url,
    table_fingerprints,
)
from vvops.store import make_engine, session_scope
from vvops.store.models import Backup, Drill


@task(name="record-drill", retries=3, retry_delay_seconds=[1, 2, 4])
def record_drill(*, started_at: datetime, rto_seconds: float, rpo_seconds: float, ok: bool, details: dict,
                 backup_path: str, backup_sha256: str, backup_size: int) -> int:
    with session_scope(store_engine(), immediate=True) as session:
        session.add(Backup(kind="drill", path=backup_path, checksum=backup_sha256, size=backup_size))
        drill = Drill(kind="store-restore", started_at=started_at, finished_at=datetime.now(timezone.utc),
                      rto_seconds=rto_seconds, rpo_seconds=rpo_seconds, ok=ok, details=details)
        session.add(drill)
        session.flush()
        return drill.id


@flow(name="dr-drill", log_prints=True)
def dr_drill(environment: str = "devnet", operator: str = "dr-drill") -> dict:
    """Back up the ops store, restore it into a scratch database and compare every table; drills never count as incidents."""
    started_at = datetime.now(timezone.utc)
    stamp = started_at.strftime("%Y%m%dT%H%M%S")
    url = store_url()
    source_before = table_fingerprints(store_engine())
    t0 = time.monotonic()
    backup = backup_store(url=url, dest_dir=paths.state_dir() / "backups", stamp=stamp)
    backup_done = time.monotonic()
    scratch_url = scratch_database_url(url=url, name=f"vvops_drill_{stamp.lower()}", scratch_dir=paths.state_dir() / "drills")
    try:
        restore_store(backup=backup, url=url, scratch_url=scratch_url)
        scratch_engine = make_engine(scratch_url)
        restored = table_fingerprints(scratch_engine)
        scratch_engine.dispose()
    finally:
        drop_scratch_database(scratch_url=scratch_url)
    rto = time.monotonic() - t0
    mismatched = sorted(t for t in source_before if source_before[t] != restored.get(t))
    ok = not mismatched
    drill_id = record_drill(started_at=started_at, rto_seconds=rto, rpo_seconds=0.0, ok=ok,
                            details={"mismatched_tables": mismatched, "tables": len(restored),
                                     "backup_seconds": backup_done - t0, "environment": environment},
                            backup_path=str(backup.path), backup_sha256=backup.sha256, backup_size=backup.size)
    audit(actor=operator, action="dr_drill.completed", subject=f"drill-{drill_id}",
          details={"ok": ok, "rto_seconds": round(rto, 3), "mismatched_tables": mismatched})
    rows = "\n".join(f"| {t} | {source_before[t]['rows']} | {restored.get(t, {}).get('rows')} | {'✅' if t not in mismatched else '❌'} |"
                     for t in sorted(source_before))
    publish_markdown(key="dr-drill", description=f"DR drill {'passed' if ok else 'FAILED'}",
                     markdown=f"# DR drill {stamp}\n\nRTO {rto:.3f} s · backup {backup.size} bytes sha256 `{backup.sha256[:16]}…`\n\n"
                     f"| table | source rows | restored rows | match |\n| --- | --- | --- | --- |\n{rows}\n")
    return {"drill_id": drill_id, "ok": ok, "rto_seconds": rto, "mismatched_tables": mismatched}
