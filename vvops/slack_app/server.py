"""Approve from Slack: a Starlette endpoint for Slack's interactivity requests (`block_actions`).

POST /slack/interactions (form-encoded `payload=<json>`, as Slack sends it):
1. the v0 signature is verified over the raw body (HMAC-SHA256 with the signing secret, 5-minute window,
   replays refused); a forged, stale or replayed request gets 401 and an audit entry
   (`slack.request.refused`, source slack);
2. each `approval_approve` / `approval_reject` action (value = approval request id) is a Slack proof of its
   person (vvops.identity SlackProof: the verified request's Slack user id, mapped to the roster by
   config/team.yaml `slack_user_id`) and recorded in the store through `vvops.approvals.service.record_decision`
   (source slack; refused decisions are stored and audited too);
3. an accepted decision wakes the paused Prefect run with `{"decision", "reason", "signature": "recorded:slack"}`:
   the flow counts only what the store holds (exactly once), never the run input. If the run is briefly not
   paused (it is between two pauses), the resume is retried for a few seconds.
An `alert_acknowledge` button (value = alert id, on escalation pages) acknowledges the alert as the roster
person, through the alerting framework (audited), which stops its escalation.
GET /healthz answers 200.

Bounded inputs: a request whose headers exceed MAX_HEADER_BYTES gets 431 and one whose declared or
streamed body exceeds MAX_BODY gets 413, both before the body is read (uvicorn runs with h11 and its
incomplete-event limit, so not even the server buffers more). Refusals of unverified requests go to the audit
log through `vvops.store.refusals` (bounded details; under a flood one full row per kind and minute plus one
aggregated row with the count).

Start it with `serve_slack_interactions(host, port, environment=...)` or
`python -m vvops.slack_app --host 127.0.0.1 --port 3000 -e devnet` (needs SLACK_SIGNING_SECRET, or the
variable slack.yaml names; it refuses to start without one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from vvops.approvals import service
from vvops.approvals.slack_signature import SignatureError, SlackSignatureVerifier
from vvops.identity import IdentityContext, SlackProof
from vvops.store.refusals import RefusalAggregator

log = logging.getLogger("vvops.slack_app")

INTERACTIONS_PATH = "/slack/interactions"
ACTIONS = {"approval_approve": "approve", "approval_reject": "reject"}
ACKNOWLEDGE = "alert_acknowledge"
MAX_BODY = 1 << 20
"""Slack's block_actions payloads are a few KB; a megabyte leaves room for large messages."""
MAX_HEADER_BYTES = 16 << 10
"""Slack sends a dozen short headers; anything beyond 16 KB is not Slack."""
REFUSAL_WINDOW_S = 60.0


def prefect_resume(prefect_api_url: str | None, *, attempts: int = 12, delay_s: float = 0.25) -> Callable[[str, dict], str]:
    """A function resuming a paused run with run_input through the Prefect API; returns what happened."""

    def resume(flow_run_id: str, run_input: dict[str, Any]) -> str:
        from uuid import UUID

        from prefect.exceptions import NotPausedError
        from prefect.flow_runs import resume_flow_run
        from prefect.settings import PREFECT_API_URL, temporary_settings

        updates = {PREFECT_API_URL: prefect_api_url} if prefect_api_url else {}
        with temporary_settings(updates=updates):
            for attempt in range(attempts):
                try:
                    resume_flow_run(UUID(flow_run_id), run_input=run_input)
                    return "resumed"
                except NotPausedError:
                    if attempt == attempts - 1:
                        return "not_paused"
                    time.sleep(delay_s)  # the run is between two pauses: it will pause again shortly
        return "not_paused"

    return resume


def alert_acknowledger(engine: Engine, environment: str) -> Callable[[int, str], list[dict]]:
    """Acknowledge an alert through the alerting framework (audited; stops its escalation)."""

    def acknowledge(alert_id: int, person_id: str) -> list[dict]:
        from datetime import datetime, timezone

        from vvops.alerting.service import AlertService
        from vvops.config import load_config

        service_ = AlertService(engine, load_config(environment=environment))
        return service_.acknowledge(alert_id, by=person_id, source="slack", now=datetime.now(timezone.utc))

    return acknowledge


def create_app(*, signing_secret: str, environment: str = "devnet", engine: Engine | None = None,
               people: Any = None, prefect_api_url: str | None = None,
               clock: Callable[[], float] | None = None,
               resume: Callable[[str, dict], str] | None = None,
               acknowledge: Callable[[int, str], list[dict]] | None = None,
               refusal_window_s: float = REFUSAL_WINDOW_S,
               identity: IdentityContext | None = None) -> Starlette:
    """The Starlette app. `people` defaults to the environment's roster; `engine` to the default store;
    `identity` (what the environment trusts) to the environment's config with `people` as the roster."""
    if not signing_secret:
        raise ValueError("a Slack signing secret is required")
    if identity is None:
        import dataclasses

        from vvops.config import load_config

        identity = IdentityContext.from_config(load_config(environment=environment))
        if people is not None:
            identity = dataclasses.replace(identity, people=tuple(people))
    if people is None:
        people = identity.people
    if engine is None:
        from vvops.store import default_store_url, make_engine

        engine = make_engine(default_store_url())
    people = tuple(people)
    by_slack_id = {p.slack_user_id: p for p in people}
    verifier = SlackSignatureVerifier(signing_secret, clock=clock)
    do_resume = resume or prefect_resume(prefect_api_url)
    do_acknowledge = acknowledge or alert_acknowledger(engine, environment)

    def write_refusal(row: dict[str, Any]) -> None:
        from vvops.store import session_scope
        from vvops.store.refusals import audit_refusal

        try:
            with session_scope(engine, immediate=True) as session:
                audit_refusal(session, **row)
        except Exception:  # noqa: BLE001 - the refusal stands even when the audit log cannot be written
            log.exception("could not audit a refused Slack request (%s)", row.get("reason"))

    refusals = RefusalAggregator(write_refusal, window_s=refusal_window_s)

    def refuse(reason: str, message: str, request: Request, status: int = 401) -> JSONResponse:
        client = request.client.host if request.client else None
        headers = {k: request.headers.get(k) for k in ("x-slack-request-timestamp", "x-slack-signature",
                                                       "content-length", "user-agent") if k in request.headers}
        refusals.refuse(reason, {"actor": "slack:unverified", "action": "slack.request.refused",
                                 "subject": "slack:interactions", "source": "slack", "rule": f"slack.{reason}",
                                 "reason": reason,
                                 "details": {"message": message, "client": client, "headers": headers,
                                             "timestamp": headers.get("x-slack-request-timestamp")}})
        log.warning("refused Slack request from %s: %s (%s)", client, reason, message[:200])
        return JSONResponse({"ok": False, "error": reason}, status_code=status)

    def handle_action(payload: dict, action: dict) -> dict:
        user = payload.get("user") or {}
        slack_user = str(user.get("id") or "")
        decision = ACTIONS[action["action_id"]]
        try:
            request_id = int(str(action.get("value", "")).strip())
        except ValueError:
            return {"ok": False, "error": "bad_request_id"}
        person = by_slack_id.get(slack_user)
        approver = person.id if person else f"slack:{slack_user or 'unknown'}"
        context = {"slack_user_id": slack_user, "slack_user_name": user.get("username") or user.get("name"),
                   "slack_team": (payload.get("team") or {}).get("id"), "action_ts": action.get("action_ts")}
        reason = f"{decision} clicked in Slack by {person.name if person else slack_user}"
        proof = SlackProof(slack_user, evidence={k: v for k, v in context.items() if k != "slack_user_id"})
        try:
            result = service.record_decision(engine, request_id=request_id, decision=decision, reason=reason,
                                             source="slack", proof=proof, identity=identity, context=context)
        except KeyError:
            return {"ok": False, "error": "unknown_request", "request_id": request_id}
        out: dict[str, Any] = {"ok": result.accepted, "request_id": request_id, "decision_id": result.decision_id,
                               "approver": approver, "status": result.state.status, "message": result.message}
        if not result.accepted:
            out["error"] = result.refusal_reason
            return out
        if result.state.flow_run_id:
            out["resume"] = do_resume(result.state.flow_run_id,
                                      {"decision": decision, "reason": reason, "signature": "recorded:slack"})
        return out

    def handle_acknowledge(payload: dict, action: dict) -> dict:
        slack_user = str((payload.get("user") or {}).get("id") or "")
        person = by_slack_id.get(slack_user)
        try:
            alert_id = int(str(action.get("value", "")).strip())
        except ValueError:
            return {"ok": False, "error": "bad_alert_id"}
        if person is None:  # the framework audits roster refusals; an unknown Slack user never reaches it
            service.audit_event(engine, actor=f"slack:{slack_user or 'unknown'}", action="alert.ack_refused",
                                request_id=None, subject=f"alert:{alert_id}", source="slack",
                                details={"reason": "not on the roster"})
            return {"ok": False, "error": "not_on_roster", "alert_id": alert_id}
        try:
            do_acknowledge(alert_id, person.id)
        except (KeyError, LookupError, PermissionError) as error:
            return {"ok": False, "error": type(error).__name__, "alert_id": alert_id, "message": str(error)}
        return {"ok": True, "alert_id": alert_id, "message": f"alert {alert_id} acknowledged by {person.name}"}

    async def interactions(request: Request):
        header_bytes = sum(len(k) + len(v) + 4 for k, v in request.scope.get("headers", ()))
        if header_bytes > MAX_HEADER_BYTES:
            return await run_in_threadpool(refuse, "headers_too_large",
                                           f"{header_bytes} bytes of headers (limit {MAX_HEADER_BYTES})", request, 431)
        body = await _read_bounded(request, MAX_BODY)
        if body is None:
            return await run_in_threadpool(refuse, "too_large", f"body larger than {MAX_BODY} bytes", request, 413)
        try:
            verifier.verify(timestamp=request.headers.get("x-slack-request-timestamp"),
                            signature=request.headers.get("x-slack-signature"), body=body)
        except SignatureError as error:
            return await run_in_threadpool(refuse, error.reason, str(error), request)
        try:
            raw = parse_qs(body.decode("utf-8"), strict_parsing=False).get("payload", [None])[0]
            payload = json.loads(raw) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = None
        if not isinstance(payload, dict):
            return JSONResponse({"ok": False, "error": "no_payload"}, status_code=400)
        if payload.get("type") != "block_actions":
            return JSONResponse({"ok": True, "ignored": payload.get("type")})
        results = []
        for action in payload.get("actions") or []:
            if isinstance(action, dict) and action.get("action_id") in ACTIONS:
                results.append(await run_in_threadpool(handle_action, payload, action))
            elif isinstance(action, dict) and action.get("action_id") == ACKNOWLEDGE:
                results.append(await run_in_threadpool(handle_acknowledge, payload, action))
        text = "; ".join(r.get("message") or r.get("error", "") for r in results) or "nothing to do"
        return JSONResponse({"response_type": "ephemeral", "replace_original": False, "text": text,
                             "results": results})

    async def healthz(_request: Request):
        return PlainTextResponse("ok")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette):
        async def flush_periodically() -> None:
            while True:
                await asyncio.sleep(min(refusal_window_s, 10.0))
                await run_in_threadpool(refusals.flush)

        flusher = asyncio.create_task(flush_periodically())
        try:
            yield
        finally:
            flusher.cancel()
            await run_in_threadpool(refusals.flush, force=True)

    from vvops.slack_app.safe_command import COMMANDS_PATH, make_safe_command

    safe_command = make_safe_command(engine=engine, environment=environment, by_slack_id=by_slack_id,
                                     verifier=verifier, refuse=refuse, resume=do_resume, max_body=MAX_BODY,
                                     read_body=lambda request: _read_bounded(request, MAX_BODY))
    app = Starlette(routes=[Route(INTERACTIONS_PATH, interactions, methods=["POST"]),
                            Route(COMMANDS_PATH, safe_command, methods=["POST"]),
                            Route("/healthz", healthz, methods=["GET"])], lifespan=lifespan)
    app.state.refusals = refusals
    return app


async def _read_bounded(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed `limit` (declared length first, then streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                return None
        except ValueError:
            return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def uvicorn_config(app: Starlette, host: str, port: int, *, log_level: str = "info"):
    """How the endpoint is served: h11 with its incomplete-event limit, so oversized headers are refused by the
    server before they are buffered whole."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level=log_level, http="h11",
                          h11_max_incomplete_event_size=MAX_HEADER_BYTES * 2, timeout_keep_alive=5)


def serve_slack_interactions(host: str = "127.0.0.1", port: int = 3000, *, environment: str = "devnet",
                             signing_secret: str | None = None, prefect_api_url: str | None = None,
                             log_level: str = "info") -> None:
    """Run the endpoint in the foreground (uvicorn) until stopped (SIGTERM/SIGINT)."""
    import uvicorn

    from vvops.config import load_config

    cfg = load_config(environment=environment)
    secret = signing_secret
    if secret is None:
        found = cfg.slack.signing_secret()
        secret = found.get_secret_value() if found is not None else None
    if not secret:
        raise SystemExit(f"the Slack endpoint needs a signing secret: set {cfg.slack.signing_secret_env}")
    app = create_app(signing_secret=secret, environment=environment, people=cfg.people,
                     prefect_api_url=prefect_api_url)
    uvicorn.Server(uvicorn_config(app, host, port, log_level=log_level)).run()
