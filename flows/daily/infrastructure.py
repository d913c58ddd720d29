"""Daily Operations / Infrastructure Checks: API availability and response times, database performance and
integrity, storage capacity, server performance — every check concurrently, driven by config/checks.yaml."""

from __future__ import annotations

from datetime import datetime

from prefect import flow

from tasks.infra import (
    check_database,
    check_host,
    check_storage,
    finish_section,
    probe_http_endpoint,
    unreachable_outcome,
)
from tasks.runtime import ops_config
from vvops.checks import CheckOutcome

AREA = "infrastructure"


def resolve_endpoint_url(url: str, configured_api_url: str) -> str:
    """`${VAR}` references resolved; a URL under the configured Prefect API (config's `prefect.api_url`) points at
    the API this run actually reports to (PREFECT_API_URL wins over config, as everywhere in the project)."""
    from prefect.settings import PREFECT_API_URL

    from vvops.config import resolve_env

    url = resolve_env(url)
    actual = (PREFECT_API_URL.value() or "").rstrip("/")
    configured = configured_api_url.rstrip("/")
    if actual and actual != configured and (url == configured or url.startswith(configured + "/")):
        return actual + url[len(configured):]
    return url


@flow(name="infrastructure-checks", log_prints=True)
def infrastructure_checks(environment: str = "devnet", now: datetime | None = None) -> list[CheckOutcome]:
    """HTTP endpoints (availability, p50/p95), the ops store, storage paths and the host; metrics recorded."""
    cfg = ops_config(environment)
    pending = []

    http = cfg.check("infrastructure.http_endpoints")
    if http.enabled:
        for endpoint in http.typed_params().endpoints:
            endpoint = endpoint.model_copy(update={"url": resolve_endpoint_url(endpoint.url, cfg.prefect.api_url)})
            success_t = http.thresholds.get("success_pct")
            future = probe_http_endpoint.with_options(task_run_name=f"probe-{endpoint.name}").submit(
                endpoint=endpoint, latency_threshold=http.thresholds.get("latency_ms"), success_threshold=success_t)
            pending.append((f"{http.id}.{endpoint.name}", AREA, future, unreachable_outcome(endpoint, success_t)))

    for check_id, task_fn in (("infrastructure.database", check_database), ("infrastructure.storage", check_storage),
                              ("infrastructure.host", check_host)):
        check = cfg.check(check_id)
        if check.enabled:
            future = task_fn.submit(params=check.typed_params(), thresholds=dict(check.thresholds))
            pending.append((check_id, AREA, future, None))

    return finish_section(pending, now=now)
