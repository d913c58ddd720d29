"""The audit log can't be silently cut or rewritten (issue 13 item 4): the chain is an HMAC keyed outside the
database, and a published head (rows + hash) tells truncation, emptying and rewrite-and-rehash apart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.test_audit import T0, _fill
from vvops.store import make_engine, session_scope
from vvops.store.audit import GENESIS_HASH, AuditAnchor, audit_anchor, canonical_json, verify_audit_chain

KEY = "audit-key-of-this-test-0123456789abcdef"


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("VVOPS_AUDIT_KEY", KEY)
    monkeypatch.delenv("VVOPS_AUDIT_KEY_ENV", raising=False)


@pytest.fixture
def filled(keyed, sqlite_store_url):
    engine = make_engine(sqlite_store_url)
    _fill(engine, 12)
    with session_scope(engine) as session:
        anchor = audit_anchor(session)
    yield engine, anchor
    engine.dispose()


def _verify(engine, anchor=None):
    with session_scope(engine) as session:
        return verify_audit_chain(session, anchor=anchor)


def _rehash_from(engine, first_id: int, hasher) -> None:
    """What an attacker with write access does: change a row, then recompute every hash after it."""
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT id, at, actor, action, subject, source, details, prev_hash FROM audit_log "
                                 "ORDER BY id")).all()
        prev = GENESIS_HASH
        for row in rows:
            if row.id >= first_id:
                details = json.loads(row.details) if isinstance(row.details, str) else row.details
                body = {"id": row.id, "at": (T0 + timedelta(seconds=row.id - 1)).isoformat(timespec="microseconds"),
                        "actor": row.actor, "action": row.action, "subject": row.subject, "source": row.source,
                        "details": details, "prev_hash": prev}
                digest = hasher(canonical_json(body).encode())
                conn.execute(text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE id = :i"),
                             {"p": prev, "h": digest, "i": row.id})
                prev = digest
            else:
                prev = conn.execute(text("SELECT hash FROM audit_log WHERE id = :i"), {"i": row.id}).scalar()


def test_an_intact_log_matches_its_anchor(filled):
    engine, anchor = filled
    result = _verify(engine, anchor)
    assert result.ok and result.checked == 12 and not result.devnet_key


def test_cutting_the_last_rows_is_truncation(filled):
    engine, anchor = filled
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id > 9"))
    assert _verify(engine).ok                       # the chain alone cannot tell
    result = _verify(engine, anchor)
    assert (result.ok, result.problem) == (False, "truncated") and "3 rows after id 9 are gone" in result.reason


def test_emptying_the_table_is_detected(filled):
    engine, anchor = filled
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    result = _verify(engine, anchor)
    assert (result.ok, result.problem) == (False, "emptied")


def test_rewriting_a_row_and_rehashing_without_the_key_is_detected(filled):
    import hashlib

    engine, _ = filled
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'daniel' WHERE id = 5"))
    _rehash_from(engine, 5, lambda body: hashlib.sha256(body).hexdigest())
    result = _verify(engine)
    assert (result.ok, result.problem, result.first_bad_id) == (False, "rewritten", 5)


def test_rewriting_with_the_key_is_caught_by_the_anchor(filled):
    import hashlib
    import hmac

    engine, anchor = filled
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'daniel' WHERE id = 5"))
    _rehash_from(engine, 5, lambda body: hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest())
    assert _verify(engine).ok                        # a key holder can re-chain ...
    result = _verify(engine, anchor)                 # ... but not match the published head
    assert (result.ok, result.problem) == (False, "rewritten")


def test_anchor_formats():
    head = "ab" * 32
    assert AuditAnchor.parse(f"12:{head}") == AuditAnchor(12, head)
    assert AuditAnchor.parse(json.dumps({"rows": 3, "head_hash": head, "at": "x"})) == AuditAnchor(3, head)
    with pytest.raises(ValueError):
        AuditAnchor.parse("12:short")


def test_verify_audit_cli_names_the_problem(filled, sqlite_store_url, tmp_path):
    engine, anchor = filled
    anchor_file = tmp_path / "anchors.jsonl"
    anchor_file.write_text(json.dumps({"rows": anchor.rows, "head_hash": anchor.head_hash}) + "\n")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id > 10"))
    env = {**os.environ, "VVOPS_STORE_URL": sqlite_store_url, "VVOPS_AUDIT_KEY": KEY, "VVOPS_HOME": str(tmp_path)}
    env.pop("VVOPS_AUDIT_KEY_ENV", None)
    for given in (str(anchor), str(anchor_file)):
        result = subprocess.run([sys.executable, "-m", "vvops.cli", "store", "verify-audit", "--anchor", given],
                                capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stdout.startswith("audit chain BROKEN (truncated): 2 rows after id 10 are gone"), result.stdout
    wrong_key = subprocess.run([sys.executable, "-m", "vvops.cli", "store", "verify-audit"], capture_output=True,
                               text=True, env={**env, "VVOPS_AUDIT_KEY": "another-key"}, timeout=120)
    assert wrong_key.returncode == 1 and "BROKEN (rewritten)" in wrong_key.stdout


def test_the_sweep_publishes_a_changed_head_once(ops_flows, ops_store_engine, tmp_path, monkeypatch):
    from tasks.audit_anchor import last_published, publish_audit_anchor
    from vvops.store import append_audit

    first = publish_audit_anchor.fn(environment="devnet", notify_slack=False)
    again = publish_audit_anchor.fn(environment="devnet", notify_slack=False)
    with session_scope(ops_store_engine, immediate=True) as session:
        append_audit(session, actor="test", action="test.anchor", subject="anchor", source="test")
    moved = publish_audit_anchor.fn(environment="devnet", notify_slack=False)
    path = first.get("file") or moved["file"]
    lines = [json.loads(line) for line in open(path).read().splitlines()]
    assert not again["published"] and moved["published"] and moved["rows"] == first["rows"] + 1
    assert last_published(Path(path)) == AuditAnchor(moved["rows"], moved["head_hash"])
    assert lines[-1]["rows"] == moved["rows"]
