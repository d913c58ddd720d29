"""Routine maintenance: log rotation on real files, backup verification (restore into a scratch database and a
Great Expectations suite), data-integrity suites, metrics retention + VACUUM, and the sub-flow end to end."""

from __future__ import annotations

import gzip
import os
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from tasks.maintenance import prune_and_roll_up, rotate_logs
from vvops.config.check_params import BackupsParams, LogFolder, LogRotationParams
from vvops.config.schema import Threshold

AGE = {"backup_age_hours": Threshold(warn=26, crit=50, direction="above", unit="h")}
FAILED = {"failed_expectations": Threshold(crit=1, direction="above", unit="expectations")}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _age(path, days: float) -> None:
    ts = (_now() - timedelta(days=days)).timestamp()
    os.utime(path, (ts, ts))


def test_log_rotation_compresses_old_logs_and_deletes_expired_archives(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for name, days in {"live.log": 0.1, "yesterday.log": 2, "old.log": 10, "ancient.log": 40}.items():
        (logs / name).write_text(f"{name} line\n" * 500)
        _age(logs / name, days)
    with gzip.open(logs / "kept.log.gz", "wt") as f:
        f.write("x")
    _age(logs / "kept.log.gz", 20)
    with gzip.open(logs / "expired.log.gz", "wt") as f:
        f.write("x")
    _age(logs / "expired.log.gz", 31)
    (logs / "notes.txt").write_text("not a log")
    _age(logs / "notes.txt", 100)
    (logs / "held.log").write_text("a quiet service still writes here\n")
    _age(logs / "held.log", 5)
    params = LogRotationParams(folders=(LogFolder(path=str(logs)), LogFolder(path=str(tmp_path / "missing"))),
                               compress_after_days=1, retention_days=30)

    with open(logs / "held.log", "a"):
        (outcome,), _ = rotate_logs.fn(params=params, now=_now())

    assert sorted(p.name for p in logs.iterdir()) == ["held.log", "kept.log.gz", "live.log", "notes.txt", "old.log.gz",
                                                      "yesterday.log.gz"]
    assert gzip.open(logs / "old.log.gz", "rt").read() == "old.log line\n" * 500
    assert abs((logs / "old.log.gz").stat().st_mtime - (_now() - timedelta(days=10)).timestamp()) < 60
    assert outcome.status == "ok" and outcome.value == 4.0
    assert "compressed 2 logs" in outcome.message and "deleted 2 archives" in outcome.message
    assert outcome.details["missing_folders"] == [str(tmp_path / "missing")]
    assert outcome.details["skipped_open"] == [str(logs / "held.log")]


def test_data_quality_suite_fails_on_injected_nulls(tmp_path):
    from tasks.maintenance import check_data_integrity
    from vvops.config.check_params import DataIntegrityParams

    db = tmp_path / "dq.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE metrics (id INTEGER PRIMARY KEY, name TEXT, labels TEXT, labels_key TEXT, ts TEXT, value REAL)")
    conn.execute("CREATE TABLE check_results (id INTEGER PRIMARY KEY, run_id INTEGER, check_id TEXT, area TEXT, "
                 "status TEXT, duration_ms REAL)")
    conn.executemany("INSERT INTO metrics (name, labels, labels_key, ts, value) VALUES (?, '{}', '{}', ?, ?)",
                     [("infra.host.cpu_pct", "2026-11-26 10:00:00", 12.5), ("infra.host.cpu_pct", "2026-11-26 11:00:00", None)])
    conn.executemany("INSERT INTO check_results (run_id, check_id, area, status, duration_ms) VALUES (?, ?, ?, ?, ?)",
                     [(1, "infrastructure.host", "infrastructure", "ok", 3.0),
                      (1, "infrastructure.database", "infrastructure", "maybe", 2.0)])
    conn.commit()
    conn.close()
    params = DataIntegrityParams(tables=("metrics", "check_results"))

    (outcome,), points = check_data_integrity.fn(params=params, thresholds=FAILED, url=f"sqlite:///{db}")

    assert outcome.status == "crit" and outcome.value == 2.0
    assert any(f.startswith("metrics.value: expect_column_values_to_not_be_null (1 unexpected") for f in outcome.details["failed"])
    assert any(f.startswith("check_results.status: expect_column_values_to_be_in_set") and "maybe" in f
               for f in outcome.details["failed"])
    assert outcome.details["tables"] == {"metrics": 2, "check_results": 2}


def test_metrics_retention_prunes_and_rolls_up(tmp_path):
    from sqlalchemy import func, select

    from vvops.store import Base, Metric, make_engine, session_scope

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    Base.metadata.create_all(engine)
    now = datetime(2026, 11, 26, 12, tzinfo=timezone.utc)
    with session_scope(engine) as s:
        for days, value in ((500, 1.0), (40, 2.0), (40, 4.0), (1, 5.0)):
            s.add(Metric(name="m", labels={"a": 1}, labels_key=Metric.make_labels_key({"a": 1}),
                         ts=now - timedelta(days=days, hours=1), value=value))
    try:
        assert prune_and_roll_up(engine, now=now, retention_days=400, raw_retention_days=30) == (1, 2, 1)
        with engine.connect() as conn:
            rows = conn.execute(select(Metric.labels, Metric.value).order_by(Metric.ts)).all()
            assert [(r.labels, r.value) for r in rows] == [({"a": 1, "rollup": "1d"}, 3.0), ({"a": 1}, 5.0)]
        assert prune_and_roll_up(engine, now=now, retention_days=400, raw_retention_days=30) == (0, 0, 0)
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Metric)) == 2
        from tasks.maintenance import optimise_database

        # VACUUM runs outside a transaction (it used to fail with "cannot VACUUM from within a transaction")
        assert optimise_database(engine, force_vacuum=True)[0].startswith("VACUUM")
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- backups (need the store: Prefect test server)



@pytest.fixture
def backup_dir(ops_flows, tmp_path):
    from vvops.resilience.backup import backup_store, write_checksum_sidecar
    from vvops.store import default_store_url

    backup = backup_store(url=default_store_url(), dest_dir=tmp_path / "backups", stamp=_now().strftime("%Y%m%dT%H%M%S"))
    write_checksum_sidecar(backup)
    return backup


def _verify(backup_dir_path, **kw):
    from tasks.maintenance import verify_newest_backup

    params = BackupsParams(folder=str(backup_dir_path), pattern="ops-*", **kw)
    (outcome,), _ = verify_newest_backup.fn(params=params, thresholds=AGE, now=_now())
    return outcome


@pytest.mark.prefect
@pytest.mark.devnet
def test_a_good_backup_restores_and_validates(backup_dir):
    outcome = _verify(backup_dir.path.parent)

    assert outcome.status == "ok", outcome.message
    assert outcome.details["checksum_ok"] is True and outcome.details["checksum_source"] == "sidecar"
    assert outcome.details["restore_ok"] is True
    validation = outcome.details["validation"]
    assert validation["success"] and validation["evaluated"] >= 2 and "alembic_version" in validation["tables"]
    assert not list((backup_dir.path.parent.parent).glob("**/vv_backup_verify_*"))


@pytest.mark.prefect
@pytest.mark.devnet
def test_a_stale_backup_is_crit(backup_dir):
    _age(backup_dir.path, 3)  # 72 h > crit 50 h

    outcome = _verify(backup_dir.path.parent, restore_check=False)

    assert outcome.status == "crit" and outcome.value == pytest.approx(72, abs=0.1)
    assert "too old" in outcome.hint


@pytest.mark.prefect
@pytest.mark.devnet
def test_a_corrupted_backup_is_crit(backup_dir):
    data = bytearray(backup_dir.path.read_bytes())
    for i in range(4096, 4160):  # flip bits in the second page
        data[i] ^= 0xFF
    backup_dir.path.write_bytes(bytes(data))

    outcome = _verify(backup_dir.path.parent)

    assert outcome.status == "crit" and outcome.details["checksum_ok"] is False
    assert "checksum does not match" in outcome.message


@pytest.mark.prefect
@pytest.mark.devnet
def test_a_backup_that_does_not_restore_is_crit(backup_dir):
    backup_dir.path.write_bytes(b"this is not a database" * 100)  # and the sidecar agrees with it
    from vvops.resilience.backup import BackupFile, file_sha256, write_checksum_sidecar

    write_checksum_sidecar(BackupFile(backup_dir.path, 2200, file_sha256(backup_dir.path)))

    outcome = _verify(backup_dir.path.parent)

    assert outcome.status == "crit" and outcome.details["restore_ok"] is False


@pytest.mark.prefect
@pytest.mark.devnet
def test_no_backup_is_crit(ops_flows, tmp_path):
    outcome = _verify(tmp_path / "empty")
    assert (outcome.status, outcome.message) == ("crit", "no backup found")


@pytest.mark.prefect
@pytest.mark.devnet
def test_routine_maintenance_subflow(ops_flows, ops_store_engine):
    from sqlalchemy import select

    from flows.daily.routine_maintenance import routine_maintenance
    from vvops.store import Backup

    outcomes = routine_maintenance(environment="devnet")

    by_id = {o.id: o for o in outcomes}
    assert set(by_id) == {"maintenance.log_rotation", "maintenance.backups", "maintenance.data_integrity",
                          "maintenance.metrics_retention"}
    assert all(o.status == "ok" for o in outcomes), [(o.id, o.message) for o in outcomes if o.status != "ok"]
    assert by_id["maintenance.backups"].details["restore_ok"] is True  # devnet: the flow took a backup first
    with ops_store_engine.connect() as conn:
        kinds = conn.execute(select(Backup.kind)).scalars().all()
    assert "daily" in kinds


@pytest.mark.prefect
@pytest.mark.devnet
def test_taking_backups_keeps_the_newest_and_records_them(ops_flows, ops_store_engine, tmp_path):
    from sqlalchemy import select

    from tasks.maintenance import take_store_backup
    from vvops.store import Backup

    params = BackupsParams(folder=str(tmp_path / "b"), pattern="ops-*", take_backup=True, keep_last=2)
    taken = [take_store_backup.fn(params=params, now=_now() + timedelta(seconds=i)) for i in range(3)]

    names = sorted(p.name for p in (tmp_path / "b").iterdir())
    kept = sorted(os.path.basename(t["path"]) for t in taken[1:])
    assert names == sorted(kept + [k + ".sha256" for k in kept])
    assert taken[2]["removed"] == [os.path.basename(taken[0]["path"])]
    with ops_store_engine.connect() as conn:
        row = conn.execute(select(Backup).where(Backup.path == taken[2]["path"])).one()
    assert (row.kind, row.checksum) == ("daily", taken[2]["sha256"]) and row.details["rows"]["alembic_version"] == 1
