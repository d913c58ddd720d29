"""What the public status page says, derived from evidence only: the daily checks' latest results and the open
incidents. Plain functions over plain rows, so the rules are tested without a store or a browser.

States follow the vocabulary status-page users know (Atlassian Statuspage): operational, degraded_performance,
partial_outage, major_outage; plus `no_data` when nothing recent says how a component is (never "operational"
by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

STATES = ("operational", "no_data", "degraded_performance", "partial_outage", "major_outage")
_RANK = {state: i for i, state in enumerate(STATES)}
CHECK_STATE = {"ok": "operational", "warn": "degraded_performance", "crit": "partial_outage", "error": "no_data"}
SEVERITY_STATE = {"P0": "major_outage", "P1": "partial_outage", "P2": "degraded_performance", "P3": "operational"}
OPEN_STATUSES = ("open", "mitigated")
OUTAGE_STATES = ("partial_outage", "major_outage")
PUBLIC_STATUS = {"open": "investigating", "mitigated": "monitoring", "resolved": "resolved", "closed": "resolved"}


def worst(states: Iterable[str]) -> str:
    return max(states, key=lambda s: _RANK[s], default="no_data")


@dataclass(frozen=True)
class CheckRow:
    check_id: str
    status: str
    at: datetime


@dataclass(frozen=True)
class IncidentRow:
    key: str
    severity: str
    type: str
    status: str
    opened_at: datetime
    resolved_at: datetime | None
    contracts: tuple[str, ...] = ()
    is_drill: bool = False
    updates: tuple[dict[str, Any], ...] = ()
    """Public updates (approved statements): {"at", "status", "body"}."""


@dataclass
class ComponentStatus:
    name: str
    description: str
    state: str
    reasons: list[str] = field(default_factory=list)
    uptime_pct: float | None = None
    days: list[dict[str, Any]] = field(default_factory=list)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def matches(check_id: str, prefixes: Iterable[str]) -> bool:
    return any(check_id == p or check_id.startswith(p + ".") for p in prefixes)


def affects(component: Any, incident: IncidentRow) -> bool:
    return bool(set(incident.contracts) & set(component.contracts)) or incident.type in component.incident_types


def current_state(component: Any, checks: list[CheckRow], incidents: list[IncidentRow], *, now: datetime,
                  stale_after: timedelta) -> tuple[str, list[str]]:
    """The component's state now and the evidence behind it (one reason per contributing fact)."""
    latest: dict[str, CheckRow] = {}
    for row in checks:
        if matches(row.check_id, component.checks) and (row.check_id not in latest or row.at > latest[row.check_id].at):
            latest[row.check_id] = row
    states, reasons = [], []
    for row in latest.values():
        if now - _aware(row.at) > stale_after:
            continue
        states.append(CHECK_STATE.get(row.status, "no_data"))
        if row.status != "ok":
            reasons.append(f"check {row.check_id}: {row.status}")
    for incident in incidents:
        if incident.status in OPEN_STATUSES and not incident.is_drill and affects(component, incident):
            states.append(SEVERITY_STATE.get(incident.severity, "degraded_performance"))
            reasons.append(f"incident {incident.key} ({incident.severity}, {PUBLIC_STATUS[incident.status]})")
    if not states:
        return "no_data", ["no recent check result and no open incident"]
    return worst(states), reasons


def outage_intervals(component: Any, checks: list[CheckRow], incidents: list[IncidentRow], *, now: datetime
                     ) -> list[tuple[datetime, datetime]]:
    """When the component was down: P0/P1 incidents affecting it (open until resolved) and every stretch from a
    crit result of one of its checks to that check's next result that is not crit."""
    intervals = []
    for incident in incidents:
        if not incident.is_drill and SEVERITY_STATE.get(incident.severity) in OUTAGE_STATES and affects(component, incident):
            intervals.append((_aware(incident.opened_at), _aware(incident.resolved_at or now)))
    by_check: dict[str, list[CheckRow]] = {}
    for row in checks:
        if matches(row.check_id, component.checks):
            by_check.setdefault(row.check_id, []).append(row)
    for rows in by_check.values():
        rows.sort(key=lambda r: r.at)
        down_since = None
        for row in rows:
            if row.status == "crit" and down_since is None:
                down_since = _aware(row.at)
            elif row.status != "crit" and down_since is not None:
                intervals.append((down_since, _aware(row.at)))
                down_since = None
        if down_since is not None:
            intervals.append((down_since, now))
    return intervals


def _covered_seconds(intervals: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> float:
    clipped = sorted((max(a, start), min(b, end)) for a, b in intervals if b > start and a < end)
    total, cursor = 0.0, start
    for a, b in clipped:
        a = max(a, cursor)
        if b > a:
            total += (b - a).total_seconds()
            cursor = b
    return total


def uptime(component: Any, checks: list[CheckRow], incidents: list[IncidentRow], *, now: datetime, days: int
           ) -> tuple[float | None, list[dict[str, Any]]]:
    """Uptime % over the window (None: no evidence at all in it) and one bar per day (`no_data` where a day has
    no check result and no incident)."""
    start = now - timedelta(days=days)
    intervals = outage_intervals(component, checks, incidents, now=now)
    evidence_days = {_aware(r.at).date() for r in checks if matches(r.check_id, component.checks)}
    for incident in incidents:
        if affects(component, incident) and not incident.is_drill:
            day, last = _aware(incident.opened_at).date(), _aware(incident.resolved_at or now).date()
            while day <= last:
                evidence_days.add(day)
                day += timedelta(days=1)
    bars = []
    for i in range(days, 0, -1):
        day_start = datetime.combine((now - timedelta(days=i - 1)).date(), datetime.min.time(), tzinfo=timezone.utc)
        day_end = min(day_start + timedelta(days=1), now)
        down = _covered_seconds(intervals, day_start, day_end)
        if day_start.date() not in evidence_days:
            state = "no_data"
        elif down >= 3600:
            state = "major_outage" if down >= 6 * 3600 else "partial_outage"
        else:
            state = "operational" if down == 0 else "degraded_performance"
        bars.append({"date": day_start.date().isoformat(), "state": state, "down_minutes": round(down / 60, 1)})
    if not any(day >= start.date() for day in evidence_days):
        return None, bars
    first = max(start, min(datetime.combine(d, datetime.min.time(), tzinfo=timezone.utc) for d in evidence_days))
    window = (now - first).total_seconds()
    if window <= 0:
        return None, bars
    return round(100 * (1 - _covered_seconds(intervals, first, now) / window), 3), bars


def page_snapshot(page: Any, checks: list[CheckRow], incidents: list[IncidentRow], *, now: datetime,
                  environment: str) -> dict[str, Any]:
    """Everything the page, its JSON and its feed show."""
    stale = timedelta(hours=page.stale_after_hours)
    components = []
    for component in page.components:
        state, reasons = current_state(component, checks, incidents, now=now, stale_after=stale)
        pct, bars = uptime(component, checks, incidents, now=now, days=page.uptime_days)
        components.append(ComponentStatus(component.name, component.description, state, reasons, pct, bars))
    public_incidents = []
    for incident in sorted(incidents, key=lambda i: i.opened_at, reverse=True):
        if incident.is_drill:
            continue
        affected = [c.name for c in page.components if affects(c, incident)]
        public_incidents.append({
            "id": incident.key, "status": PUBLIC_STATUS.get(incident.status, incident.status),
            "impact": SEVERITY_STATE.get(incident.severity, "degraded_performance"),
            "title": f"{'Major outage' if incident.severity == 'P0' else 'Service disruption' if incident.severity == 'P1' else 'Degraded service'}"
                     f" affecting {', '.join(affected) if affected else 'the protocol'}",
            "components": affected, "started_at": _aware(incident.opened_at).isoformat(),
            "resolved_at": _aware(incident.resolved_at).isoformat() if incident.resolved_at else None,
            "updates": [dict(u) for u in incident.updates],
        })
    states = [c.state for c in components]
    if not components:
        overall = "no_data"
    elif any(s == "major_outage" for s in states):
        overall = "major_outage"
    elif any(s in ("partial_outage", "degraded_performance") for s in states):
        overall = "partial_outage" if "partial_outage" in states else "degraded_performance"
    elif all(s == "operational" for s in states):
        overall = "operational"
    else:
        overall = "no_data"
    return {
        "title": page.title, "environment": environment, "generated_at": now.isoformat(), "overall": overall,
        "components": [c.__dict__ for c in components],
        "incidents": public_incidents[:50],
    }
