"""Endpoint probes of the ops sweep (every minute): one request to each RPC URL of the environment and to each
HTTP endpoint of `infrastructure.http_endpoints`, recorded as `probe_up{endpoint}` (1/0) and
`probe_latency_ms{endpoint}`. The monthly performance review computes availability per endpoint and its p95
latency from these; the daily checks sample the same endpoints in more depth once a day."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.infra import as_utc
from tasks.runtime import chain_rpc_urls, ops_config
from tasks.store import record_metrics
from vvops.chain.rpc import RpcClient, endpoint_label
from vvops.metrics import MetricPoint

PROBE_TIMEOUT_S = 3.0


def _probe(call: Any) -> tuple[bool, float]:
    started = time.perf_counter()
    try:
        ok = bool(call())
    except Exception:  # noqa: BLE001 - any failure is a failed probe
        ok = False
    return ok, round((time.perf_counter() - started) * 1000, 1)


def probe_points(environment: str, *, now: datetime) -> list[MetricPoint]:
    """One probe per endpoint: RPC URLs answer eth_blockNumber, HTTP endpoints their expected status."""
    cfg = ops_config(environment)
    urls, _ = chain_rpc_urls(environment)
    targets: list[tuple[str, Any]] = []
    for url in urls:
        def rpc_up(url: str = url) -> bool:
            with RpcClient([url], timeout_s=PROBE_TIMEOUT_S, retries_per_url=0) as single:
                return single.call("eth_blockNumber") is not None
        targets.append((f"rpc:{endpoint_label(url)}", rpc_up))
    http = cfg.check("infrastructure.http_endpoints")
    if http.enabled:
        for ep in http.typed_params().endpoints:
            def http_up(ep: Any = ep) -> bool:
                answer = httpx.get(ep.url, timeout=min(PROBE_TIMEOUT_S, ep.timeout_s))
                return answer.status_code == ep.expected_status
            targets.append((f"http:{ep.name}", http_up))
    points = []
    for label, call in targets:
        ok, ms = _probe(call)
        points.append(MetricPoint("probe_up", 1.0 if ok else 0.0, {"chain": environment, "endpoint": label}, ts=now))
        if ok:
            points.append(MetricPoint("probe_latency_ms", ms, {"chain": environment, "endpoint": label}, ts=now))
    return points


@task(name="probe-endpoints", cache_policy=NO_CACHE, timeout_seconds=60)
def probe_endpoints(*, environment: str, now: datetime | None = None) -> dict[str, Any]:
    points = probe_points(environment, now=as_utc(now))
    record_metrics.fn(points=points)
    return {"probed": sum(p.name == "probe_up" for p in points), "down": sum(p.name == "probe_up" and not p.value
                                                                            for p in points)}
