"""Current ops state from the store, read when Prometheus scrapes (a custom collector, no cached copies).

Each scrape runs a handful of aggregate queries (GROUP BY in the database, a few rows back) in one read-only
session, so the figures are always consistent with the store and cost no background work between scrapes.
Every severity, status and area is reported even at zero, so dashboards and alert rules see a series, not a
gap. When the store cannot be read, `vvops_store_up` is 0 and the other families are left out (no stale
numbers).

Labels are bounded by our vocabulary (severities P0..P3, store statuses, check areas, configured procedures
and watchers), except the drill-down families `vvops_incident_open_info` (at most MAX_OPEN_INCIDENTS series,
the newest open incidents) which carry the incident key and its incident-response flow run id so Grafana can
link to them.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from vvops.store import session_scope
from vvops.store.models import (Alert, ApprovalRequest, CheckResult, CheckRun, Incident, IncidentEvent,
                                NotificationOutbox, WatcherCheckpoint)

log = logging.getLogger(__name__)

SEVERITIES = ("P0", "P1", "P2", "P3")
ALERT_STATES = ("firing", "acknowledged", "silenced")
OUTBOX_STATES = ("pending", "sending", "sent", "failed")
CHECK_STATES = ("ok", "warn", "crit", "error", "unknown")
CHECK_AREAS = ("protocol", "infrastructure", "security", "maintenance")
OPEN_INCIDENT_STATES = ("open", "mitigated")
WAITING_APPROVAL_STATES = ("pending", "escalated")
MAX_OPEN_INCIDENTS = 50
LATENCY_WINDOW = timedelta(hours=1)
LATENCY_SAMPLE = 5000
QUANTILES = (0.5, 0.9, 0.99)


def _ts(dt: datetime | None) -> float | None:
    return dt.timestamp() if dt is not None else None


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile of an ascending list (not empty)."""
    index = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[index]


class StoreCollector(Collector):
    def __init__(self, engine: Engine, *, now: Callable[[], datetime] | None = None):
        self.engine = engine
        self.now = now or (lambda: datetime.now(timezone.utc))

    def describe(self) -> list[Any]:
        return []   # families are built on collect; nothing to check at registration

    def collect(self) -> Iterable[Any]:
        started = time.perf_counter()
        up = GaugeMetricFamily("vvops_store_up", "1 when the ops store answered this scrape")
        try:
            families = self._read(self.now())
        except Exception as error:  # noqa: BLE001 - a scrape must answer: say the store is down
            log.warning("store metrics unavailable: %s", type(error).__name__)
            up.add_metric([], 0.0)
            return [up]
        up.add_metric([], 1.0)
        took = GaugeMetricFamily("vvops_store_scrape_duration_seconds", "Time to read the store for this scrape")
        took.add_metric([], time.perf_counter() - started)
        return [up, took, *families]

    # ------------------------------------------------------------------ queries
    def _read(self, now: datetime) -> list[Any]:
        with session_scope(self.engine) as s:
            return [*self._alerts(s), *self._incidents(s), *self._outbox(s, now), *self._approvals(s, now),
                    *self._checks(s), *self._watchers(s)]

    def _alerts(self, s: Any) -> list[Any]:
        open_counts = {(sev, st): n for sev, st, n in s.execute(
            select(Alert.severity, Alert.status, func.count()).where(Alert.status != "resolved")
            .group_by(Alert.severity, Alert.status))}
        raised = dict(s.execute(select(Alert.severity, func.count()).group_by(Alert.severity)).all())
        firing = GaugeMetricFamily("vvops_alerts_firing",
                                   "Alerts firing now (acknowledged ones included, silenced ones not)",
                                   labels=["severity"])
        state = GaugeMetricFamily("vvops_alerts", "Open alerts by severity and state", labels=["severity", "state"])
        total = CounterMetricFamily("vvops_alerts_raised", "Alerts ever raised (one per fingerprint episode)",
                                    labels=["severity"])
        for sev in SEVERITIES:
            firing.add_metric([sev], float(open_counts.get((sev, "firing"), 0) + open_counts.get((sev, "acknowledged"), 0)))
            for st in ALERT_STATES:
                state.add_metric([sev, st], float(open_counts.get((sev, st), 0)))
            total.add_metric([sev], float(raised.get(sev, 0)))
        return [firing, state, total]

    def _incidents(self, s: Any) -> list[Any]:
        counts = dict(s.execute(select(Incident.severity, func.count()).where(Incident.status.in_(OPEN_INCIDENT_STATES))
                                .group_by(Incident.severity)).all())
        opened = dict(s.execute(select(Incident.severity, func.count()).group_by(Incident.severity)).all())
        open_family = GaugeMetricFamily("vvops_incidents_open", "Incidents open or mitigated", labels=["severity"])
        total = CounterMetricFamily("vvops_incidents_opened", "Incidents ever opened (drills included)",
                                    labels=["severity"])
        for sev in SEVERITIES:
            open_family.add_metric([sev], float(counts.get(sev, 0)))
            total.add_metric([sev], float(opened.get(sev, 0)))
        info = GaugeMetricFamily("vvops_incident_open_info",
                                 "One series per open incident (newest first, bounded); value: opened at (Unix s)",
                                 labels=["incident", "severity", "type", "status", "drill", "flow_run_id"])
        rows = list(s.execute(select(Incident.id, Incident.key, Incident.severity, Incident.type, Incident.status,
                                     Incident.is_drill, Incident.opened_at)
                              .where(Incident.status.in_(OPEN_INCIDENT_STATES))
                              .order_by(Incident.opened_at.desc()).limit(MAX_OPEN_INCIDENTS)))
        runs: dict[int, str] = {}
        if rows:
            for incident_id, data in s.execute(select(IncidentEvent.incident_id, IncidentEvent.data)
                                               .where(IncidentEvent.incident_id.in_([r.id for r in rows]))
                                               .order_by(IncidentEvent.id)):
                run = (data or {}).get("flow_run_id")
                if run and incident_id not in runs:
                    runs[incident_id] = str(run)
        for r in rows:
            info.add_metric([r.key, r.severity, r.type, r.status, "true" if r.is_drill else "false", runs.get(r.id, "")],
                            _ts(r.opened_at) or 0.0)
        return [open_family, total, info]

    def _outbox(self, s: Any, now: datetime) -> list[Any]:
        counts = dict(s.execute(select(NotificationOutbox.status, func.count()).group_by(NotificationOutbox.status)).all())
        depth = GaugeMetricFamily("vvops_outbox_messages", "Notification outbox rows by status (pending = depth)",
                                  labels=["status"])
        for st in OUTBOX_STATES:
            depth.add_metric([st], float(counts.get(st, 0)))
        delivered = CounterMetricFamily("vvops_outbox_delivered", "Notifications delivered to Slack")
        delivered.add_metric([], float(counts.get("sent", 0)))
        oldest = s.scalar(select(func.min(NotificationOutbox.created_at))
                          .where(NotificationOutbox.status.in_(("pending", "sending"))))
        age = GaugeMetricFamily("vvops_outbox_oldest_pending_age_seconds",
                                "Age of the oldest undelivered notification (0 when none waits)")
        age.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        pairs = s.execute(select(NotificationOutbox.created_at, NotificationOutbox.sent_at)
                          .where(NotificationOutbox.status == "sent", NotificationOutbox.sent_at >= now - LATENCY_WINDOW)
                          .order_by(NotificationOutbox.sent_at.desc()).limit(LATENCY_SAMPLE)).all()
        latencies = sorted(max(0.0, (sent - created).total_seconds()) for created, sent in pairs if created and sent)
        latency = GaugeMetricFamily("vvops_outbox_delivery_latency_seconds",
                                    "Enqueue-to-Slack delay of notifications delivered in the last hour, by quantile",
                                    labels=["quantile"])
        for q in QUANTILES:
            if latencies:
                latency.add_metric([str(q)], quantile(latencies, q))
        recent = GaugeMetricFamily("vvops_outbox_delivered_last_hour", "Notifications delivered in the last hour")
        recent.add_metric([], float(len(latencies)))
        return [depth, delivered, age, latency, recent]

    def _approvals(self, s: Any, now: datetime) -> list[Any]:
        rows = s.execute(select(ApprovalRequest.procedure, func.count(), func.min(ApprovalRequest.requested_at))
                         .where(ApprovalRequest.status.in_(WAITING_APPROVAL_STATES))
                         .group_by(ApprovalRequest.procedure)).all()
        waiting = GaugeMetricFamily("vvops_approvals_waiting", "Approval requests waiting for a decision",
                                    labels=["procedure"])
        oldest = GaugeMetricFamily("vvops_approval_oldest_waiting_age_seconds",
                                   "How long the oldest waiting approval request has waited", labels=["procedure"])
        for procedure, n, first in rows:
            waiting.add_metric([procedure], float(n))
            oldest.add_metric([procedure], max(0.0, (now - first).total_seconds()) if first else 0.0)
        total = GaugeMetricFamily("vvops_approvals_waiting_all", "Approval requests waiting, all procedures")
        total.add_metric([], float(sum(n for _, n, _ in rows)))
        return [waiting, oldest, total]

    def _checks(self, s: Any) -> list[Any]:
        latest = select(func.max(CheckResult.id)).group_by(CheckResult.check_id).scalar_subquery()
        counts = {(a, st): n for a, st, n in s.execute(
            select(CheckResult.area, CheckResult.status, func.count()).where(CheckResult.id.in_(latest))
            .group_by(CheckResult.area, CheckResult.status))}
        results = GaugeMetricFamily("vvops_check_results", "Checks by area and the status of their latest result",
                                    labels=["area", "status"])
        for area in sorted(set(CHECK_AREAS) | {a for a, _ in counts}):
            for st in sorted(set(CHECK_STATES) | {st for a, st in counts if a == area}):
                results.add_metric([area, st], float(counts.get((area, st), 0)))
        finished = GaugeMetricFamily("vvops_check_run_last_finished_timestamp_seconds",
                                     "When each cadence flow last finished a check run (Unix s)", labels=["flow"])
        for flow, at in s.execute(select(CheckRun.flow_name, func.max(CheckRun.finished_at))
                                  .where(CheckRun.finished_at.is_not(None)).group_by(CheckRun.flow_name)):
            if at is not None:
                finished.add_metric([flow], at.timestamp())
        return [results, finished]

    def _watchers(self, s: Any) -> list[Any]:
        block = GaugeMetricFamily("vvops_watcher_checkpoint_block", "Last block whose alerts the watcher delivered",
                                  labels=["chain_id", "watcher"])
        updated = GaugeMetricFamily("vvops_watcher_checkpoint_timestamp_seconds",
                                    "When the watcher's checkpoint last moved (Unix s)", labels=["chain_id", "watcher"])
        for row in s.scalars(select(WatcherCheckpoint)):
            block.add_metric([str(row.chain_id), row.watcher], float(row.last_block))
            if row.updated_at is not None:
                updated.add_metric([str(row.chain_id), row.watcher], row.updated_at.timestamp())
        return [block, updated]
