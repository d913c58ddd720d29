"""vvops.history: seeded, deterministic history that makes the reviews non-empty."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from vvops.history import generate_history
from vvops.store import make_engine, migrate, session_scope, verify_audit_chain
from vvops.store.models import Metric

NOW = datetime(2026, 3, 2, 7, tzinfo=timezone.utc)


def _store(path):
    url = f"sqlite:///{path}"
    migrate(url)
    return make_engine(url)


def _fingerprint(engine):
    with engine.connect() as conn:
        rows = conn.execute(select(Metric.name, Metric.labels_key, Metric.ts, Metric.value).order_by(Metric.id)).all()
    return [(n, k, t.isoformat(), round(v, 9)) for n, k, t, v in rows]


def test_same_seed_same_history_and_the_audit_chain_verifies(tmp_path):
    a, b = _store(tmp_path / "a.db"), _store(tmp_path / "b.db")
    counts = generate_history(engine=a, days=21, seed=3, now=NOW)
    assert counts == generate_history(engine=b, days=21, seed=3, now=NOW)
    assert _fingerprint(a) == _fingerprint(b)
    assert counts["metrics"] > 21 * 24 * 9 and counts["check_runs"] == 21 and counts["incidents"] >= 4
    with session_scope(a) as s:
        assert verify_audit_chain(s).ok
    c = _store(tmp_path / "c.db")
    generate_history(engine=c, days=21, seed=4, now=NOW)
    assert _fingerprint(c) != _fingerprint(a)
