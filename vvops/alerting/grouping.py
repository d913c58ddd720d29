"""Grouping, repeat and resolve notifications (Alertmanager's dispatcher as a pure function of `now`).

Alerts routed to the same route with the same `group_by` label values form a group; one notification
covers the whole group:
- a new group waits `group_wait` after its first alert, then notifies (kind `firing`);
- later changes (new alerts, resolved alerts) wait until `group_interval` after the group's last
  notification, then notify (kind `firing`, or `resolved` when nothing fires any more);
- a group with nothing new that still fires is re-sent every `repeat_interval` (kind `repeat`).
Muted (silenced/inhibited) alerts are left out by the caller. Identical label sets are one alert
(the same fingerprint): the store keeps one row with a `count`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .routing import RouteMatch

__all__ = ["AlertView", "GroupNotification", "plan_group", "short_hash"]

ACTIVE = ("firing", "acknowledged")


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AlertView:
    """What the planner needs to know about one alert on one route."""

    fingerprint: str
    status: str
    """firing | acknowledged | resolved (muted alerts are not passed in)."""
    severity: str
    labels: dict[str, Any]
    annotations: dict[str, Any]
    starts_at: datetime
    notified_at: datetime | None = None
    """Last notification on this route that included the alert (None: never)."""
    resolved_notified: bool = False
    ends_at: datetime | None = None
    alert_id: int | None = None
    count: int = 1


@dataclass(frozen=True)
class GroupNotification:
    route: RouteMatch
    group_key: str
    kind: str
    """firing | repeat | resolved"""
    at: datetime
    firing: list[AlertView] = field(default_factory=list)
    resolved: list[AlertView] = field(default_factory=list)

    @property
    def thread_key(self) -> str:
        return f"alert-group:{short_hash(self.group_key)}"

    @property
    def idempotency_key(self) -> str:
        members = ",".join(sorted(a.fingerprint for a in self.firing + self.resolved))
        return f"alert:{short_hash(self.group_key)}:{self.kind}:{short_hash(members)}:{self.at.isoformat()}"

    @property
    def severity(self) -> str:
        sevs = [a.severity for a in self.firing] or [a.severity for a in self.resolved]
        return min(sevs) if sevs else "P3"

    def text(self) -> str:
        status = "RESOLVED" if self.kind == "resolved" else "FIRING"
        head = f"[{status}:{len(self.firing) or len(self.resolved)}] {self.severity} {self.group_key.split(':', 1)[1]}"
        lines = [head]
        for a in self.firing:
            ack = " (acknowledged)" if a.status == "acknowledged" else ""
            times = f" ×{a.count}" if a.count > 1 else ""
            lines.append(f"• {a.severity} {a.annotations.get('summary', a.labels.get('alertname'))}{ack}{times}")
        for a in self.resolved:
            lines.append(f"• resolved: {a.annotations.get('summary', a.labels.get('alertname'))}")
        return "\n".join(lines)

    def as_message(self, environment: str | None = None) -> dict[str, Any]:
        """The plain dict `tasks.notify.notify(**message)` takes."""
        def item(a: AlertView) -> dict[str, Any]:
            return {"id": a.alert_id, "fingerprint": a.fingerprint, "severity": a.severity, "status": a.status,
                    "labels": dict(a.labels), "summary": a.annotations.get("summary", ""),
                    "description": a.annotations.get("description", ""), "starts_at": a.starts_at.isoformat(),
                    **({"runbook_url": a.annotations["runbook_url"]} if a.annotations.get("runbook_url") else {}),
                    "ends_at": a.ends_at.isoformat() if a.ends_at else None, "count": a.count}

        return {
            "kind": f"alert.{self.kind}",
            "channel_purpose": self.route.channel,
            "thread_key": self.thread_key,
            "idempotency_key": self.idempotency_key,
            "payload": {
                "text": self.text(),
                "summary": self.text().splitlines()[0],
                "severity": self.severity,
                "route": self.route.route_id,
                "group_key": self.group_key,
                "firing": [item(a) for a in self.firing],
                "resolved": [item(a) for a in self.resolved],
                **({"environment": environment} if environment else {}),
            },
        }


def plan_group(route: RouteMatch, group_key: str, alerts: list[AlertView], now: datetime) -> GroupNotification | None:
    """The notification this group owes at `now`, or None."""
    active = [a for a in alerts if a.status in ACTIVE]
    new = [a for a in active if a.notified_at is None]
    resolved = [a for a in alerts if a.status == "resolved" and a.notified_at is not None and not a.resolved_notified]
    notified = [a.notified_at for a in alerts if a.notified_at is not None]
    last = max(notified) if notified else None
    kind: str | None = None
    if last is None:
        if new and now >= min(a.starts_at for a in new) + route.group_wait:
            kind = "firing"
    elif new or resolved:
        if now >= last + route.group_interval:
            kind = "firing" if active else "resolved"
    elif active and now >= last + route.repeat_interval:
        kind = "repeat"
    if kind is None:
        return None
    return GroupNotification(route, group_key, kind, now, firing=sorted(active, key=lambda a: (a.severity, a.starts_at)),
                             resolved=resolved)
