"""Disaster-recovery drill: backup → restore into scratch → Great Expectations validation → RTO/RPO, on SQLite and
PostgreSQL; drills never count as incidents."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from vvops.resilience.backup import restore_comparison, table_fingerprints
from vvops.store import make_engine, session_scope
from vvops.store.models import AuditEntry, Backup, Drill, Incident

pytestmark = [pytest.mark.prefect]


def _seed(url: str) -> None:
    from vvops.store import append_audit

    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            for i in range(3):
                append_audit(session, actor="test", action="seed", subject=f"row-{i}", source="flow", details={"i": i})
    finally:
        engine.dispose()




@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_drill_restores_validates_with_gx_and_records_rto_rpo(backend, ops_flows, request, monkeypatch):
    from flows.dr_drill import dr_drill
    from tasks.runtime import store_url

    if backend == "postgres":
        url = request.getfixturevalue("postgres_store_url")
        monkeypatch.setenv("VVOPS_STORE_URL", url)
        assert store_url() == url
    else:
        url = store_url()
    _seed(url)

    result = dr_drill(environment="devnet", with_incident=True)

    assert result["ok"] and result["mismatched_tables"] == [] and result["backend"] == (
        "sqlite" if backend == "sqlite" else "postgresql")
    assert result["validation"]["success"] and result["validation"]["failed"] == []
    assert result["validation"]["engine"] == "great_expectations" and result["validation"]["expectations"] > 3
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            drill = conn.execute(select(Drill).where(Drill.id == result["drill_id"])).one()
            incident = conn.execute(select(Incident).where(Incident.key == result["incident"])).one()
            backups = conn.execute(select(Backup.kind)).scalars().all()
            audit = conn.execute(select(AuditEntry.action).order_by(AuditEntry.id.desc()).limit(1)).scalar()
    finally:
        engine.dispose()
    assert drill.ok and drill.rto_seconds > 0 and drill.rpo_seconds is not None and drill.rpo_seconds >= 0
    assert drill.details["is_drill"] is True and drill.details["next_drill_due"]
    assert incident.is_drill and incident.status == "closed"
    assert "drill" in backups and audit == "dr_drill.completed"


def test_drill_incidents_never_count_in_incident_metrics(ops_flows, ops_store_engine):
    from tasks.store import count_open_incidents, open_incident

    before = count_open_incidents()
    open_incident(title="tabletop", incident_type="operational", severity="P1", commander="amara",
                  opened_by="test", is_drill=True)
    assert count_open_incidents() == before
    from vvops.procedures.incidents import IncidentTimes, incident_metrics

    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert incident_metrics([IncidentTimes(t, t, None, t, is_drill=True)])["incidents"] == 0


def test_a_corrupted_restore_fails_the_gx_validation(sqlite_store_url):
    from vvops.resilience.backup import validate_restore_with_gx

    _seed(sqlite_store_url)
    engine = make_engine(sqlite_store_url)
    try:
        source = table_fingerprints(engine)
    finally:
        engine.dispose()
    tampered = {t: dict(fp) for t, fp in source.items()}
    tampered["audit_log"] = {"rows": 2, "sha256": "0" * 64} if "audit_log" in tampered else tampered["audit_log"]
    report = validate_restore_with_gx(restore_comparison(source, tampered))
    assert report["success"] is False
    assert {r["kwargs"].get("column_A") for r in report["failed"]} == {"rows", "sha256"}
