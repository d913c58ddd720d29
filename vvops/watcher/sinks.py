"""Where the watcher's alerts go: the `AlertSink` protocol and its implementations.

Every sink has `fire(alert) -> bool` and `fire_many(alerts) -> list[bool]` (one flag per alert, True when new);
the watcher hands each fetched range's alerts (one block when following the head) to `fire_many` at once.
`fire_all(sink, alerts)` also accepts older sinks that only have `fire`.

- `StoreAlertSink(engine, alert_service=None)`: one `alerts` row per fingerprint, ever. The fingerprint is the
  hash of the alert's labels, which carry the block-hash-independent `dedup` key, so re-evaluating blocks after
  a reorg or a restart finds the existing row (whatever its status) and only refreshes its block annotations.
  The new alerts of a batch go through one `vvops.alerting.service.AlertService.process_firing` call (routing,
  grouping, escalation) when a service is given; otherwise the rows are written directly. Within a batch the
  first alert of a fingerprint is the new one and later ones count as re-evaluations, as if fired one by one.
- `PrefectEventSink()`: `emit_event("vv.alert.<p0..p3>", resource={"prefect.resource.id": "vv.alert.<fingerprint>",
  "vv.rule", "vv.chain", "vv.block", "vv.tx", "vv.contract", ...}, payload=<the alert dict>)`.
- `FanoutSink(first, *rest)`: the store first; the others only for alerts the store reports as new.
- `ListSink()`: collects alerts in memory (tests, benchmarks).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from sqlalchemy import select
from sqlalchemy.engine import Engine

from vvops.alerting.service import lock_alerts
from vvops.store import append_audit, session_scope
from vvops.store.models import Alert
from vvops.watcher.conditions import WatcherAlert

log = logging.getLogger(__name__)

BLOCK_KEYS = ("block_number", "block_hash", "block_timestamp", "tx_hash")
STORED_AT_KEEP = 10_000   # recent first-store times kept for latency measurements; older ones are dropped
FINGERPRINT_QUERY_CHUNK = 500   # fingerprints per IN (...) lookup, well under SQLite's bound-parameter limit


@runtime_checkable
class AlertSink(Protocol):
    def fire(self, alert: WatcherAlert) -> bool:
        """Deliver one alert; True when it is new (not a re-evaluation of one delivered before)."""

    def fire_many(self, alerts: Sequence[WatcherAlert]) -> list[bool]:
        """Deliver alerts in order as `fire` would one by one; one flag per alert, True when new."""


class PerAlertSink:
    """Base for sinks whose delivery is inherently one alert at a time: `fire_many` loops over `fire`."""

    def fire(self, alert: WatcherAlert) -> bool:
        raise NotImplementedError

    def fire_many(self, alerts: Sequence[WatcherAlert]) -> list[bool]:
        """`fire` for each alert, in order."""
        return [self.fire(a) for a in alerts]


def fire_all(sink: Any, alerts: Sequence[WatcherAlert]) -> list[bool]:
    """`sink.fire_many(alerts)`, or `fire` per alert for a sink written before `fire_many` existed."""
    fire_many = getattr(sink, "fire_many", None)
    if fire_many is not None:
        return list(fire_many(alerts))
    return [sink.fire(a) for a in alerts]


def alert_annotations(alert: WatcherAlert) -> dict[str, Any]:
    return {**alert.annotations, "block_number": alert.block_number, "block_hash": alert.block_hash,
            "block_timestamp": alert.block_timestamp, "tx_hash": alert.tx_hash, "chain_id": alert.chain_id,
            "dedup_key": alert.dedup_key}


class StoreAlertSink:
    def __init__(self, engine: Engine, *, alert_service: Any = None,
                 on_notifications: Callable[[list[dict[str, Any]]], None] | None = None,
                 now: Callable[[], datetime] | None = None):
        self.engine = engine
        self.alert_service = alert_service
        self.on_notifications = on_notifications
        self.now = now or (lambda: datetime.now(timezone.utc))
        self._lock = threading.Lock()
        # fingerprint -> time.time() when first stored (benchmarks); bounded so a long-running watcher stays flat
        self.stored_at: OrderedDict[str, float] = OrderedDict()
        self.service_calls = 0

    def fire(self, alert: WatcherAlert) -> bool:
        return self.fire_many([alert])[0]

    def fire_many(self, alerts: Sequence[WatcherAlert]) -> list[bool]:
        """Store a batch: existing fingerprints only get their block annotations refreshed, the new ones go
        through one `process_firing` call per environment; True for the first alert of each new fingerprint."""
        alerts = list(alerts)
        if not alerts:
            return []
        flags: list[bool] = []
        new_alerts: dict[str, WatcherAlert] = {}   # fingerprint -> its first alert in this batch
        later_in_batch: list[WatcherAlert] = []    # repeats of a fingerprint the alert service has yet to store
        with self._lock:
            with session_scope(self.engine, immediate=True) as s:
                lock_alerts(s)
                rows = self._latest_rows(s, {a.fingerprint for a in alerts})
                for alert in alerts:
                    fp = alert.fingerprint
                    row = rows.get(fp)
                    if row is not None:
                        _refresh_block_annotations(row, alert)
                        flags.append(False)
                    elif fp in new_alerts:
                        later_in_batch.append(alert)
                        flags.append(False)
                    else:
                        new_alerts[fp] = alert
                        flags.append(True)
                        if self.alert_service is None:
                            # written here, so later alerts of this fingerprint in the batch find the row
                            rows[fp] = self._write_row(s, alert)
            if new_alerts and self.alert_service is not None:
                self._through_service(list(new_alerts.values()))
                if any(_block_changed(alert_annotations(new_alerts[a.fingerprint]), a) for a in later_in_batch):
                    # rare: one fingerprint raised at two blocks of one range; replay the repeats in order on the
                    # rows the service wrote, so the row ends where `fire` one by one would have left it
                    with session_scope(self.engine, immediate=True) as s:
                        lock_alerts(s)
                        stored = self._latest_rows(s, {a.fingerprint for a in later_in_batch})
                        for alert in later_in_batch:
                            if alert.fingerprint in stored:
                                _refresh_block_annotations(stored[alert.fingerprint], alert)
            stored_now = time.time()
            for fp in new_alerts:
                self.stored_at[fp] = stored_now
            while len(self.stored_at) > STORED_AT_KEEP:
                self.stored_at.popitem(last=False)
        return flags

    @staticmethod
    def _latest_rows(s: Any, fingerprints: set[str]) -> dict[str, Alert]:
        """The newest row of each fingerprint that has one (any status)."""
        rows: dict[str, Alert] = {}
        fps = sorted(fingerprints)
        for i in range(0, len(fps), FINGERPRINT_QUERY_CHUNK):
            chunk = fps[i:i + FINGERPRINT_QUERY_CHUNK]
            for row in s.scalars(select(Alert).where(Alert.fingerprint.in_(chunk)).order_by(Alert.id)):
                rows[row.fingerprint] = row   # ascending ids: the newest wins
        return rows

    def _write_row(self, s: Any, alert: WatcherAlert) -> Alert:
        now = self.now()
        row = Alert(fingerprint=alert.fingerprint, rule=alert.rule, severity=alert.severity, status="firing",
                    labels={**alert.labels, "severity": alert.severity},
                    annotations=alert_annotations(alert), starts_at=now, count=1)
        s.add(row)
        append_audit(s, actor="watcher", action="alert.fired", subject=f"alert:{alert.fingerprint}",
                     source="watcher", details={"rule": alert.rule, "severity": alert.severity,
                                                "block": alert.block_number, "tx": alert.tx_hash}, at=now)
        return row

    def _through_service(self, alerts: list[WatcherAlert]) -> None:
        from vvops.alerting.rules import AlertInstance

        by_environment: dict[str, list[AlertInstance]] = {}
        for alert in alerts:
            by_environment.setdefault(alert.environment, []).append(AlertInstance(
                rule=alert.rule, severity=alert.severity, labels={**alert.labels, "severity": alert.severity},
                annotations={k: (v if isinstance(v, str) else str(v))
                             for k, v in alert_annotations(alert).items() if v is not None}))
        for environment, instances in by_environment.items():
            msgs = self.alert_service.process_firing(instances, self.now(), environment=environment)
            self.service_calls += 1
            if self.on_notifications and msgs:
                self.on_notifications(msgs)


def _block_changed(stored: dict[str, Any], alert: WatcherAlert) -> bool:
    """Whether `alert` names another block or transaction than the stored annotations (compared as text,
    because rows written through the alert service hold every annotation as a string)."""
    now = alert_annotations(alert)
    return any(_text(stored.get(k)) != _text(now.get(k)) for k in BLOCK_KEYS)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _refresh_block_annotations(row: Alert, alert: WatcherAlert) -> None:
    """A re-evaluation of a stored alert: move its block annotations to `alert`'s block (keeping where it was
    in `reorged_from`) and reopen it when it had been resolved because its block was reorged out."""
    ann = dict(row.annotations or {})
    if not _block_changed(ann, alert):
        return
    moved = {k: ann.get(k) for k in BLOCK_KEYS}
    ann.update({k: v for k, v in alert_annotations(alert).items() if k in BLOCK_KEYS})
    ann["reorged_from"] = moved
    if row.status == "resolved" and ann.get("resolved_reason") == "reorged out":
        # resolved when its block was replaced, raised again by the new chain: open again
        row.status, row.ends_at = "firing", None
        ann.pop("resolved_reason", None)
    row.annotations = ann


class PrefectEventSink(PerAlertSink):
    """Emits `vv.alert.<severity>` Prefect events (needs a reachable Prefect API; failures are logged, not raised)."""

    def __init__(self, *, emit: Callable[..., Any] | None = None, warm_up: dict[str, str] | None = None):
        self._emit = emit
        self.emitted = 0
        if warm_up is not None:
            self.warm_up(warm_up)

    def warm_up(self, resource: dict[str, str]) -> None:
        """Import Prefect's event client and open its connection now, with a `vv.watcher.started` event, so the
        first alert does not pay the import (1.5-5 s) and the connection set-up."""
        if self._emit is None:
            from prefect.events import emit_event

            self._emit = emit_event
        try:
            self._emit(event="vv.watcher.started", resource=resource)
        except Exception as error:  # noqa: BLE001 - the API may be down at start; alerts retry per event
            log.warning("could not emit vv.watcher.started: %s", error)

    @staticmethod
    def event_for(alert: WatcherAlert) -> dict[str, Any]:
        resource = {
            "prefect.resource.id": f"vv.alert.{alert.fingerprint}",
            "prefect.resource.name": alert.annotations.get("summary", alert.rule)[:200],
            "vv.rule": alert.rule,
            "vv.severity": alert.severity,
            "vv.chain": alert.environment,
            "vv.chain_id": str(alert.chain_id),
            "vv.block": str(alert.block_number),
            "vv.block_hash": alert.block_hash,
            "vv.tx": alert.tx_hash or "",
            "vv.contract": alert.contract or "",
            "vv.fingerprint": alert.fingerprint,
            "vv.summary": alert.annotations.get("summary", alert.rule)[:500],
            "vv.incident_type": "security" if alert.labels.get("category") == "security" else "technical",
        }
        return {"event": f"vv.alert.{alert.severity.lower()}", "resource": resource, "payload": alert.to_dict()}

    def fire(self, alert: WatcherAlert) -> bool:
        if alert.annotations.get("expected_action"):
            return False   # raised by a transaction we sent (e.g. the containment pause): no incident for it
        emit = self._emit
        if emit is None:
            from prefect.events import emit_event as emit
        try:
            emit(**self.event_for(alert))
            self.emitted += 1
        except Exception as error:  # noqa: BLE001 - the store already has it; the automation is a bonus path
            log.warning("could not emit a Prefect event for %s: %s", alert.rule, error)
            return False
        return True


class FanoutSink:
    def __init__(self, first: AlertSink, *rest: AlertSink):
        self.first = first
        self.rest = rest

    def fire(self, alert: WatcherAlert) -> bool:
        return self.fire_many([alert])[0]

    def fire_many(self, alerts: Sequence[WatcherAlert]) -> list[bool]:
        """The whole batch to the first sink, then its new alerts to the others; the first sink's flags."""
        alerts = list(alerts)
        flags = fire_all(self.first, alerts)
        new = [a for a, is_new in zip(alerts, flags) if is_new]
        if new:
            for sink in self.rest:
                self._deliver(sink, new)
        return flags

    @staticmethod
    def _deliver(sink: Any, alerts: list[WatcherAlert]) -> None:
        """A failing downstream sink is logged, never raised: the store already has the alerts."""
        if isinstance(sink, PerAlertSink) or getattr(sink, "fire_many", None) is None:
            # one alert at a time, so one failure does not cost the alerts after it
            for alert in alerts:
                try:
                    sink.fire(alert)
                except Exception as error:  # noqa: BLE001
                    log.warning("sink %s failed for %s: %s", type(sink).__name__, alert.rule, error)
            return
        try:
            sink.fire_many(alerts)
        except Exception as error:  # noqa: BLE001
            log.warning("sink %s failed for %d alerts: %s", type(sink).__name__, len(alerts), error)


class ListSink:
    def __init__(self) -> None:
        self.alerts: list[WatcherAlert] = []
        self.batches: list[int] = []   # size of each fire/fire_many call, so tests can see the batching
        self._seen: set[str] = set()

    def fire(self, alert: WatcherAlert) -> bool:
        return self.fire_many([alert])[0]

    def fire_many(self, alerts: Sequence[WatcherAlert]) -> list[bool]:
        """Records the alerts; new = fingerprint not seen before (earlier in this batch included)."""
        flags = []
        for alert in alerts:
            self.alerts.append(alert)
            flags.append(alert.fingerprint not in self._seen)
            self._seen.add(alert.fingerprint)
        self.batches.append(len(alerts))
        return flags


class OutboxNotifier:
    """Delivers the alerting framework's notification dicts: renders each (`vvops.notify.messages.render`),
    enqueues it in the outbox (idempotent by key) and, with a Slack token, drains the outbox in a background
    thread so the watcher never waits for Slack. Without a token rows stay queued for the
    `slack-outbox-drain` flow (as every other notification)."""

    def __init__(self, engine: Engine, channels: dict[str, str], *, token: str | None = None,
                 base_url: str | None = None, timeout_s: float = 5.0):
        self.engine = engine
        self.channels = channels
        self.token = token
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.enqueued = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if token:
            self._thread = threading.Thread(target=self._drain_loop, name="vv-watcher-slack", daemon=True)
            self._thread.start()

    def __call__(self, msgs: list[dict[str, Any]]) -> None:
        from vvops.store.outbox import enqueue

        with session_scope(self.engine, immediate=True) as s:
            for m in msgs:
                channel = self.channels.get(m["channel_purpose"], m["channel_purpose"])
                _, created = enqueue(s, idempotency_key=m["idempotency_key"], channel=channel, kind=m["kind"],
                                     payload=_render(m), thread_key=m.get("thread_key"))
                self.enqueued += int(created)
        self._wake.set()

    def _drain_loop(self) -> None:
        from vvops.notify.delivery import SlackDelivery

        delivery = SlackDelivery(self.engine, token=self.token, base_url=self.base_url, timeout_s=self.timeout_s,
                                 policy=None)
        while not self._stop.is_set():
            if not self._wake.wait(1.0):
                continue
            self._wake.clear()
            try:
                delivery.drain()
            except Exception as error:  # noqa: BLE001 - rows stay queued; the drain flow retries
                log.warning("Slack delivery from the watcher deferred: %s", error)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3)


def _render(m: dict[str, Any]) -> dict[str, Any]:
    """The Slack message of a notification: its vvops.notify.messages kind when one exists, else (alert group
    notifications such as `alert.firing`, which have no message kind yet) a plain text + section message."""
    from vvops.notify.messages import KINDS, render

    if m["kind"] in KINDS:
        try:
            return render(m["kind"], **m["payload"])
        except TypeError:
            pass
    p = m.get("payload") or {}
    text = str(p.get("text") or p.get("summary") or m["kind"])[:3000]
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def default_notifier(engine: Engine, environment: str, cfg: Any = None) -> OutboxNotifier | None:
    """An OutboxNotifier from config/slack.yaml (channels, api_base_url, the token's environment variable;
    VVOPS_SLACK_API_BASE_URL overrides the base URL). Prefect blocks are not read here: the watcher must start
    without a Prefect API. None when the settings cannot be read."""
    import os

    try:
        if cfg is None:
            from vvops.config import load_config

            cfg = load_config(environment=environment)
        sc = cfg.slack
        token = sc.bot_token()
        token = token.get_secret_value() if token is not None else None
        enabled = bool(getattr(sc, "enabled", True) and token)
        base_url = os.environ.get("VVOPS_SLACK_API_BASE_URL", "").strip() or str(sc.api_base_url)
        return OutboxNotifier(engine, dict(sc.channels.model_dump()), token=token if enabled else None,
                              base_url=base_url, timeout_s=float(sc.timeout_s))
    except Exception as error:  # noqa: BLE001
        log.warning("no Slack settings for the watcher (%s): alert notifications are only logged", error)
        return None
