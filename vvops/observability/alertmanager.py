"""Alertmanager interop, both ways (alerting.yaml `alertmanager:`).

Send (`AlertmanagerPusher`): every `resend_interval` the open alerts of the store go to the team's
Alertmanager through its v2 API (`POST /api/v2/alerts`) with `startsAt`, `endsAt` = now + 4 intervals (as
Prometheus does: an alert we stop sending resolves by itself), labels, annotations and a `generatorURL`;
alerts resolved in the last few intervals are sent with their real `endsAt`, so Alertmanager resolves them at
once. The store is the source, so the push is idempotent, survives restarts and needs no bookkeeping. Alerts
that came from Alertmanager (label `source="alertmanager"`) are never sent back. With `mode: instead` the
alert service stops notifying (Alertmanager routes); incidents and procedures still start here.

Receive (`WebhookReceiver`): Alertmanager's webhook payload (version 4) becomes our alerts through the same
alert service as the watcher's (store, dedup by fingerprint, silences, routing, Slack), and each new alert
emits the same Prefect event as the watcher's (`vv.alert.<severity>`), so a P0/P1 (node down, disk full)
starts incident-response through the same automation. Resolved alerts in the payload resolve ours.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import httpx
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import or_, select
from sqlalchemy.engine import Engine

from vvops.store import session_scope
from vvops.store.models import Alert

log = logging.getLogger("vvops.alertmanager")

SOURCE_LABEL = "source"
FROM_ALERTMANAGER = "alertmanager"
ORIGIN_LABEL, ORIGIN = "origin", "vvops"   # on every alert we send; such alerts coming back are ignored
MAX_BODY = 1 << 20
MAX_ALERTS = 1000
MAX_LABEL_VALUE = 1000
_LABEL_NAME = re.compile(r"[^A-Za-z0-9_]")
STATE_KEY = "_vvops"


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def label_name(name: str) -> str:
    """A valid Prometheus label name (invalid characters become _, a leading digit gets a _)."""
    clean = _LABEL_NAME.sub("_", str(name)) or "_"
    return "_" + clean if clean[0].isdigit() else clean


# ---------------------------------------------------------------------------- send

def alert_payload(row: Alert, *, now: datetime, resend: timedelta, generator_url: str) -> dict[str, Any]:
    """The v2 API object for one stored alert."""
    labels = {label_name(k): str(v)[:MAX_LABEL_VALUE] for k, v in (row.labels or {}).items() if v is not None}
    labels.setdefault("alertname", row.rule)
    labels.setdefault("severity", row.severity)
    labels[ORIGIN_LABEL] = ORIGIN
    annotations = {label_name(k): (v if isinstance(v, str) else json.dumps(v, default=str))[:4000]
                   for k, v in (row.annotations or {}).items() if k != STATE_KEY and v is not None}
    annotations["vvops_alert_id"] = str(row.id)
    if row.acknowledged_by:
        annotations["acknowledged_by"] = row.acknowledged_by
    ends = row.ends_at if row.status == "resolved" and row.ends_at else now + 4 * resend
    return {"labels": labels, "annotations": annotations, "startsAt": _iso(row.starts_at), "endsAt": _iso(ends),
            "generatorURL": generator_url}


class AlertmanagerPusher:
    def __init__(self, engine: Engine, send: Any, *, registry: CollectorRegistry | None = None,
                 now: Callable[[], datetime] | None = None):
        self.engine = engine
        self.send = send
        self.url = str(send.url).rstrip("/") + "/api/v2/alerts"
        self.now = now or (lambda: datetime.now(timezone.utc))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pushes = Counter("vvops_alertmanager_pushes_total", "POSTs of our alerts to Alertmanager, by result",
                              ["result"], registry=registry)
        self.sent = Counter("vvops_alertmanager_alerts_sent_total", "Alerts sent to Alertmanager (re-sends included)",
                            registry=registry)

    def payload(self) -> list[dict[str, Any]]:
        now = self.now()
        resend = self.send.resend_interval
        recent = now - max(4 * resend, timedelta(minutes=5))
        with session_scope(self.engine) as s:
            rows = list(s.scalars(select(Alert).where(or_(Alert.status != "resolved", Alert.ends_at >= recent))
                                  .order_by(Alert.id)))
        return [alert_payload(r, now=now, resend=resend, generator_url=self.generator_url(r)) for r in rows
                if (r.labels or {}).get(SOURCE_LABEL) != FROM_ALERTMANAGER]

    def generator_url(self, row: Alert) -> str:
        base = str(self.send.generator_url).rstrip("/")
        run = (row.annotations or {}).get("flow_run_id")
        return f"{base}/runs/flow-run/{run}" if run else f"{base}/events?resource=vv.alert.{row.fingerprint}"

    def push_once(self) -> int:
        """Send every open (and recently resolved) alert; returns how many. Raises on failure."""
        alerts = self.payload()
        if not alerts:
            return 0
        headers = {}
        if self.send.bearer_token_env:
            token = os.environ.get(self.send.bearer_token_env, "")
            if token:
                headers["Authorization"] = f"Bearer {token}"
        try:
            r = httpx.post(self.url, json=alerts, headers=headers, timeout=self.send.timeout_s)
            r.raise_for_status()
        except httpx.HTTPError:
            self.pushes.labels("error").inc()
            raise
        self.pushes.labels("ok").inc()
        self.sent.inc(len(alerts))
        return len(alerts)

    def start(self) -> "AlertmanagerPusher":
        self._thread = threading.Thread(target=self._loop, name="vv-alertmanager-push", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _loop(self) -> None:
        interval = self.send.resend_interval.total_seconds()
        while not self._stop.is_set():
            try:
                self.push_once()
            except Exception as error:  # noqa: BLE001 - the next round sends everything again
                log.warning("alerts not sent to Alertmanager at %s: %s", self.url.split("/api/")[0],
                            type(error).__name__)
            self._stop.wait(interval)


# ---------------------------------------------------------------------------- receive

class WebhookError(ValueError):
    """A webhook request we refuse; the message is the one line the sender gets back."""


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str) or value.startswith("0001-01-01"):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class WebhookReceiver:
    """`handle(body, authorization)` → (HTTP status, JSON answer)."""

    def __init__(self, service: Any, receive: Any, *, environment: str,
                 notify: Callable[[list[dict[str, Any]]], None] | None = None,
                 emit: Callable[..., Any] | None = None, registry: CollectorRegistry | None = None,
                 now: Callable[[], datetime] | None = None, environ: dict[str, str] | None = None):
        self.service = service
        self.receive = receive
        self.environment = environment
        self.notify = notify
        self._emit = emit
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.environ = environ if environ is not None else os.environ
        self.received = Counter("vvops_alertmanager_webhook_alerts_total",
                                "Alerts received from Alertmanager's webhook, by status", ["status"],
                                registry=registry)
        self.refused = Counter("vvops_alertmanager_webhook_refused_total",
                               "Webhook requests refused (auth, malformed)", ["reason"], registry=registry)

    # -------------------------------------------------------------- HTTP
    def handle(self, body: bytes, authorization: str | None) -> tuple[int, dict[str, Any]]:
        if not self._authorised(authorization):
            self.refused.labels("unauthorised").inc()
            return 401, {"error": "missing or wrong bearer token"}
        try:
            firing, resolved = self.parse(body)
        except WebhookError as error:
            self.refused.labels("malformed").inc()
            return 400, {"error": str(error)}
        new = self.apply(firing, resolved)
        return 200, {"firing": len(firing), "resolved": len(resolved), "new": new}

    def _authorised(self, authorization: str | None) -> bool:
        env = self.receive.bearer_token_env
        if not env:
            return True
        token = self.environ.get(env, "")
        if not token:
            return False   # configured but not set: refuse rather than accept anyone
        given = (authorization or "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())

    # -------------------------------------------------------------- payload → alerts
    def parse(self, body: bytes) -> tuple[list[Any], list[dict[str, str]]]:
        """Firing AlertInstances and the label sets of resolved alerts; WebhookError when malformed."""
        from vvops.alerting.rules import AlertInstance

        if len(body) > MAX_BODY:
            raise WebhookError(f"payload larger than {MAX_BODY} bytes")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookError("payload is not JSON") from None
        if not isinstance(data, dict) or str(data.get("version", "")) != "4":
            raise WebhookError("not an Alertmanager webhook payload (version 4)")
        alerts = data.get("alerts")
        if not isinstance(alerts, list) or len(alerts) > MAX_ALERTS:
            raise WebhookError(f"alerts must be a list of at most {MAX_ALERTS}")
        external = str(data.get("externalURL") or "")[:500]
        firing, resolved = [], []
        for i, alert in enumerate(alerts):
            if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
                raise WebhookError(f"alerts[{i}] has no labels")
            if alert["labels"].get(ORIGIN_LABEL) == ORIGIN:
                continue   # one of ours, routed back to us by the team's Alertmanager: we have it already
            labels = self._labels(alert["labels"])
            if alert.get("status") == "resolved":
                resolved.append(labels)
                continue
            if alert.get("status") != "firing":
                raise WebhookError(f"alerts[{i}].status must be firing or resolved")
            ann = alert.get("annotations") if isinstance(alert.get("annotations"), dict) else {}
            annotations = {label_name(k): str(v)[:4000] for k, v in ann.items()}
            annotations.setdefault("summary", annotations.get("description") or labels["alertname"])
            annotations.update({k: v for k, v in {
                "generator_url": str(alert.get("generatorURL") or "")[:500],
                "alertmanager_url": external,
                "alertmanager_fingerprint": str(alert.get("fingerprint") or "")[:64],
                "alertmanager_starts_at": str(alert.get("startsAt") or "")[:40]}.items() if v})
            firing.append(AlertInstance(rule=labels["alertname"][:200], severity=labels["severity"], labels=labels,
                                        annotations=annotations))
        return firing, resolved

    def _labels(self, raw: dict[str, Any]) -> dict[str, str]:
        labels = {label_name(k): str(v)[:MAX_LABEL_VALUE] for k, v in raw.items() if v is not None}
        if not labels.get("alertname"):
            raise WebhookError("an alert has no alertname label")
        given = labels.get(self.receive.severity_label, "")
        severity = given if given in ("P0", "P1", "P2", "P3") else \
            self.receive.severities.get(given.lower(), self.receive.default_severity)
        if self.receive.severity_label != "severity" and self.receive.severity_label in labels:
            labels[f"am_{self.receive.severity_label}"] = labels.pop(self.receive.severity_label)
        if given and given != severity:
            labels["am_severity"] = given   # the team's own value, kept for their matchers and runbooks
        labels.update({"severity": severity, SOURCE_LABEL: FROM_ALERTMANAGER})
        labels.setdefault("environment", self.environment)
        labels.setdefault("chain", self.environment)
        return labels

    def apply(self, firing: list[Any], resolved: list[dict[str, str]]) -> int:
        """Through the alert service; Prefect events for the new ones. Returns how many were new."""
        from vvops.alerting.rules import fingerprint_labels

        now = self.now()
        with session_scope(self.service.engine) as s:
            open_now = set(s.scalars(select(Alert.fingerprint).where(Alert.status != "resolved")))
        new = [a for a in firing if a.fingerprint not in open_now]
        cleared = [l for l in resolved if fingerprint_labels(l) in open_now]
        msgs = self.service.process_firing(firing, now, cleared=cleared, environment=self.environment) \
            if firing or cleared else []
        self.received.labels("firing").inc(len(firing))
        self.received.labels("resolved").inc(len(resolved))
        if msgs and self.notify is not None:
            self.notify(msgs)
        for alert in {a.fingerprint: a for a in new}.values():
            self._emit_event(alert)
        return len({a.fingerprint for a in new})

    def event_for(self, alert: Any) -> dict[str, Any]:
        """The watcher's event shape (vvops.watcher.sinks.PrefectEventSink), so the same automations apply."""
        summary = alert.annotations.get("summary", alert.rule)
        resource = {
            "prefect.resource.id": f"vv.alert.{alert.fingerprint}",
            "prefect.resource.name": summary[:200],
            "vv.rule": alert.rule,
            "vv.severity": alert.severity,
            "vv.chain": self.environment,
            "vv.chain_id": "",
            "vv.block": "",
            "vv.block_hash": "",
            "vv.tx": "",
            "vv.contract": "",
            "vv.fingerprint": alert.fingerprint,
            "vv.summary": summary[:500],
            "vv.incident_type": "security" if alert.labels.get("category") == "security" else "technical",
            "vv.source": FROM_ALERTMANAGER,
        }
        payload = {"rule": alert.rule, "severity": alert.severity, "labels": alert.labels,
                   "annotations": alert.annotations, "fingerprint": alert.fingerprint, "environment": self.environment}
        return {"event": f"vv.alert.{alert.severity.lower()}", "resource": resource, "payload": payload}

    def _emit_event(self, alert: Any) -> None:
        emit = self._emit
        try:
            if emit is None:
                from prefect.events import emit_event as emit
            emit(**self.event_for(alert))
        except Exception as error:  # noqa: BLE001 - stored and notified already; the automation is the bonus path
            log.warning("no Prefect event for Alertmanager alert %s: %s", alert.rule, error)


# ---------------------------------------------------------------------------- from config

def parts_from_config(engine: Engine, cfg: Any, environment: str, *,
                      registry: CollectorRegistry | None = None) -> tuple[WebhookReceiver | None, AlertmanagerPusher | None]:
    interop = cfg.alerting.alertmanager
    receiver = pusher = None
    if interop.receive.enabled:
        from vvops.alerting.service import AlertService
        from vvops.watcher.sinks import default_notifier

        receiver = WebhookReceiver(AlertService(engine, cfg), interop.receive, environment=environment,
                                   notify=default_notifier(engine, environment, cfg), registry=registry)
    if interop.send is not None:
        pusher = AlertmanagerPusher(engine, interop.send, registry=registry)
    return receiver, pusher


def routes_elsewhere(alerting: Any) -> bool:
    """True when alerting.yaml hands routing to Alertmanager (`send.mode: instead`)."""
    interop = getattr(alerting, "alertmanager", None)
    return bool(interop and interop.send is not None and interop.send.mode == "instead")
