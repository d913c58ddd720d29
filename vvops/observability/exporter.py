"""The `vvops metrics-endpoint` service: the ops store and Prefect as Prometheus metrics, and Alertmanager's
webhook into our alerting.

    GET  /metrics                    Prometheus exposition format (store state, Prefect flow runs)
    POST /api/alertmanager/webhook   Alertmanager webhook payload (version 4): opens alerts and incidents
    GET  /healthz                    200

The watcher serves its own `/metrics` (per-block figures) on another port: `serve_registry`.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from prometheus_client import CollectorRegistry, disable_created_metrics, make_asgi_app, start_http_server
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from vvops.observability.store_collector import StoreCollector

log = logging.getLogger("vvops.metrics")

DEFAULT_EXPORTER_PORT = 9470     # vvops metrics-endpoint (store, Prefect, Alertmanager webhook)
DEFAULT_WATCHER_PORT = 9471      # vvops watch
WEBHOOK_PATH = "/api/alertmanager/webhook"


def ops_registry(engine: Engine, *, prefect_api_url: str | None = None) -> CollectorRegistry:
    """A registry with the store collector and, given an API URL, the Prefect flow-run collector."""
    disable_created_metrics()   # no `_created` twin of every counter sample
    registry = CollectorRegistry()
    registry.register(StoreCollector(engine))
    if prefect_api_url:
        from vvops.observability.prefect_collector import PrefectRunsCollector

        registry.register(PrefectRunsCollector(prefect_api_url))
    return registry


def exporter_app(registry: CollectorRegistry, *, webhook: Any = None) -> Starlette:
    """`webhook`: a `vvops.observability.alertmanager.WebhookReceiver` (None: the route answers 404)."""

    async def healthz(_: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    routes: list[Any] = [Route("/healthz", healthz), Route("/metrics", _AsgiEndpoint(make_asgi_app(registry)))]
    if webhook is not None:
        from starlette.concurrency import run_in_threadpool

        async def receive(request: Request) -> JSONResponse:
            body = await request.body()
            status, answer = await run_in_threadpool(webhook.handle, body, request.headers.get("authorization"))
            return JSONResponse(answer, status_code=status)

        routes.append(Route(WEBHOOK_PATH, receive, methods=["POST"]))
    return Starlette(routes=routes)


class _AsgiEndpoint:
    """prometheus_client's ASGI app (gzip when asked) at exactly /metrics: Starlette treats an object that is not
    a function as an ASGI app, where a Mount would redirect /metrics to /metrics/."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def serve_registry(registry: CollectorRegistry, host: str, port: int) -> Any | None:
    """Serve `registry` on http://host:port/metrics in a daemon thread; None (logged) when the port is taken:
    the caller keeps running without an endpoint rather than dying for its metrics."""
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        log.warning("metrics endpoint off: cannot listen on %s:%s (%s)", host, port, error.strerror or error)
        return None
    log.info("metrics on http://%s:%s/metrics", host, port)
    return server


def run_in_thread(app: Starlette, host: str, port: int) -> tuple[Any, threading.Thread]:
    """uvicorn in a daemon thread (tests, benchmarks); stop with `server.should_exit = True` and join."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return server, thread


def serve_exporter(host: str, port: int, *, environment: str = "devnet", store_url: str | None = None,
                   prefect_api_url: str | None = None, log_level: str = "warning") -> None:
    """Run the endpoint in the foreground (uvicorn) until stopped; with `alertmanager` set in alerting.yaml it
    also pushes our alerts to that Alertmanager and receives its webhook."""
    import uvicorn

    from vvops.config import load_config
    from vvops.store import make_engine

    cfg = load_config(environment=environment)
    engine = make_engine(store_url or cfg.store.resolved_url().get_secret_value())
    registry = ops_registry(engine, prefect_api_url=prefect_api_url)
    webhook, pusher = _alertmanager_parts(engine, cfg, environment, registry)
    if pusher is not None:
        pusher.start()
    try:
        uvicorn.run(exporter_app(registry, webhook=webhook), host=host, port=port, log_level=log_level)
    finally:
        if pusher is not None:
            pusher.stop()
        engine.dispose()


def _alertmanager_parts(engine: Engine, cfg: Any, environment: str, registry: CollectorRegistry) -> tuple[Any, Any]:
    """The webhook receiver and the push loop, from alerting.yaml's `alertmanager` section."""
    from vvops.observability.alertmanager import parts_from_config

    return parts_from_config(engine, cfg, environment, registry=registry)
