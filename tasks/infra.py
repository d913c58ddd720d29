"""Infrastructure check tasks: HTTP endpoints, the ops store, storage and the host (playbook: Infrastructure Checks).

Each task measures and returns `(outcomes, metric points)`; the rules live in `vvops.checks.infra`. Every
external call has its own client-side timeout (a task timeout does not interrupt blocking code).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from tasks.policies import NETWORK_RETRIES
from vvops.checks import CheckOutcome
from vvops.checks.infra import HttpSample, evaluate_database, evaluate_host, evaluate_http_endpoint, evaluate_storage
from vvops.metrics import MetricPoint
from vvops.paths import state_dir

CheckResult = tuple[list[CheckOutcome], list[MetricPoint]]


class EndpointUnreachable(Exception):
    """Every sample failed to connect: worth a retry (with back-off and jitter) before calling it down."""


def resolve_path(path: str) -> Path:
    """Config paths are relative to the state dir unless absolute."""
    p = Path(path)
    return p if p.is_absolute() else state_dir() / p


def gather_outcomes(pending: list[tuple[str, str, PrefectFuture, Callable[[BaseException], list[CheckOutcome]] | None]]) -> CheckResult:
    """Wait for every submitted check; a failed one becomes an `error` outcome (or what its on_error says).

    `pending` holds (check id, area, future, on_error) tuples; on_error maps the exception to outcomes.
    """
    outcomes: list[CheckOutcome] = []
    points: list[MetricPoint] = []
    for check_id, area, future, on_error in pending:
        try:
            found, metrics = future.result(raise_on_failure=True)
            outcomes += found
            points += metrics
        except BaseException as exc:  # noqa: BLE001 - one check never stops the others
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            if on_error is not None:
                outcomes += on_error(exc)
            else:
                outcomes.append(CheckOutcome(check_id, area, "error", f"check could not run: {type(exc).__name__}: {exc}"[:500],
                                             hint="see the task's log in the flow run"))
    return outcomes, points


def finish_section(pending: list[tuple[str, str, PrefectFuture, Callable[[BaseException], list[CheckOutcome]] | None]],
                   now: datetime | None = None) -> list[CheckOutcome]:
    """Gather a sub-flow's checks and store their metrics (dated `now` when given); metrics are secondary, the
    verdicts always return."""
    from tasks.store import record_metrics
    from vvops.metrics import stamped

    outcomes, points = gather_outcomes(pending)
    try:
        record_metrics(points=stamped(points, now))
    except Exception as exc:
        print(f"could not record {len(points)} metric points: {exc}")
    return outcomes


def as_utc(now: datetime | None) -> datetime:
    """`now` (default: the current time) as an aware UTC datetime; a naive one is taken as UTC."""
    now = now or datetime.now(timezone.utc)
    return now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now


# --------------------------------------------------------------------------- HTTP endpoints


@task(name="probe-http-endpoint", cache_policy=NO_CACHE, timeout_seconds=120, **NETWORK_RETRIES)
def probe_http_endpoint(*, endpoint: Any, latency_threshold: Any, success_threshold: Any) -> CheckResult:
    """N requests to one endpoint (client timeout per request); raises EndpointUnreachable if none connected."""
    import httpx

    samples: list[HttpSample] = []
    with httpx.Client(timeout=httpx.Timeout(endpoint.timeout_s), verify=endpoint.verify_tls,
                      follow_redirects=False) as client:
        for _ in range(endpoint.samples):
            t0 = time.perf_counter()
            try:
                resp = client.request(endpoint.method, endpoint.url)
                latency = (time.perf_counter() - t0) * 1000
                body_ok = endpoint.expected_body is None or endpoint.expected_body in resp.text
                samples.append(HttpSample(resp.status_code, latency, body_ok))
            except httpx.TimeoutException:
                samples.append(HttpSample(None, None, False, f"timed out after {endpoint.timeout_s:g} s"))
            except httpx.HTTPError as exc:
                samples.append(HttpSample(None, None, False, f"{type(exc).__name__}: {exc}"[:200]))
    if all(s.status is None for s in samples) and not any("timed out" in (s.error or "") for s in samples):
        raise EndpointUnreachable("; ".join(sorted({s.error or "" for s in samples})))
    outcome = evaluate_http_endpoint(name=endpoint.name, url=endpoint.url, samples=samples,
                                     expected_status=endpoint.expected_status,
                                     latency_threshold=latency_threshold, success_threshold=success_threshold)
    labels = {"endpoint": endpoint.name}
    d = outcome.details
    points = [MetricPoint("infra.http.success_pct", d["success_pct"], labels)]
    if d["latency_p50_ms"] is not None:
        points += [MetricPoint("infra.http.latency_p50_ms", d["latency_p50_ms"], labels),
                   MetricPoint("infra.http.latency_p95_ms", d["latency_p95_ms"], labels)]
    return [outcome], points


def unreachable_outcome(endpoint: Any, success_threshold: Any) -> Callable[[BaseException], list[CheckOutcome]]:
    """After the retries: an endpoint nobody could connect to is crit (down), not an error of the check."""
    def _on_error(exc: BaseException) -> list[CheckOutcome]:
        samples = [HttpSample(None, None, False, str(exc) if isinstance(exc, EndpointUnreachable)
                              else f"{type(exc).__name__}: {exc}")]
        return [evaluate_http_endpoint(name=endpoint.name, url=endpoint.url, samples=samples,
                                       expected_status=endpoint.expected_status, latency_threshold=None,
                                       success_threshold=success_threshold)]
    return _on_error


# --------------------------------------------------------------------------- database


def _db_measure(engine: Any, probe_query: str, samples: int) -> dict[str, Any]:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    backend = engine.dialect.name
    out: dict[str, Any] = {"backend": backend, "latencies_ms": [], "size_mb": None, "integrity": "ok",
                           "connections": None, "extra": {}}
    with engine.connect() as conn:
        for _ in range(samples):
            t0 = time.perf_counter()
            conn.execute(text(probe_query)).fetchall()
            out["latencies_ms"].append((time.perf_counter() - t0) * 1000)
        if backend == "sqlite":
            page_size = conn.execute(text("PRAGMA page_size")).scalar() or 0
            pages = conn.execute(text("PRAGMA page_count")).scalar() or 0
            free = conn.execute(text("PRAGMA freelist_count")).scalar() or 0
            out["size_mb"] = page_size * pages / 1024 / 1024
            try:
                rows = [r[0] for r in conn.execute(text("PRAGMA integrity_check(20)")).fetchall()]
                fk = conn.execute(text("PRAGMA foreign_key_check")).fetchall()
            except (DBAPIError, MemoryError) as exc:  # SQLite gives up on badly damaged pages
                rows, fk = [f"integrity_check failed: {type(exc).__name__} {str(exc)[:150]}".strip()], []
            problems = [r for r in rows if r != "ok"]
            if fk:
                problems.append(f"{len(fk)} rows violate foreign keys")
            out["integrity"] = "ok" if not problems else "; ".join(problems[:5])
            out["extra"] = {"freelist_pages": free, "page_size": page_size}
        elif backend == "postgresql":
            conn.execute(text("SET LOCAL statement_timeout = '30s'"))
            out["size_mb"] = (conn.execute(text("SELECT pg_database_size(current_database())")).scalar() or 0) / 1024 / 1024
            out["connections"] = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")).scalar()
            max_conn = conn.execute(text("SHOW max_connections")).scalar()
            # Catalog check: every user table is visible and analysable in the catalog, none is invalid.
            invalid = conn.execute(text(
                "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisvalid AND n.nspname = current_schema()"
            )).scalar() or 0
            tables = conn.execute(text(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'r' AND n.nspname = current_schema()")).scalar()
            out["integrity"] = "ok" if not invalid else f"{invalid} invalid indexes"
            out["extra"] = {"max_connections": int(max_conn) if max_conn else None, "tables": tables}
    return out


@task(name="check-database", cache_policy=NO_CACHE, timeout_seconds=120, retries=1, retry_delay_seconds=2)
def check_database(*, params: Any, thresholds: dict[str, Any], url: str | None = None) -> CheckResult:
    """Probe latency, size, integrity and connections of the ops store (or the database at `url`)."""
    from tasks.runtime import store_engine
    from vvops.store import make_engine

    engine = make_engine(url) if url else store_engine()
    try:
        m = _db_measure(engine, params.probe_query, params.samples)
    finally:
        if url:
            engine.dispose()
    outcome = evaluate_database(backend=m["backend"], latencies_ms=m["latencies_ms"], size_mb=m["size_mb"],
                                integrity=m["integrity"], connections=m["connections"],
                                latency_threshold=thresholds.get("latency_ms"), size_threshold=thresholds.get("size_mb"),
                                extra=m["extra"])
    labels = {"backend": m["backend"]}
    points = [MetricPoint("infra.db.latency_p50_ms", outcome.details["latency_p50_ms"], labels)]
    if m["size_mb"] is not None:
        points.append(MetricPoint("infra.db.size_mb", m["size_mb"], labels))
    if m["connections"] is not None:
        points.append(MetricPoint("infra.db.connections", m["connections"], labels))
    return [outcome], points


# --------------------------------------------------------------------------- storage and host


@task(name="check-storage", cache_policy=NO_CACHE, timeout_seconds=60)
def check_storage(*, params: Any, thresholds: dict[str, Any]) -> CheckResult:
    outcomes, points = [], []
    for entry in params.paths:
        path = resolve_path(entry.path)
        name = _name(entry.label or entry.path)
        if not path.exists():
            outcomes.append(CheckOutcome(f"infrastructure.storage.{name}", "infrastructure", "error",
                                         f"{path} does not exist", hint="fix the path in checks.yaml or create it"))
            continue
        usage = shutil.disk_usage(path)
        outcome = evaluate_storage(name=name, path=str(path), total_bytes=usage.total, used_bytes=usage.used,
                                   free_bytes=usage.free, threshold=thresholds.get("used_pct"))
        outcomes.append(outcome)
        points += [MetricPoint("infra.storage.used_pct", outcome.value, {"path": name}),
                   MetricPoint("infra.storage.free_bytes", usage.free, {"path": name})]
    return outcomes, points


def _name(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "root"


@task(name="check-host", cache_policy=NO_CACHE, timeout_seconds=60)
def check_host(*, params: Any, thresholds: dict[str, Any]) -> CheckResult:
    import os

    import psutil

    cpu = psutil.cpu_percent(interval=params.cpu_sample_s)
    mem = psutil.virtual_memory()
    swap = psutil.swap_memory()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    extra = {"load_1m": load[0], "load_5m": load[1], "cpus": psutil.cpu_count(), "mem_available_bytes": mem.available,
             "swap_pct": swap.percent, "boot_time": datetime.fromtimestamp(psutil.boot_time(), timezone.utc).isoformat()}
    # The verdict uses sustained load: the lower of the sample and the 1-minute load average per core, so one
    # busy second (a compile, a test run) is not an incident; both are recorded.
    load_pct = 100.0 * load[0] / max(psutil.cpu_count() or 1, 1)
    sustained = min(cpu, load_pct) if load[0] else cpu
    extra.update(cpu_sample_pct=cpu, load_1m_pct=round(load_pct, 1))
    outcome = evaluate_host(cpu_pct=round(sustained, 1), mem_pct=mem.percent, cpu_threshold=thresholds.get("cpu_pct"),
                            mem_threshold=thresholds.get("mem_pct"), extra=extra)
    points = [MetricPoint("infra.host.cpu_pct", cpu), MetricPoint("infra.host.mem_pct", mem.percent),
              MetricPoint("infra.host.load_1m", load[0]), MetricPoint("infra.host.swap_pct", swap.percent)]
    return [outcome], points
