"""Operational Resilience / Disaster Recovery / Recovery Testing: back up the ops store, restore it into a scratch
database, validate the restore with Great Expectations (row counts and sha256 per table against the source),
measure RTO and RPO, report.

- RTO: seconds from the start of the backup until the restored copy is validated.
- RPO: age of the newest row in the restored database when the restore is validated (the data a restore from
  this backup brings back is at most that old); the age of the newest earlier non-drill backup is reported too
  (`last_backup_age_seconds`: the recovery point if disaster had struck at the start of the drill).
- Drills never count in incident metrics: the `drills` table holds them, and the optional drill incident
  (`with_incident=True`) is flagged `is_drill` and resolved at once.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from prefect import flow

from tasks.drills import fingerprint_store, last_backup_before, record_drill, restore_and_validate, take_backup
from tasks.preflight import preflight
from tasks.reports import publish_markdown
from tasks.runtime import ops_config
from tasks.store import audit


@flow(name="dr-drill", log_prints=True)
def dr_drill(environment: str = "devnet", operator: str = "dr-drill", use_great_expectations: bool = True,
             with_incident: bool = False) -> dict:
    """Back up, restore into scratch, validate (GE), measure RTO/RPO and record the drill."""
    if (not_ready := preflight(environment)) is not None:
        return not_ready
    started_at = datetime.now(timezone.utc)
    stamp = started_at.strftime("%Y%m%dT%H%M%S%f")
    incident_key = None
    if with_incident:
        from tasks.store import open_incident

        incident_key = open_incident(title=f"DR drill {stamp}: ops store lost (simulated)", incident_type="operational",
                                     severity="P2", commander=operator, opened_by=operator, is_drill=True,
                                     data={"drill": "store-restore"})
    source = fingerprint_store()
    t0 = time.monotonic()
    backup = take_backup(stamp=stamp)
    backup_seconds = time.monotonic() - t0
    source_after = fingerprint_store()
    restore = restore_and_validate(backup=backup, stamp=stamp, source=source, source_after=source_after,
                                   use_gx=use_great_expectations)
    rto = time.monotonic() - t0
    restored_at = datetime.fromisoformat(restore["restored_at"])
    newest = restore["newest_row_at"]
    rpo = (restored_at - datetime.fromisoformat(newest)).total_seconds() if newest else None
    previous = last_backup_before(started_at)
    last_backup_age = (started_at - datetime.fromisoformat(previous["created_at"])).total_seconds() if previous else None
    ok = bool(restore["validation"]["success"]) and not restore["mismatched_tables"]
    every = ops_config(environment).procedures.drills.dr_drill_every_days
    details = {"environment": environment, "backend": restore["backend"], "mismatched_tables": restore["mismatched_tables"],
               "tables": len(restore["comparison"]), "backup_seconds": round(backup_seconds, 3),
               "validation": {"engine": "great_expectations" if use_great_expectations else "fingerprints",
                              "success": restore["validation"]["success"],
                              "expectations": len(restore["validation"]["results"]),
                              "failed": restore["validation"]["failed"][:20]},
               "newest_row_at": newest, "last_backup": previous, "last_backup_age_seconds": last_backup_age,
               "next_drill_due": (started_at + timedelta(days=every)).date().isoformat(), "is_drill": True,
               "incident": incident_key}
    drill_id = record_drill(started_at=started_at, rto_seconds=rto, rpo_seconds=rpo, ok=ok, details=details,
                            backup=backup)
    if incident_key:
        from tasks.incidents import add_event, update_incident

        now = datetime.now(timezone.utc)
        add_event(key=incident_key, kind="resolved", actor=operator,
                  message=f"drill {drill_id}: restore {'validated' if ok else 'FAILED'} (RTO {rto:.2f} s)")
        update_incident(key=incident_key, status="closed", acknowledged_at=now, resolved_at=now, closed_at=now)
    audit(actor=operator, action="dr_drill.completed", subject=f"drill-{drill_id}",
          details={"ok": ok, "rto_seconds": round(rto, 3), "rpo_seconds": rpo, "is_drill": True,
                   "mismatched_tables": restore["mismatched_tables"], "backend": restore["backend"]})
    rows = "\n".join(f"| {r['table']} | {r['source_rows']} | {r['rows']} | "
                     f"{'✅' if r['table'] not in restore['mismatched_tables'] else '❌'} |" for r in restore["comparison"])
    fmt = lambda s: "-" if s is None else f"{s:.1f} s"  # noqa: E731
    publish_markdown(key="dr-drill", description=f"DR drill {'passed' if ok else 'FAILED'} (drill, not an incident)",
                     markdown=f"# DR drill {stamp} ({restore['backend']})\n\n**{'PASSED' if ok else 'FAILED'}** · "
                     f"RTO {rto:.3f} s · RPO {fmt(rpo)} · last scheduled backup age {fmt(last_backup_age)}\n\n"
                     f"Backup {backup['size']} bytes sha256 `{backup['sha256'][:16]}…` · validation: "
                     f"{details['validation']['engine']} ({details['validation']['expectations']} expectations)\n\n"
                     f"| table | source rows | restored rows | match |\n| --- | --- | --- | --- |\n{rows}\n\n"
                     f"Next drill due {details['next_drill_due']} (every {every} days). Drills never count in "
                     "incident metrics.\n")
    return {"drill_id": drill_id, "ok": ok, "rto_seconds": rto, "rpo_seconds": rpo,
            "mismatched_tables": restore["mismatched_tables"], "validation": details["validation"],
            "backend": restore["backend"], "incident": incident_key}
