"""The hash-chained audit log: appends, verification and tamper detection on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from vvops.store import (
    GENESIS_HASH,
    AuditEntry,
    append_audit,
    audit_head,
    canonical_json,
    compute_audit_hash,
    make_engine,
    session_scope,
    verify_audit_chain,
)

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)


def _fill(engine, n: int = 10) -> list[AuditEntry]:
    entries = []
    with session_scope(engine) as session:
        for i in range(n):
            entries.append(
                append_audit(session, actor=f"user{i % 3}", action="approval.decide", subject=f"request:{i}",
                             source="slack", details={"i": i, "vote": "approve", "note": "ünïcode ✓", "ratio": 0.1,
                                                      "nested": {"b": [1, 2.0, None], "a": True}},
                             at=T0 + timedelta(seconds=i))  # fmt: skip
            )
    return entries


def _verify(engine, **kwargs):
    with session_scope(engine) as session:
        return verify_audit_chain(session, **kwargs)


def test_canonical_json() -> None:
    assert canonical_json({"b": 1, "a": [1.0, 2.5], "t": T0, "c": "é"}) == (
        '{"a":[1,2.5],"b":1,"c":"é","t":"2024-05-06T07:08:09.123456+00:00"}'
    )
    assert canonical_json({"t": datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))}) == (
        '{"t":"2024-01-01T00:00:00.000000+00:00"}'
    )
    assert canonical_json({"d": Decimal("1.10"), "s": {3, 1}}) == '{"d":"1.10","s":[1,3]}'
    with pytest.raises(ValueError):
        canonical_json({"t": datetime(2024, 1, 1)})
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_hash_is_pinned(monkeypatch) -> None:
    """The hash function is part of the stored data: changing it breaks every existing chain. It is an HMAC
    keyed with VVOPS_AUDIT_KEY (the devnet default key without it)."""
    monkeypatch.delenv("VVOPS_AUDIT_KEY", raising=False)
    monkeypatch.delenv("VVOPS_AUDIT_KEY_ENV", raising=False)

    def digest() -> str:
        return compute_audit_hash(id=1, at=T0, actor="alice", action="pause", subject="vault:main", source="ui",
                                  details={"reason": "oracle", "n": 1}, prev_hash=GENESIS_HASH)  # fmt: skip

    assert digest() == PINNED_DEVNET_HASH
    monkeypatch.setenv("VVOPS_AUDIT_KEY", "k" * 32)
    assert digest() == PINNED_KEYED_HASH
    monkeypatch.setenv("VVOPS_AUDIT_KEY_ENV", "OTHER_AUDIT_KEY")
    monkeypatch.setenv("OTHER_AUDIT_KEY", "k" * 32)
    monkeypatch.delenv("VVOPS_AUDIT_KEY")
    assert digest() == PINNED_KEYED_HASH


PINNED_DEVNET_HASH = "755784087de4de8f1aa52073ce25e5fd6fca00818004c0c5e806288d79c3d880"
PINNED_KEYED_HASH = "e09c5c556200888674e6c7f71df0d68812488497873ca64780b1984d084fde94"


def test_chain_of_entries_verifies(any_store_engine) -> None:
    entries = _fill(any_store_engine, 25)
    assert [e.id for e in entries] == list(range(1, 26))
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:], strict=False))
    result = _verify(any_store_engine, batch_size=7)
    assert (result.ok, result.checked, result.first_bad_id) == (True, 25, None)
    with session_scope(any_store_engine) as session:
        assert audit_head(session) == (25, entries[-1].hash)
        stored = session.get(AuditEntry, 3)
        assert stored.at == T0 + timedelta(seconds=2) and stored.at.tzinfo == timezone.utc
        assert stored.details["nested"] == {"a": True, "b": [1, 2, None]}


def test_empty_chain_verifies(any_store_engine) -> None:
    result = _verify(any_store_engine)
    assert result.ok and result.checked == 0


def test_default_timestamp_and_source(any_store_engine) -> None:
    with session_scope(any_store_engine) as session:
        entry = append_audit(session, actor="bot", action="check.run", subject="flow:hourly")
    assert entry.source == "system" and entry.details == {}
    assert entry.at.tzinfo is not None and abs(datetime.now(timezone.utc) - entry.at) < timedelta(minutes=1)
    assert _verify(any_store_engine).ok


def test_edited_row_is_detected(any_store_engine) -> None:
    _fill(any_store_engine, 10)
    with any_store_engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET details = :d WHERE id = 6"), {"d": '{"i": 6, "vote": "reject"}'})
    result = _verify(any_store_engine)
    assert not result.ok
    assert result.first_bad_id == 6 and result.checked == 5
    assert "modified" in result.reason


def test_edited_actor_is_detected(any_store_engine) -> None:
    _fill(any_store_engine, 5)
    with any_store_engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE id = 2"))
    assert _verify(any_store_engine).first_bad_id == 2


def test_deleted_middle_row_is_detected(any_store_engine) -> None:
    _fill(any_store_engine, 10)
    with any_store_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = 4"))
    result = _verify(any_store_engine)
    assert not result.ok
    assert result.first_bad_id == 5 and result.checked == 3
    assert "id 4 missing" in result.reason


def test_deleted_and_renumbered_row_is_detected(any_store_engine) -> None:
    """Closing the gap by renumbering does not help: the next row's prev_hash no longer matches."""
    _fill(any_store_engine, 6)
    with any_store_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = 3"))
        for old in (4, 5, 6):
            conn.execute(text("UPDATE audit_log SET id = :new WHERE id = :old"), {"new": old - 1, "old": old})
    result = _verify(any_store_engine)
    assert (result.ok, result.first_bad_id) == (False, 3)


def test_reordered_rows_are_detected(any_store_engine) -> None:
    _fill(any_store_engine, 6)
    with any_store_engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET id = -1 WHERE id = 3"))
        conn.execute(text("UPDATE audit_log SET id = 3 WHERE id = 4"))
        conn.execute(text("UPDATE audit_log SET id = 4 WHERE id = -1"))
    result = _verify(any_store_engine)
    assert (result.ok, result.first_bad_id) == (False, 3)
    assert "prev_hash" in result.reason


def test_truncated_tail_is_detected_with_an_anchor(any_store_engine) -> None:
    entries = _fill(any_store_engine, 5)
    with any_store_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = 5"))
    assert _verify(any_store_engine).ok  # nothing in the chain itself can tell
    result = _verify(any_store_engine, expected_head_hash=entries[-1].hash)
    assert not result.ok and "anchor" in result.reason


def test_bad_input_is_refused(any_store_engine) -> None:
    with session_scope(any_store_engine) as session:
        with pytest.raises(ValueError):
            append_audit(session, actor="", action="a", subject="s")
        with pytest.raises(ValueError):
            append_audit(session, actor="a", action="a", subject="s", at=datetime(2024, 1, 1))
        with pytest.raises(TypeError):
            append_audit(session, actor="a", action="a", subject="s", details={"x": object()})
        with pytest.raises(ValueError):
            append_audit(session, actor="a" * 201, action="a", subject="s")


def test_rolled_back_append_leaves_no_trace(any_store_engine) -> None:
    _fill(any_store_engine, 2)
    with pytest.raises(RuntimeError):
        with session_scope(any_store_engine) as session:
            append_audit(session, actor="a", action="a", subject="s")
            raise RuntimeError("abort")
    with session_scope(any_store_engine) as session:
        entry = append_audit(session, actor="a", action="a", subject="s")
    assert entry.id == 3
    assert _verify(any_store_engine).checked == 3


def test_concurrent_appends_keep_one_chain(store_url: str) -> None:
    threads_n, per_thread = 4, 15
    errors: list[BaseException] = []
    engine = make_engine(store_url)
    start = threading.Barrier(threads_n)

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                with session_scope(engine) as session:
                    append_audit(session, actor=f"t{n}", action="tick", subject=f"s{i}", details={"i": i})
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        result = _verify(engine)
        assert result.ok and result.checked == threads_n * per_thread, result
    finally:
        engine.dispose()


def test_hashes_are_the_same_on_sqlite_and_postgres(sqlite_store_url: str, postgres_store_url: str) -> None:
    chains = {}
    for name, url in (("sqlite", sqlite_store_url), ("postgres", postgres_store_url)):
        engine = make_engine(url)
        try:
            _fill(engine, 8)
            with session_scope(engine) as session:
                chains[name] = [
                    (e.id, e.hash, e.prev_hash, e.at, e.details)
                    for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
                ]
            assert _verify(engine).ok
        finally:
            engine.dispose()
    assert chains["sqlite"] == chains["postgres"]
    assert len(chains["sqlite"]) == 8
