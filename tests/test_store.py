"""The ops store: migrations, model round trips, constraints, the outbox and error redaction."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from vvops.store.safe_models import SafeConfirmation
from vvops.store.change_models import ParameterChange, TimelockOperation
from vvops.store import (
    TABLE_NAMES,
    Alert,
    ApprovalDecision,
    ApprovalRequest,
    AuditEntry,
    Backup,
    Base,
    ChainAction,
    CheckResult,
    CheckRun,
    Drill,
    Incident,
    IncidentEvent,
    Metric,
    NotificationOutbox,
    ProcessedBlock,
    SilenceRecord,
    SlackThread,
    StoreUnavailable,
    WatcherCheckpoint,
    claim_next,
    current_revision,
    default_store_url,
    downgrade,
    enqueue,
    head_revision,
    make_engine,
    mark_failed,
    mark_sent,
    migrate,
    ping,
    redact_url,
    session_scope,
)

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
CEST = timezone(timedelta(hours=2))


def _table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- migrations


def test_migrations_up_down_up(empty_store_url: str) -> None:
    assert current_revision(empty_store_url) is None
    migrate(empty_store_url)
    assert current_revision(empty_store_url) == head_revision()
    assert _table_names(empty_store_url) == set(TABLE_NAMES)

    downgrade(empty_store_url)
    assert current_revision(empty_store_url) is None
    assert _table_names(empty_store_url) == set()

    migrate(empty_store_url)
    assert current_revision(empty_store_url) == head_revision()
    assert _table_names(empty_store_url) == set(TABLE_NAMES)


def test_expected_tables_exist() -> None:
    assert set(TABLE_NAMES) == {
        "check_runs", "check_results", "metrics", "alerts", "incidents", "incident_events",
        "approval_requests", "approval_decisions", "notification_outbox", "slack_threads",
        "chain_actions", "watcher_checkpoints", "processed_blocks", "backups", "drills", "audit_log", "silences",
        "safe_transactions", "safe_confirmations", "parameter_changes", "timelock_operations", "action_items",
        "statement_notifications",
    }  # fmt: skip


def test_migrations_match_models(any_store_engine) -> None:
    with any_store_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_constraint_and_index_names_follow_the_convention(any_store_engine) -> None:
    inspector = inspect(any_store_engine)
    for table in TABLE_NAMES:
        for index in inspector.get_indexes(table):
            assert index["name"].startswith(("ix_", "uq_")), index
        for unique in inspector.get_unique_constraints(table):
            assert unique["name"] and unique["name"].startswith("uq_"), unique
        for fk in inspector.get_foreign_keys(table):
            assert fk["name"] and fk["name"].startswith("fk_"), fk
        for check in inspector.get_check_constraints(table):
            assert check["name"] and check["name"].startswith("ck_"), check


def test_sqlite_pragmas(store_engine) -> None:
    with store_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


# --------------------------------------------------------------------------- round trips


def _run(session: Session) -> CheckRun:
    run = CheckRun(flow_name="hourly", flow_run_id="7c1b2f9e-0000-4000-8000-000000000001", environment="devnet",
                   started_at=T0.astimezone(CEST), status="running")  # fmt: skip
    session.add(run)
    session.flush()
    return run


def _incident(session: Session) -> Incident:
    incident = Incident(key="INC-0001", title="Oracle stale", type="technical", severity="P1",
                        opened_at=T0.astimezone(CEST), is_drill=True, report={"timeline": [1, 2]})  # fmt: skip
    session.add(incident)
    session.flush()
    return incident


def _request(session: Session) -> ApprovalRequest:
    request = ApprovalRequest(procedure="pause_vault", subject="vault 0xabc", risk="high", proposer="alice",
                              required_role="guardian", quorum=2, expires_at=T0 + timedelta(hours=1),
                              requested_at=T0, details={"reason": "oracle"})  # fmt: skip
    session.add(request)
    session.flush()
    return request


def _safe_tx():
    from vvops.store.safe_models import SafeTransaction

    return SafeTransaction(idempotency_key="unpause:1:schedule", safe_address="0x" + "1" * 40, chain_id=31337,
                           nonce=3, safe_tx_hash="0x" + "9" * 64, spec={"to": "0x" + "2" * 40}, status="proposed",
                           executed_block=2**40)


def _action_item(session: Session):
    from datetime import date

    from vvops.store.action_item_models import ActionItem

    incident = _incident(session)
    return ActionItem(incident_key=incident.key, position=0, title="add a rate limit", owner="mei",
                      due_on=date(2024, 5, 20), status="done", created_at=T0, done_at=T0 + timedelta(days=2),
                      done_by="mei", evidence="https://git.example/pr/1")


def _statement_notification(session: Session):
    from vvops.store.notification_models import StatementNotification

    incident = _incident(session)
    return StatementNotification(incident_key=incident.key, statement_kind="initial", statement_sha256="a" * 64,
                                 channel="email", contact="Exchange listings", contact_kind="exchange",
                                 recipient="listings-ops@exchange.example", status="sent", detail=None, notified_at=T0)


FACTORIES: dict[str, Callable[[Session], object]] = {
    "check_runs": _run,
    "check_results": lambda s: CheckResult(run=_run(s), check_id="oracle.staleness", area="oracle", status="warn",
                                           value=901.5, threshold={"warn": 900, "crit": 3600}, message="stale",
                                           hint="check the feeder", details={"feed": "ETH/USD"},
                                           served_by="primary", duration_ms=12.5, created_at=T0),  # fmt: skip
    "metrics": lambda s: Metric(name="vault.tvl", labels={"vault": "main", "chain": "1"},
                                labels_key=Metric.make_labels_key({"vault": "main", "chain": "1"}), ts=T0,
                                value=1.5e6),  # fmt: skip
    "incidents": _incident,
    "incident_events": lambda s: IncidentEvent(incident=_incident(s), at=T0, kind="note", actor="bob",
                                               message="paused", data={"tx": "0x1"}),  # fmt: skip
    "alerts": lambda s: Alert(fingerprint="f" * 64, rule="oracle_stale", severity="P2", status="firing",
                              labels={"a": "b"}, annotations={"summary": "x"}, starts_at=T0, incident=_incident(s),
                              count=3, last_notified_at=T0),  # fmt: skip
    "approval_requests": _request,
    "approval_decisions": lambda s: ApprovalDecision(request=_request(s), approver="carol", decision="approve",
                                                     source="slack", accepted=True, decided_at=T0),  # fmt: skip
    "notification_outbox": lambda s: NotificationOutbox(idempotency_key="k1", sequence=1, channel="#ops",
                                                        thread_key="incident:INC-0001", kind="incident.opened",
                                                        payload={"text": "hi", "blocks": []}, next_attempt_at=T0),  # fmt: skip
    "silences": lambda s: SilenceRecord(id="sil-1", matchers=['alertname="rpc_down"'], starts_at=T0,
                                        ends_at=T0 + timedelta(hours=2), created_by="mei", reason="migration"),
    "safe_transactions": lambda s: _safe_tx(),
    "safe_confirmations": lambda s: SafeConfirmation(safe_tx=_safe_tx(), owner="0x" + "7" * 40, person="amara",
                                                     kind="eip712", signature="0x" + "8" * 130, source="cli",
                                                     accepted=True),
    "slack_threads": lambda s: SlackThread(thread_key="incident:INC-0001", channel="C123", ts="1715000000.000100"),
    "chain_actions": lambda s: ChainAction(idempotency_key="pause:1", chain_id=31337, from_address="0x" + "1" * 40,
                                           to_address="0x" + "2" * 40, nonce=7, selector="0x8456cb59",
                                           data_hash="0x" + "3" * 64, description="pause", status="broadcast",
                                           signed_tx_hash="0x" + "4" * 64, block_number=2**40),  # fmt: skip
    "watcher_checkpoints": lambda s: WatcherCheckpoint(chain_id=31337, last_block=123, last_block_hash="0x" + "5" * 64),
    "processed_blocks": lambda s: ProcessedBlock(chain_id=31337, number=123, hash="0x" + "6" * 64),
    "backups": lambda s: Backup(kind="sqlite", path="/tmp/ops.db.bak", checksum="ab" * 32, size=2**33, created_at=T0),
    "drills": lambda s: Drill(kind="restore", started_at=T0, finished_at=T0 + timedelta(seconds=42), rto_seconds=42.0,
                              rpo_seconds=0.5, ok=True, details={"steps": 3}),  # fmt: skip
    "parameter_changes": lambda s: ParameterChange(change_id="pc-1", environment="devnet", contract="vault",
                                                   parameter="feeBps", new_value=str(2**256 - 1), proposer="amara",
                                                   status="executed", executed_at=T0),
    "timelock_operations": lambda s: TimelockOperation(environment="devnet", chain_id=31337, timelock="0x" + "1" * 40,
                                                       operation_id="0x" + "2" * 64, idempotency_key="k",
                                                       target="0x" + "3" * 40, ready_at=2**40, status="scheduled"),
    "action_items": lambda s: _action_item(s),
    "statement_notifications": lambda s: _statement_notification(s),
    "audit_log": lambda s: AuditEntry(id=1, at=T0, actor="a", action="b", subject="c", source="system",
                                      details={}, prev_hash="0" * 64, hash="1" * 64),  # fmt: skip
}


def test_every_table_has_a_round_trip_factory() -> None:
    assert set(FACTORIES) == set(TABLE_NAMES)


def _columns(obj: object) -> dict[str, object]:
    mapper = inspect(type(obj))
    return {attr.key: getattr(obj, attr.key) for attr in mapper.column_attrs}


@pytest.mark.parametrize("table", sorted(FACTORIES))
def test_model_round_trip(any_store_engine, table: str) -> None:
    with session_scope(any_store_engine) as session:
        obj = FACTORIES[table](session)
        session.add(obj)
        session.flush()
        written = _columns(obj)
        model, identity = type(obj), inspect(obj).identity
    with session_scope(any_store_engine) as session:
        loaded = session.get(model, identity)
        assert loaded is not None
        read = _columns(loaded)
    assert read == written
    for key, value in read.items():
        if isinstance(value, datetime):
            assert value.tzinfo is not None and value.utcoffset() == timedelta(0), key


def test_datetimes_come_back_aware_utc(any_store_engine) -> None:
    with session_scope(any_store_engine) as session:
        run_id = _run(session).id
    with session_scope(any_store_engine) as session:
        started = session.get(CheckRun, run_id).started_at
    assert started == T0 and started.tzinfo == timezone.utc
    assert started.microsecond == 123456


def test_naive_datetimes_are_refused(any_store_engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        with session_scope(any_store_engine) as session:
            session.add(CheckRun(flow_name="x", environment="e", started_at=datetime(2024, 1, 1)))
            session.flush()


# --------------------------------------------------------------------------- constraints


def test_one_result_per_check_per_run(any_store_engine) -> None:
    with session_scope(any_store_engine) as session:
        run = _run(session)
        session.add(CheckResult(run_id=run.id, check_id="c1", area="a", status="ok"))
        session.flush()
        run_id = run.id
    with pytest.raises(IntegrityError):
        with session_scope(any_store_engine) as session:
            session.add(CheckResult(run_id=run_id, check_id="c1", area="a", status="crit"))
    with session_scope(any_store_engine) as session:
        session.add(CheckResult(run_id=run_id, check_id="c2", area="a", status="crit"))
    with session_scope(any_store_engine) as session:
        assert session.scalar(select(func.count()).select_from(CheckResult)) == 2


def test_status_values_are_checked(any_store_engine) -> None:
    with pytest.raises(IntegrityError):
        with session_scope(any_store_engine) as session:
            run = _run(session)
            session.add(CheckResult(run_id=run.id, check_id="c1", area="a", status="bogus"))


def test_deleting_a_run_deletes_its_results(any_store_engine) -> None:
    with session_scope(any_store_engine) as session:
        run = _run(session)
        session.add(CheckResult(run_id=run.id, check_id="c1", area="a", status="ok"))
        run_id = run.id
    with session_scope(any_store_engine) as session:
        session.execute(text("DELETE FROM check_runs WHERE id = :id"), {"id": run_id})
    with session_scope(any_store_engine) as session:
        assert session.scalar(select(func.count()).select_from(CheckResult)) == 0


def test_one_active_alert_per_fingerprint(any_store_engine) -> None:
    with session_scope(any_store_engine) as session:
        session.add(Alert(fingerprint="fp", rule="r", severity="P3", status="resolved", starts_at=T0))
        session.add(Alert(fingerprint="fp", rule="r", severity="P3", status="resolved", starts_at=T0))
        session.add(Alert(fingerprint="fp", rule="r", severity="P3", status="firing", starts_at=T0))
    with pytest.raises(IntegrityError):
        with session_scope(any_store_engine) as session:
            session.add(Alert(fingerprint="fp", rule="r", severity="P3", status="acknowledged", starts_at=T0))


def test_one_accepted_decision_per_approver(any_store_engine) -> None:
    with session_scope(any_store_engine) as session:
        request_id = _request(session).id
        for accepted in (False, False, True):
            session.add(ApprovalDecision(request_id=request_id, approver="dave", decision="approve", source="ui",
                                         accepted=accepted, refusal_reason=None if accepted else "not a guardian"))  # fmt: skip
    with pytest.raises(IntegrityError):
        with session_scope(any_store_engine) as session:
            session.add(ApprovalDecision(request_id=request_id, approver="dave", decision="reject", source="api",
                                         accepted=True))  # fmt: skip


def test_session_scope_rolls_back_on_error(any_store_engine) -> None:
    with pytest.raises(RuntimeError):
        with session_scope(any_store_engine) as session:
            _run(session)
            raise RuntimeError("boom")
    with session_scope(any_store_engine) as session:
        assert session.scalar(select(func.count()).select_from(CheckRun)) == 0


# --------------------------------------------------------------------------- outbox


def _enqueue(session: Session, key: str, thread_key: str | None = None) -> NotificationOutbox:
    row, _ = enqueue(session, idempotency_key=key, channel="#ops", kind="test", payload={"text": key},
                     thread_key=thread_key)  # fmt: skip
    return row


def test_outbox_enqueue_is_idempotent(any_store_engine) -> None:
    with session_scope(any_store_engine) as session:
        first, created = enqueue(session, idempotency_key="alert:fp:firing", channel="#ops", kind="alert",
                                 payload={"text": "first", "blocks": [{"type": "section"}]}, thread_key="alert:fp")  # fmt: skip
        assert created
    with session_scope(any_store_engine) as session:
        again, created = enqueue(session, idempotency_key="alert:fp:firing", channel="#other", kind="alert",
                                 payload={"text": "second"})  # fmt: skip
        assert not created
        assert again.id == first.id and again.payload["text"] == "first" and again.channel == "#ops"
        assert session.scalar(select(func.count()).select_from(NotificationOutbox)) == 1
        assert again.status == "pending" and again.attempts == 0 and again.thread_key == "alert:fp"


def test_outbox_claims_in_order_with_a_lease(any_store_engine) -> None:
    now = T0
    with session_scope(any_store_engine) as session:
        ids = [_enqueue(session, f"k{i}").id for i in range(3)]
    with session_scope(any_store_engine) as session:
        batch = claim_next(session, worker_id="w1", now=now, lease_seconds=60, limit=2)
        assert [r.id for r in batch] == ids[:2]
        assert all(r.status == "sending" and r.claimed_by == "w1" and r.attempts == 1 for r in batch)
        assert batch[0].lease_expires_at == now + timedelta(seconds=60)
    with session_scope(any_store_engine) as session:
        w2_now = now + timedelta(seconds=30)
        assert [r.id for r in claim_next(session, worker_id="w2", now=w2_now, lease_seconds=60)] == ids[2:]
        assert claim_next(session, worker_id="w3", now=now + timedelta(seconds=30), lease_seconds=60) == []
    # w1's lease runs out: the two rows go to w3, and w1 can no longer mark them.
    later = now + timedelta(seconds=61)
    with session_scope(any_store_engine) as session:
        batch = claim_next(session, worker_id="w3", now=later, lease_seconds=60)
        assert [r.id for r in batch] == ids[:2] and all(r.attempts == 2 for r in batch)
    with session_scope(any_store_engine) as session:
        assert not mark_sent(session, outbox_id=ids[0], worker_id="w1", now=later)
        assert mark_sent(session, outbox_id=ids[0], worker_id="w3", now=later, slack_ts="1.0001", slack_channel_id="C1")
    with session_scope(any_store_engine) as session:
        row = session.get(NotificationOutbox, ids[0])
        assert (row.status, row.slack_ts, row.slack_channel_id, row.sent_at) == ("sent", "1.0001", "C1", later)
        batch = claim_next(session, worker_id="w4", now=later + timedelta(hours=1), lease_seconds=5, limit=10)
        assert [r.id for r in batch] == ids[1:]


def test_outbox_mark_failed_retries_then_gives_up(any_store_engine) -> None:
    with session_scope(any_store_engine) as session:
        row_id = _enqueue(session, "k").id
    with session_scope(any_store_engine) as session:
        claim_next(session, worker_id="w", now=T0, lease_seconds=30)
        assert mark_failed(session, outbox_id=row_id, worker_id="w", error="ratelimited", retry_at=T0 + timedelta(minutes=1))
    with session_scope(any_store_engine) as session:
        assert claim_next(session, worker_id="w", now=T0 + timedelta(seconds=59), lease_seconds=30) == []
        [row] = claim_next(session, worker_id="w", now=T0 + timedelta(minutes=1), lease_seconds=30)
        assert row.attempts == 2 and row.last_error == "ratelimited"
        assert mark_failed(session, outbox_id=row_id, worker_id="w", error="x" * 10_000, retry_at=None)
    with session_scope(any_store_engine) as session:
        row = session.get(NotificationOutbox, row_id)
        assert row.status == "failed" and len(row.last_error) == 4000
        assert claim_next(session, worker_id="w", now=T0 + timedelta(days=1), lease_seconds=30) == []


def test_concurrent_workers_never_claim_the_same_row(any_store_engine) -> None:
    total, workers = 60, 4
    with session_scope(any_store_engine) as session:
        for i in range(total):
            _enqueue(session, f"k{i:03d}")
    claimed: dict[str, list[int]] = {f"w{n}": [] for n in range(workers)}
    errors: list[BaseException] = []
    start = threading.Barrier(workers)

    def work(worker_id: str) -> None:
        try:
            start.wait()
            while True:
                with session_scope(any_store_engine) as session:
                    batch = claim_next(session, worker_id=worker_id, now=T0, lease_seconds=300, limit=3)
                    claimed[worker_id].extend(r.id for r in batch)
                if not batch:
                    return
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    every = [i for ids in claimed.values() for i in ids]
    assert len(every) == len(set(every)) == total


# --------------------------------------------------------------------------- URLs and errors


def test_redact_url() -> None:
    assert redact_url("postgresql+psycopg://bob:s3cr%40t@db:5432/ops") == "postgresql+psycopg://bob:********@db:5432/ops"
    assert redact_url("postgresql://bob@db/ops") == "postgresql://bob@db/ops"
    assert redact_url("postgresql://db/ops?user=bob&password=hunter2") == "postgresql://db/ops?user=bob&password=********"
    assert redact_url("sqlite:////tmp/ops.db") == "sqlite:////tmp/ops.db"
    assert "p@ss:word" not in redact_url("postgresql://bob:p@ss:word@db/ops")


BAD_URLS = [
    pytest.param("postgresql+psycopg://vvops_nobody:Hunter2SuperSecret@127.0.0.1:1/nope", id="refused"),
    pytest.param("postgresql+psycopg://vvops_nobody:Hunter2SuperSecret@127.0.0.1:5432/vvops_missing_db", id="bad-login"),
]


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize("call", [migrate, current_revision, ping], ids=["migrate", "current_revision", "ping"])
def test_store_unavailable_never_shows_the_password(url: str, call, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreUnavailable) as info:
        call(url)
    rendered = "".join(traceback.format_exception(info.value)) + repr(info.value) + caplog.text
    assert "Hunter2SuperSecret" not in rendered
    assert "********" in str(info.value)


def test_session_errors_on_a_bad_url_are_redacted() -> None:
    engine = make_engine("postgresql+psycopg://vvops_nobody:Hunter2SuperSecret@127.0.0.1:1/nope")
    try:
        with pytest.raises(StoreUnavailable) as info:
            with session_scope(engine) as session:
                session.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    assert "Hunter2SuperSecret" not in "".join(traceback.format_exception(info.value))


def test_default_store_url(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("VVOPS_STORE_URL", "postgresql+psycopg://ops@db/ops")
    assert default_store_url() == "postgresql+psycopg://ops@db/ops"
    monkeypatch.delenv("VVOPS_STORE_URL")
    monkeypatch.setenv("VVOPS_HOME", str(tmp_path / "state"))
    assert default_store_url() == f"sqlite:///{tmp_path / 'state' / 'ops.db'}"
    assert (tmp_path / "state").is_dir()


def test_metric_labels_key_is_canonical() -> None:
    assert Metric.make_labels_key({"vault": "main", "chain": "1"}) == '{"chain":"1","vault":"main"}'
    assert Metric.make_labels_key(None) == "{}"
    assert Metric.make_labels_key({"a": "1,b=2"}) != Metric.make_labels_key({"a": "1", "b": "2"})


def test_immediate_session_takes_the_write_lock_up_front(store_engine) -> None:
    with session_scope(store_engine, immediate=True) as session:
        assert session.connection().exec_driver_sql("SELECT 1").scalar() == 1
        other = store_engine.raw_connection()
        try:
            other.execute("PRAGMA busy_timeout=0")
            with pytest.raises(Exception, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()
