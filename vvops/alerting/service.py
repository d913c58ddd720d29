"""The store-backed alert lifecycle: firing → (silenced) → acknowledged → resolved, with notifications.

    svc = AlertService(engine, cfg)                         # cfg: a loaded OpsConfig (rules, routes, on-call)
    msgs = svc.process_outcomes(outcomes, "devnet", now)    # check outcomes → alerts → notifications
    msgs = svc.process_firing(instances, now, cleared=[labels, ...])
    msgs = svc.acknowledge("a1b2...", by="mei", source="slack", now=now)
    msgs = svc.resolve(42, now=now, by="mei")
    msgs = svc.due_escalations(now)                         # the every-minute sweep (pages, repeats, expiries)

Every method returns plain dicts `{kind, channel_purpose, payload, thread_key, idempotency_key}` ready for
`tasks.notify.notify(**msg, environment=...)`. State changes and the notifications they imply are decided
in one write transaction that first takes the alerts' write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an
advisory lock, then the rows FOR UPDATE), so two sweeps never return the same page twice and concurrent writers
(watchers, sweeps, Slack acknowledgements) queue instead of deadlocking on rows and the audit tail; idempotency keys are deterministic for the outbox to drop replays.

Per-alert bookkeeping (routes and their last notification, escalation progress, why it is muted) lives in
the alert's `annotations["_vvops"]`; user-facing annotations are the other keys.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from vvops.store import advisory_key, append_audit, serialise_writers, session_scope
from vvops.store.models import Alert

from .escalation import escalation_timeline, oncall_resolvers
from .grouping import AlertView, plan_group, short_hash
from .routing import RouteMatch, group_key, route_alert
from .rules import AlertInstance, evaluate_outcomes
from .silence_store import active_stored_silences
from .silences import SilenceSpec, mute_reason

ALERTS_ADVISORY_LOCK = advisory_key("vvopsalr")

__all__ = ["AlertService", "STATE_KEY"]

STATE_KEY = "_vvops"
OPEN = ("firing", "acknowledged", "silenced")


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(timezone.utc).isoformat() if dt else None


def _dt(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


def _aware(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError("pass a timezone-aware `now`")
    return dt.astimezone(timezone.utc)


class AlertService:
    def __init__(self, engine: Engine, cfg: Any, *, silences: Iterable[SilenceSpec] = (),
                 who_is_on_call: Any = None, people_with_role: Any = None):
        """`silences`: ad-hoc silences on top of alerting.yaml's (e.g. created from Slack or the UI)."""
        self.engine = engine
        self.cfg = cfg
        self.alerting = cfg.alerting
        self.silences = tuple(self.alerting.silences) + tuple(silences)
        # alerting.yaml `alertmanager.send.mode: instead`: the team's Alertmanager routes and notifies; alerts are
        # still stored, deduplicated, muted and escalation state kept, but no notification leaves from here
        interop = getattr(self.alerting, "alertmanager", None)
        self.routes_elsewhere = bool(interop and interop.send is not None and interop.send.mode == "instead")
        who, roles = oncall_resolvers(cfg)
        self.who_is_on_call = who_is_on_call or who
        self.people_with_role = people_with_role or roles

    # ------------------------------------------------------------------ public API

    def process_outcomes(self, outcomes: Iterable[Any], environment: str, now: datetime, *,
                         chain: str | None = None) -> list[dict[str, Any]]:
        """Daily-check outcomes through the rules: crit/warn fire, ok resolves; returns notifications."""
        sev = {c.id: c.severity.model_dump() for c in self.cfg.checks.checks}
        ev = evaluate_outcomes(self.alerting.rules, outcomes, environment, check_severities=sev, chain=chain)
        return self.process_firing(ev.firing, now, cleared=ev.cleared, environment=environment)

    def process_firing(self, alerts: Iterable[AlertInstance], now: datetime, *,
                       cleared: Iterable[dict[str, Any]] = (), environment: str | None = None) -> list[dict[str, Any]]:
        """Record firing alerts (deduplicated by fingerprint: the count goes up), resolve cleared ones, then
        return the group notifications and pages due at `now`."""
        now = _aware(now)
        with session_scope(self.engine, immediate=True) as s:
            lock_alerts(s)
            open_rows = {a.fingerprint: a for a in self._open(s)}
            for inst in alerts:
                self._add_runbook(inst)
                row = open_rows.get(inst.fingerprint)
                if row is None:
                    row = self._create(s, inst, now)
                    open_rows[inst.fingerprint] = row
                else:
                    self._refresh(row, inst, now)
            for labels in cleared:
                from .rules import fingerprint_labels

                row = open_rows.get(fingerprint_labels(labels))
                if row is not None:
                    self._mark_resolved(s, row, now, by="system", reason="condition cleared")
            s.flush()
            return self._tick(s, now, environment)

    def _add_runbook(self, inst: AlertInstance) -> None:
        """The runbook section that handles the alert (config/runbooks.yaml) as the `runbook_url` annotation, as
        Prometheus rules carry it; a rule's own runbook_url annotation wins."""
        books = getattr(self.cfg, "runbooks", None)
        url = books.for_alert(inst.rule, inst.labels) if books is not None else None
        if url and not inst.annotations.get("runbook_url"):
            inst.annotations["runbook_url"] = url

    def resolve(self, ref: int | str, *, now: datetime, by: str = "system", reason: str = "",
                source: str = "system") -> list[dict[str, Any]]:
        """Resolve an open alert (by id or fingerprint); returns the resolve notification if due now."""
        now = _aware(now)
        with session_scope(self.engine, immediate=True) as s:
            lock_alerts(s)
            row = self._find(s, ref)
            if row is None:
                raise LookupError(f"no open alert {ref!r}")
            self._mark_resolved(s, row, now, by=by, reason=reason, source=source)
            s.flush()
            return self._tick(s, now)

    def acknowledge(self, ref: int | str, *, by: str, source: str, now: datetime) -> list[dict[str, Any]]:
        """Acknowledge an open alert (by id or fingerprint) for a roster person; stops its escalation.
        Audited; acknowledging twice is a no-op that returns []."""
        now = _aware(now)
        try:
            self.cfg.person(by)
        except KeyError:
            raise PermissionError(f"'{by}' is not in team.yaml: only people on the roster acknowledge alerts") from None
        with session_scope(self.engine, immediate=True) as s:
            lock_alerts(s)
            row = self._find(s, ref)
            if row is None:
                raise LookupError(f"no open alert {ref!r}")
            if row.acknowledged_at is not None:
                return []
            row.acknowledged_by, row.acknowledged_at = by, now
            if row.status == "firing":
                row.status = "acknowledged"
            append_audit(s, actor=by, action="alert.acknowledged", subject=f"alert:{row.id}", source=source,
                         details={"fingerprint": row.fingerprint, "rule": row.rule, "severity": row.severity}, at=now)
            st = self._state(row)
            routes = st.get("routes", {})
            msgs = []
            for rid, r in routes.items():
                if r.get("notified_at"):
                    msgs.append({
                        "kind": "alert.acknowledged", "channel_purpose": r["channel"],
                        "thread_key": f"alert-group:{short_hash(r['group'])}",
                        "idempotency_key": f"ack:{row.id}:{rid}",
                        "payload": {"text": f"{by} acknowledged {row.annotations.get('summary', row.rule)} (via {source})",
                                    "summary": f"acknowledged by {by}", "alert_id": row.id,
                                    "fingerprint": row.fingerprint, "by": by, "source": source,
                                    "severity": row.severity},
                    })
            return msgs

    def due_escalations(self, now: datetime) -> list[dict[str, Any]]:
        """The sweep: expire silences, resolve stale event alerts, send due group notifications (group_wait,
        group_interval, repeat_interval) and every page due since the last sweep, each exactly once."""
        now = _aware(now)
        with session_scope(self.engine, immediate=True) as s:
            lock_alerts(s)
            for row in self._open(s):
                st = self._state(row)
                after = st.get("resolve_after_s")
                if after and row.status != "resolved" and _dt(st["last_seen"]) + timedelta(seconds=after) <= now:
                    self._mark_resolved(s, row, now, by="system", reason="not seen again")
            s.flush()
            return self._tick(s, now)

    # ------------------------------------------------------------------ internals

    def _open(self, s: Session) -> list[Alert]:
        q = select(Alert).where(Alert.status.in_(OPEN)).order_by(Alert.id)
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()
        return list(s.scalars(q))

    def _find(self, s: Session, ref: int | str) -> Alert | None:
        cond = [Alert.fingerprint == str(ref)]
        if isinstance(ref, int) or str(ref).isdigit():
            cond.append(Alert.id == int(ref))
        q = select(Alert).where(or_(*cond), Alert.status.in_(OPEN))
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()
        return s.scalars(q).first()

    @staticmethod
    def _state(row: Alert) -> dict[str, Any]:
        return (row.annotations or {}).get(STATE_KEY, {})

    @staticmethod
    def _set_state(row: Alert, st: dict[str, Any]) -> None:
        ann = copy.deepcopy(dict(row.annotations or {}))
        ann[STATE_KEY] = st
        row.annotations = ann  # a new object, so SQLAlchemy writes the JSON column

    def _routes(self, labels: dict[str, Any]) -> list[RouteMatch]:
        return route_alert(self.alerting.route, labels)

    def _escalation_for(self, routes: list[RouteMatch], severity: str) -> dict[str, Any] | None:
        level = self.cfg.severity(severity)
        for r in routes:
            escalate = r.escalate if r.escalate is not None else level.page
            if escalate:
                return {"policy": r.escalation_policy or level.escalation_policy, "route": r.route_id,
                        "channel": r.channel,
                        "ack_timeout_s": r.ack_timeout.total_seconds() if r.ack_timeout else None}
        return None

    def _route_state(self, row_routes: dict[str, Any], labels: dict[str, Any], severity: str
                     ) -> tuple[dict[str, Any], list[RouteMatch]]:
        routes = self._routes(labels)
        out = {}
        for r in routes:
            prev = row_routes.get(r.route_id, {})
            gk = group_key(r, labels)
            keep = prev if prev.get("group") == gk else {}
            out[r.route_id] = {"group": gk, "channel": r.channel, "notified_at": keep.get("notified_at"),
                               "resolved_notified": False}
        return out, routes

    def _create(self, s: Session, inst: AlertInstance, now: datetime) -> Alert:
        routes_state, routes = self._route_state({}, inst.labels, inst.severity)
        esc = self._escalation_for(routes, inst.severity)
        st = {"routes": routes_state, "last_seen": _iso(now), "resolve_after_s": inst.resolve_after_s,
              "escalation": ({**esc, "started_at": _iso(now), "through": None} if esc else None), "mute": None}
        row = Alert(fingerprint=inst.fingerprint, rule=inst.rule, severity=inst.severity, status="firing",
                    labels=dict(inst.labels), annotations={**inst.annotations, STATE_KEY: st}, starts_at=now, count=1)
        s.add(row)
        s.flush()
        return row

    def _refresh(self, row: Alert, inst: AlertInstance, now: datetime) -> None:
        st = copy.deepcopy(self._state(row))
        row.count = (row.count or 1) + 1
        st["last_seen"] = _iso(now)
        if inst.severity != row.severity or inst.labels != row.labels:
            row.severity = inst.severity
            row.labels = dict(inst.labels)
            st["routes"], routes = self._route_state(st.get("routes", {}), inst.labels, inst.severity)
            esc = self._escalation_for(routes, inst.severity)
            old = st.get("escalation")
            if esc and (not old or old.get("policy") != esc["policy"]):
                st["escalation"] = {**esc, "started_at": _iso(now), "through": old.get("through") if old else None}
        ann = {**inst.annotations, STATE_KEY: st}
        row.annotations = ann

    def _mark_resolved(self, s: Session, row: Alert, now: datetime, *, by: str, reason: str,
                       source: str = "system") -> None:
        row.status, row.ends_at = "resolved", now
        row.resolve_notice_pending = owes_resolve_notice(row)
        append_audit(s, actor=by, action="alert.resolved", subject=f"alert:{row.id}", source=source,
                     details={"fingerprint": row.fingerprint, "rule": row.rule, "reason": reason}, at=now)

    def _tick(self, s: Session, now: datetime, environment: str | None = None) -> list[dict[str, Any]]:
        """Re-evaluate mutes, then plan group notifications and pages; record what was sent."""
        rows = list(self._open(s))
        recent = now - timedelta(days=7)  # resolve notifications are due within a group_interval
        pending_resolved = []
        for r in s.scalars(select(Alert).where(Alert.status == "resolved", Alert.resolve_notice_pending.is_(True),
                                               Alert.ends_at >= recent)):
            if owes_resolve_notice(r):
                pending_resolved.append(r)
            else:
                r.resolve_notice_pending = False
        firing_labels = [r.labels for r in rows]
        silences = (*self.silences, *active_stored_silences(s, now))
        for row in rows:
            mute = mute_reason(row.labels, now, firing=firing_labels, silences=silences,
                               windows=self.alerting.maintenance_windows, inhibit_rules=self.alerting.inhibit_rules)
            st = copy.deepcopy(self._state(row))
            if mute and row.status != "silenced":
                row.status = "silenced"
                st["mute"] = mute.as_dict()
                self._set_state(row, st)
            elif not mute and row.status == "silenced":
                row.status = "acknowledged" if row.acknowledged_at else "firing"
                st["mute"] = None
                if st.get("escalation") and not row.acknowledged_at:
                    # live again: escalate from the first step (pages due while muted are not replayed)
                    st["escalation"].update(started_at=_iso(now), through=None)
                self._set_state(row, st)

        # group notifications
        groups: dict[tuple[str, str], tuple[RouteMatch, list[tuple[Alert, AlertView]]]] = {}
        for row in rows + pending_resolved:
            if row.status == "silenced":
                continue
            routes = {r.route_id: r for r in self._routes(row.labels)}
            for rid, rs in self._state(row).get("routes", {}).items():
                route = routes.get(rid)
                if route is None:
                    continue
                view = AlertView(row.fingerprint, row.status, row.severity, row.labels,
                                 {k: v for k, v in row.annotations.items() if k != STATE_KEY}, row.starts_at,
                                 _dt(rs.get("notified_at")), bool(rs.get("resolved_notified")), row.ends_at,
                                 row.id, row.count)
                groups.setdefault((rid, rs["group"]), (route, []))[1].append((row, view))
        out: list[dict[str, Any]] = []
        for (rid, gk), (route, members) in sorted(groups.items()):
            note = plan_group(route, gk, [v for _, v in members], now)
            if note is None:
                continue
            out.append(note.as_message(environment))
            included = {a.fingerprint for a in note.firing + note.resolved}
            for row, _ in members:
                if row.fingerprint not in included:
                    continue
                st = copy.deepcopy(self._state(row))
                st["routes"][rid]["notified_at"] = _iso(now)
                if row.status == "resolved":
                    st["routes"][rid]["resolved_notified"] = True
                self._set_state(row, st)
                row.last_notified_at = now
                if row.status == "resolved":
                    row.resolve_notice_pending = owes_resolve_notice(row)
        out += self._pages(s, rows, now)
        return [] if self.routes_elsewhere else out

    def _pages(self, s: Session, rows: list[Alert], now: datetime) -> list[dict[str, Any]]:
        out = []
        for row in rows:
            st = copy.deepcopy(self._state(row))
            esc = st.get("escalation")
            if not esc or row.status == "resolved":
                continue
            through = _dt(esc.get("through"))
            if row.status == "silenced":
                esc["through"] = _iso(now)  # muted: pages that fall due now are skipped, not postponed
                self._set_state(row, st)
                continue
            try:
                policy = self.cfg.escalation_policy(esc["policy"])
            except KeyError:
                continue
            ack_timeout = timedelta(seconds=esc["ack_timeout_s"]) if esc.get("ack_timeout_s") else None
            timeline = escalation_timeline(policy, _dt(esc["started_at"]), row.acknowledged_at, None,
                                           who_is_on_call=self.who_is_on_call,
                                           people_with_role=self.people_with_role, ack_timeout=ack_timeout)
            due = [p for p in timeline if p.at <= now and (through is None or p.at > through)]
            esc["through"] = _iso(now)
            self._set_state(row, st)
            route = st.get("routes", {}).get(esc["route"], {})
            for p in due:
                append_audit(s, actor="alerting", action="alert.paged", subject=f"alert:{row.id}",
                             details={"targets": list(p.targets), "step": p.step, "cycle": p.cycle,
                                      "policy": policy.name, "due_at": _iso(p.at)}, at=now)
                summary = row.annotations.get("summary", row.rule)
                out.append({
                    "kind": "alert.page", "channel_purpose": esc["channel"],
                    "thread_key": f"alert-group:{short_hash(route['group'])}" if route.get("group") else None,
                    "idempotency_key": f"page:{row.id}:{p.key}",
                    "payload": {"text": f"PAGE {row.severity} {summary} → {', '.join(p.targets) or 'nobody on call'}"
                                        f" (step {p.step + 1}/{len(policy.steps)}, pass {p.cycle + 1})",
                                "summary": summary, "targets": list(p.targets), "notify": list(p.notify),
                                "step": p.step, "cycle": p.cycle, "policy": policy.name, "due_at": _iso(p.at),
                                "alert_id": row.id, "fingerprint": row.fingerprint, "severity": row.severity},
                })
        return out


def lock_alerts(session: Session) -> None:
    """Every transaction that writes alerts takes this first (see the module docstring)."""
    serialise_writers(session, key=ALERTS_ADVISORY_LOCK, table=Alert.__tablename__)


def owes_resolve_notice(row: Alert) -> bool:
    """Resolved, and some route announced it firing but not yet resolved."""
    routes = (row.annotations or {}).get(STATE_KEY, {}).get("routes", {})
    return row.status == "resolved" and any(v.get("notified_at") and not v.get("resolved_notified")
                                            for v in routes.values())
