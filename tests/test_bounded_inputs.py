"""Bounded inputs (issue 13 item 7): the Slack endpoint refuses oversized requests before reading them and
keeps a flood of unsigned requests to a bounded number of audit rows; YAML aliases cannot explode."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from vvops.config import check_config
from vvops.config.schema import Person
from vvops.slack_app.server import MAX_BODY
from vvops.store.models import AuditEntry

SECRET = "bounded-inputs-signing-secret-0123456789"


@pytest.fixture
def store_engine(sqlite_store_url):
    engine = create_engine(sqlite_store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def bare_endpoint(slack_endpoint, store_engine):
    """The real endpoint (uvicorn, h11) on a free port, with its own store; no Prefect needed for refusals."""
    person = Person(id="daniel", name="Daniel", email="daniel@example.org", slack_user_id="U01DANIEL1",
                    timezone="UTC", roles=("ops_lead",))
    return slack_endpoint(signing_secret=SECRET, environment="devnet", engine=store_engine, people=[person],
                          resume=lambda *a: "resumed", acknowledge=lambda *a: [], refusal_window_s=3600)


def _raw_request(base: str, head: bytes, *, timeout: float = 20.0) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def _refusals(engine) -> list[AuditEntry]:
    with engine.connect() as conn:
        return list(conn.execute(select(AuditEntry).where(AuditEntry.action.like("slack.request.refused%"))
                                 .order_by(AuditEntry.id)))


def test_a_declared_200_mib_body_is_refused_before_it_is_sent(bare_endpoint, store_engine):
    # Only the headers go out: the old endpoint waited for 200 MiB, this one answers at once.
    head = (b"POST /slack/interactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 209715200\r\nX-Slack-Request-Timestamp: 1\r\nX-Slack-Signature: v0=00\r\n\r\n")
    answer = _raw_request(bare_endpoint, head)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert [r.details["reason"] for r in _refusals(store_engine)] == ["too_large"]


def test_a_streamed_body_is_cut_at_the_limit(bare_endpoint):
    def chunks():
        for _ in range(MAX_BODY // 65536 + 8):
            yield b"x" * 65536

    response = httpx.post(f"{bare_endpoint}/slack/interactions", content=chunks(), timeout=30)
    assert response.status_code == 413


def test_huge_headers_are_refused_and_the_audit_row_stays_small(bare_endpoint, store_engine):
    big = httpx.post(f"{bare_endpoint}/slack/interactions", content=b"payload=%7B%7D", timeout=30,
                     headers={"X-Slack-Request-Timestamp": "9" * 60_000, "X-Slack-Signature": "v0=" + "a" * 64})
    assert big.status_code in (400, 431)
    # Under the header limit but far longer than any real header: refused, stored bounded.
    long_ts = httpx.post(f"{bare_endpoint}/slack/interactions", content=b"payload=%7B%7D", timeout=30,
                         headers={"X-Slack-Request-Timestamp": "7" * 9_000, "X-Slack-Signature": "v0=" + "b" * 64})
    assert long_ts.status_code == 401
    rows = _refusals(store_engine)
    assert rows, "refusals are audited"
    for row in rows:
        assert len(json.dumps(row.details)) < 4096
        assert "7" * 300 not in json.dumps(row.details)


def test_a_flood_of_unsigned_requests_writes_a_bounded_number_of_rows(bare_endpoint, store_engine):
    with httpx.Client(timeout=30) as client:
        codes = {client.post(f"{bare_endpoint}/slack/interactions", content=b"payload=%7B%7D").status_code
                 for _ in range(300)}
    assert codes == {401}
    rows = _refusals(store_engine)
    assert [r.action for r in rows] == ["slack.request.refused"]   # one full row; the rest are counted
    with store_engine.connect() as conn:
        assert conn.scalar(select(func.count(AuditEntry.id))) == 1


def test_refusal_aggregator_writes_the_count_when_the_window_closes():
    from vvops.store.refusals import RefusalAggregator

    now = [0.0]
    written: list[dict] = []
    agg = RefusalAggregator(written.append, window_s=60, clock=lambda: now[0])
    entry = {"actor": "a", "action": "x.refused", "subject": "s", "source": "cli", "rule": "r", "reason": "k",
             "details": {"n": 1}}
    assert [agg.refuse("k", entry) for _ in range(1000)].count(True) == 1
    now[0] = 61
    assert agg.flush() == 1
    assert [w["action"] for w in written] == ["x.refused", "x.refused.aggregated"]
    assert written[1]["details"]["count"] == 999 and len(written[1]["details"]["samples"]) == 3


def test_a_yaml_alias_bomb_fails_config_check_fast(config_copy):
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghi":
        bomb += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    Path(config_copy.dir, "procedures.yaml").write_text(bomb)
    problems = check_config(config_copy.dir, None)   # the old loader walked all 9**9 values
    assert any("aliases expand to more than" in p for p in problems), problems
