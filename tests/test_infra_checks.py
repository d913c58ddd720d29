"""Infrastructure checks: real HTTP servers on 127.0.0.1, the real ops store, disk and host; the sub-flow end to end."""

from __future__ import annotations

import socket
import sqlite3

import pytest

from tasks.infra import (
    EndpointUnreachable,
    check_database,
    check_host,
    check_storage,
    probe_http_endpoint,
    unreachable_outcome,
)
from vvops.checks.infra import HttpSample, evaluate_http_endpoint, percentile
from vvops.config.check_params import DatabaseParams, HostParams, HttpEndpoint, StorageParams, StoragePath
from vvops.config.schema import Threshold

LATENCY = Threshold(warn=150, crit=3000, direction="above", unit="ms")
SUCCESS = Threshold(warn=99, crit=90, direction="below", unit="%")


def _probe(url: str, **kw):
    endpoint = HttpEndpoint(name="api", url=url, samples=kw.pop("samples", 3), timeout_s=kw.pop("timeout_s", 2), **kw)
    try:
        outcomes, points = probe_http_endpoint.fn(endpoint=endpoint, latency_threshold=LATENCY, success_threshold=SUCCESS)
    except EndpointUnreachable as exc:
        return unreachable_outcome(endpoint, SUCCESS)(exc)[0], []
    return outcomes[0], points


def test_percentiles_interpolate():
    assert percentile([], 50) is None
    assert percentile([10], 95) == 10
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


def test_a_healthy_endpoint_is_ok_with_latency_metrics(http_server):
    base = http_server({"/health": (200, '{"status":"ok"}', 0.0)})

    outcome, points = _probe(f"{base}/health", expected_body='"status":"ok"')

    assert outcome.id == "infrastructure.http_endpoints.api"
    assert outcome.status == "ok", outcome.message
    assert outcome.details["success_pct"] == 100.0 and outcome.details["samples"] == 3
    assert {p.name for p in points} == {"infra.http.success_pct", "infra.http.latency_p50_ms", "infra.http.latency_p95_ms"}


def test_a_slow_endpoint_warns_on_p95(http_server):
    base = http_server({"/health": (200, "ok", 0.2)})

    outcome, _ = _probe(f"{base}/health", samples=2)

    assert outcome.status == "warn"
    assert outcome.value >= 150 and outcome.threshold["warn"] == 150
    assert "p95" in outcome.message


def test_a_wrong_body_or_status_is_crit(http_server):
    base = http_server({"/health": (200, '{"status":"degraded"}', 0.0), "/broken": (503, "oops", 0.0)})

    body, _ = _probe(f"{base}/health", expected_body='"status":"ok"')
    status, _ = _probe(f"{base}/broken")

    assert (body.status, body.value) == ("crit", 0.0)
    assert "unexpected body" in body.message
    assert status.status == "crit" and "status 503 (expected 200)" in status.message


def test_a_down_endpoint_is_crit_not_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    outcome, _ = _probe(f"http://127.0.0.1:{port}/health", samples=2)

    assert outcome.status == "crit"
    assert "unreachable" in outcome.message and outcome.hint


def test_timeouts_are_client_side_and_reported(http_server):
    base = http_server({"/hang": (200, "late", 1.5)})

    outcome, _ = _probe(f"{base}/hang", samples=1, timeout_s=0.3)

    assert outcome.status == "crit" and "timed out after 0.3 s" in outcome.message


def test_evaluate_http_partial_failures_use_success_pct():
    samples = [HttpSample(200, 10.0), HttpSample(200, 12.0), HttpSample(500, 11.0), HttpSample(200, 9.0)]
    outcome = evaluate_http_endpoint(name="x", url="http://x", samples=samples, expected_status=200,
                                     latency_threshold=LATENCY, success_threshold=SUCCESS)
    assert (outcome.status, outcome.value) == ("crit", 75.0)


def test_database_check_on_the_ops_store(ops_home):
    from vvops.store import default_store_url

    outcomes, points = check_database.fn(params=DatabaseParams(samples=3), url=default_store_url(), thresholds={
        "latency_ms": Threshold(warn=100, crit=1000, direction="above", unit="ms"),
        "size_mb": Threshold(warn=1024, crit=4096, direction="above", unit="MB")})

    (outcome,) = outcomes
    assert outcome.id == "infrastructure.database" and outcome.status == "ok", outcome.message
    assert outcome.details["integrity"] == "ok" and outcome.details["backend"] == "sqlite"
    assert outcome.details["size_mb"] > 0 and len(outcome.details["latencies_ms"]) == 3
    assert {p.name for p in points} == {"infra.db.latency_p50_ms", "infra.db.size_mb"}


def test_database_check_finds_a_corrupted_sqlite_file(tmp_path):
    db = tmp_path / "bad.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("CREATE INDEX t_v ON t (v)")
    conn.executemany("INSERT INTO t (v) VALUES (?)", [(f"value-{i:06d}" * 4,) for i in range(3000)])
    conn.commit()
    conn.close()
    data = bytearray(db.read_bytes())
    page = 4096
    data[page * 5 + 200: page * 5 + 1200] = b"\xff" * 1000  # trash the middle of a b-tree page
    db.write_bytes(bytes(data))

    (outcome,), _ = check_database.fn(params=DatabaseParams(samples=1), thresholds={}, url=f"sqlite:///{db}")

    assert outcome.status == "crit" and outcome.details["integrity"] != "ok"
    assert "corruption" in outcome.hint


def test_storage_reports_utilisation_and_a_missing_path(tmp_path):
    params = StorageParams(paths=(StoragePath(path=str(tmp_path), label="scratch"),
                                  StoragePath(path=str(tmp_path / "nope"), label="gone")))
    outcomes, points = check_storage.fn(params=params, thresholds={
        "used_pct": Threshold(warn=0.001, crit=0.002, direction="above", unit="%")})

    by_id = {o.id: o for o in outcomes}
    assert by_id["infrastructure.storage.scratch"].status == "crit"  # any real disk is > 0.002 % used
    assert 0 < by_id["infrastructure.storage.scratch"].value < 100
    assert by_id["infrastructure.storage.gone"].status == "error"
    assert {p.name for p in points} == {"infra.storage.used_pct", "infra.storage.free_bytes"}


def test_host_metrics():
    (outcome,), points = check_host.fn(params=HostParams(cpu_sample_s=0.1), thresholds={
        "cpu_pct": Threshold(warn=101, crit=102, direction="above", unit="%"),
        "mem_pct": Threshold(warn=101, crit=102, direction="above", unit="%")})

    assert outcome.id == "infrastructure.host" and outcome.status == "ok"
    assert 0 <= outcome.details["mem_pct"] <= 100 and outcome.details["cpus"] >= 1
    assert {"infra.host.cpu_pct", "infra.host.mem_pct"} <= {p.name for p in points}


def ops_flows_api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def test_endpoint_urls_follow_the_prefect_api_in_use(monkeypatch):
    from flows.daily.infrastructure import resolve_endpoint_url

    monkeypatch.setenv("VV_TEST_HOST", "status.example")
    assert resolve_endpoint_url("https://${VV_TEST_HOST}/health", "http://127.0.0.1:4200/api") == "https://status.example/health"


@pytest.mark.prefect
@pytest.mark.devnet
def test_infrastructure_subflow_runs_every_check_and_records_metrics(ops_flows, ops_store_engine):
    from sqlalchemy import func, select

    from flows.daily.infrastructure import infrastructure_checks
    from vvops.store import Metric

    outcomes = infrastructure_checks(environment="devnet")

    ids = {o.id for o in outcomes}
    assert {"infrastructure.http_endpoints.prefect-api", "infrastructure.database", "infrastructure.storage.state_dir",
            "infrastructure.host"} <= ids
    by_id = {o.id: o for o in outcomes}
    assert by_id["infrastructure.database"].status == "ok"
    # config says http://127.0.0.1:4200/api/health; the run probes the Prefect API it reports to (the test server)
    prefect_api = by_id["infrastructure.http_endpoints.prefect-api"]
    assert prefect_api.status == "ok", prefect_api.message
    assert prefect_api.served_by.startswith(ops_flows_api_url()) and prefect_api.served_by.endswith("/health")
    assert all(o.status != "error" for o in outcomes), [o for o in outcomes if o.status == "error"]
    with ops_store_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Metric).where(Metric.name == "infra.host.cpu_pct")) >= 1


@pytest.mark.prefect
def test_a_check_that_raises_becomes_an_error_outcome_and_the_others_still_report(prefect_api):
    from prefect import flow, task

    from tasks.infra import gather_outcomes
    from vvops.checks import CheckOutcome

    @task(retries=0)
    def broken():
        raise RuntimeError("disk on fire")

    @task
    def fine():
        return [CheckOutcome("infrastructure.fine", "infrastructure", "ok", "fine")], []

    @flow
    def two_checks():
        return gather_outcomes([("infrastructure.broken", "infrastructure", broken.submit(), None),
                                ("infrastructure.fine", "infrastructure", fine.submit(), None)])

    outcomes, points = two_checks()

    assert [(o.id, o.status) for o in outcomes] == [("infrastructure.broken", "error"), ("infrastructure.fine", "ok")]
    assert "RuntimeError: disk on fire" in outcomes[0].message and points == []
