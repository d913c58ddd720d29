"""Incident Management as plain functions: classification, status-update reminders, MTTA/MTTR, the report.

Nothing here touches Prefect, the store or the chain; tasks/incidents.py and flows/incident_response.py bind
these rules to them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

SEVERITIES = ("P0", "P1", "P2", "P3")
TYPES = ("technical", "security", "operational", "external")

# Watcher rules (config/watcher.yaml) that mean "funds at risk in the vault contract": contract vulnerability or
# drain → the guardian pause is the containment (playbook: Smart Contract Incidents / Circuit breaker activation).
DRAIN_RULES = frozenset({"tvl_drop", "large_withdrawals", "unapproved_upgrade", "unapproved_parameter_change",
                         "ownership_transferred", "admin_changed", "denylisted_caller"})
# Rules that mean the chain connection itself is failing (Infrastructure Failures / Major Outage Response).
OUTAGE_RULES = frozenset({"rpc_down", "rpc_unavailable", "rpc_latency", "block_lag", "node_down"})

VARIANTS = ("contract_drain", "security_breach", "major_outage", "general")

# Playbook "Emergency Response Plans" checklists, one per variant (ticked in the run's timeline).
CHECKLISTS: dict[str, tuple[str, ...]] = {
    "contract_drain": (
        "Circuit breaker: guardian pause of the vault",
        "Evidence preserved (contract state, logs of involved addresses, related alerts; sha256)",
        "Financial impact assessed (TVL and liabilities at detection vs now)",
        "Loss limitation: no unpause without two leads",
        "Communication: incident thread opened, commander paged",
    ),
    "security_breach": (
        "Immediate containment actions (pause where funds are at risk; rotate exposed credentials)",
        "Evidence preservation (on-chain state, logs, alerts; sha256 in the timeline)",
        "Forensic investigation (transactions of the involved addresses)",
        "Stakeholder notification (incident thread, security on-call paged)",
        "Recovery and remediation steps recorded as action items",
    ),
    "major_outage": (
        "Service restoration priorities: chain reads first",
        "Failover activation: chain block switched to the backup RPC URL",
        "Alternative service path verified (the backup answers with the right chain id)",
        "Resource escalation by the escalation policy",
        "External dependency management: provider ticket as an action item",
    ),
    "general": (
        "Severity and type assigned from the matrix",
        "Commander named and paged",
        "Evidence preserved",
    ),
}


@dataclass(frozen=True)
class Classification:
    title: str
    severity: str
    incident_type: str
    variant: str
    contract: str | None = None
    involved_addresses: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()


def parse_alert(alert: Any) -> dict[str, Any]:
    """The automation renders `{{ event.payload }}` as text (JSON or a Python repr): accept both, and dicts."""
    if alert is None or alert == "":
        return {}
    if isinstance(alert, Mapping):
        return dict(alert)
    text = str(alert).strip()
    try:
        value = json.loads(text)
    except ValueError:
        import ast

        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return {"raw": text}
    return dict(value) if isinstance(value, Mapping) else {"raw": text}


def _addresses(alert: Mapping[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    for source in (alert.get("annotations") or {}, alert.get("labels") or {}):
        for value in source.values():
            if isinstance(value, str) and value.startswith("0x") and len(value) == 42 and value not in found:
                found.append(value)
    return tuple(found)


def classify(*, title: str | None = None, severity: str | None = None, incident_type: str | None = None,
             kind: str | None = None, alert: Any = None) -> Classification:
    """Severity, type and response variant from a person's input and/or an alert (the person's input wins).

    `kind`: drain | vulnerability | security_breach | major_outage | general (a person's hint)."""
    a = parse_alert(alert)
    reasons: list[str] = []
    sev = (severity or a.get("severity") or "P2").upper()
    if sev not in SEVERITIES:
        reasons.append(f"unknown severity {sev!r}: treated as P2")
        sev = "P2"
    rule = str(a.get("rule") or "")
    labels = a.get("labels") or {}
    typ = (incident_type or "").lower() or None
    if typ is None:
        if labels.get("category") == "security" or rule in DRAIN_RULES:
            typ = "security"
            reasons.append(f"rule {rule or '?'} is a security alert")
        elif rule in OUTAGE_RULES:
            typ = "external" if "provider" in rule else "technical"
        else:
            typ = "technical"
    if typ not in TYPES:
        reasons.append(f"unknown type {typ!r}: treated as technical")
        typ = "technical"
    k = (kind or "").lower()
    if k in ("drain", "vulnerability", "contract_drain") or rule in DRAIN_RULES:
        variant = "contract_drain"
    elif k in ("major_outage", "outage") or rule in OUTAGE_RULES:
        variant = "major_outage"
    elif k == "security_breach" or (typ == "security" and k != "general"):
        variant = "security_breach"
    else:
        variant = "general"
    ann = a.get("annotations") or {}
    name = title or ann.get("summary") or (f"{rule} on {a.get('environment')}" if rule else "incident")
    return Classification(title=str(name)[:500], severity=sev, incident_type=typ, variant=variant,
                          contract=a.get("contract") or None, involved_addresses=_addresses(a),
                          reasons=tuple(reasons))


def needs_guardian_pause(c: Classification) -> bool:
    """Contract vulnerability or drain: containment is the guardian pause."""
    return c.variant == "contract_drain"


# --------------------------------------------------------------------------- status-update reminders


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def reminder_schedule(opened_at: datetime, interval_minutes: int, until: datetime) -> list[datetime]:
    """Every instant a status update is due from opening until `until` (exclusive of opening itself)."""
    opened_at, until = _aware(opened_at), _aware(until)
    step = timedelta(minutes=interval_minutes)
    out, t = [], opened_at + step
    while t <= until:
        out.append(t)
        t += step
    return out


def next_update_due(last_update_at: datetime, interval_minutes: int) -> datetime:
    return _aware(last_update_at) + timedelta(minutes=interval_minutes)


def due_reminder(*, opened_at: datetime, last_update_at: datetime | None, interval_minutes: int,
                 now: datetime) -> datetime | None:
    """The due instant of an overdue status update (the key of its one reminder), or None when not due.

    The clock restarts at each status update: due = (last update or opening) + interval."""
    base = _aware(last_update_at or opened_at)
    due = base + timedelta(minutes=interval_minutes)
    return due if _aware(now) >= due else None


# --------------------------------------------------------------------------- metrics


def minutes_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((_aware(end) - _aware(start)).total_seconds() / 60.0, 3)


@dataclass(frozen=True)
class IncidentTimes:
    opened_at: datetime
    acknowledged_at: datetime | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    is_drill: bool = False
    severity: str = "P2"


def mtta_minutes(t: IncidentTimes) -> float | None:
    return minutes_between(t.opened_at, t.acknowledged_at)


def mttr_minutes(t: IncidentTimes) -> float | None:
    return minutes_between(t.opened_at, t.resolved_at)


def incident_metrics(incidents: Iterable[IncidentTimes]) -> dict[str, Any]:
    """Mean MTTA/MTTR over real incidents; drills never count."""
    real = [t for t in incidents if not t.is_drill]
    acks = [m for m in (mtta_minutes(t) for t in real) if m is not None]
    fixes = [m for m in (mttr_minutes(t) for t in real) if m is not None]
    return {"incidents": len(real), "mtta_minutes": round(sum(acks) / len(acks), 3) if acks else None,
            "mttr_minutes": round(sum(fixes) / len(fixes), 3) if fixes else None}


def sla_breaches(t: IncidentTimes, *, ack_sla_minutes: int, response_sla_minutes: int) -> list[str]:
    out = []
    a, r = mtta_minutes(t), minutes_between(t.opened_at, t.mitigated_at or t.resolved_at)
    if a is not None and a > ack_sla_minutes:
        out.append(f"acknowledged after {a:.1f} min (SLA {ack_sla_minutes} min)")
    if r is not None and r > response_sla_minutes:
        out.append(f"mitigated after {r:.1f} min (SLA {response_sla_minutes} min)")
    return out


# --------------------------------------------------------------------------- evidence and report


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def evidence_sha256(evidence: Any) -> str:
    """sha256 of the canonical JSON of an evidence bundle: recomputing it later proves it is unchanged."""
    return hashlib.sha256(canonical_json(evidence).encode()).hexdigest()


def failover_order(urls: list[str], failed: Iterable[str] = ()) -> list[str]:
    """RPC URLs with the backups first: the failed/primary URL(s) move to the end, order otherwise kept."""
    failed = set(failed) or ({urls[0]} if urls else set())
    return [u for u in urls if u not in failed] + [u for u in urls if u in failed]


@dataclass
class IncidentReport:
    key: str
    title: str
    severity: str
    incident_type: str
    variant: str
    commander: str | None
    is_drill: bool
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    impact: str
    root_cause: str
    contributing_factors: list[str]
    action_items: list[str]
    timeline: list[dict[str, Any]]
    checklist: list[dict[str, Any]] = field(default_factory=list)
    evidence_sha256: list[str] = field(default_factory=list)
    due_days: int = 5

    def metrics(self) -> dict[str, Any]:
        t = IncidentTimes(self.opened_at, self.acknowledged_at, None, self.resolved_at, self.is_drill)
        return {"mtta_minutes": mtta_minutes(t), "mttr_minutes": mttr_minutes(t)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "title": self.title, "severity": self.severity, "type": self.incident_type,
            "variant": self.variant, "commander": self.commander, "is_drill": self.is_drill,
            "opened_at": self.opened_at.isoformat(),
            "acknowledged_at": self.acknowledged_at.isoformat() if self.acknowledged_at else None,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            **self.metrics(), "impact": self.impact, "root_cause": self.root_cause,
            "contributing_factors": list(self.contributing_factors), "action_items": list(self.action_items),
            "timeline": self.timeline, "checklist": self.checklist, "evidence_sha256": self.evidence_sha256,
            "report_due_by": (self.opened_at + timedelta(days=self.due_days)).isoformat(),
        }

    def markdown(self) -> str:
        m = self.metrics()
        fmt = lambda v: "-" if v is None else f"{v:.2f} min"  # noqa: E731
        lines = [f"# Post-incident report {self.key}{' (DRILL)' if self.is_drill else ''}: {self.title}", "",
                 "| | |", "| --- | --- |", f"| severity | {self.severity} |", f"| type | {self.incident_type} |",
                 f"| response | {self.variant} |", f"| commander | {self.commander or 'unassigned'} |",
                 f"| opened | {self.opened_at.isoformat()} |",
                 f"| MTTA | {fmt(m['mtta_minutes'])} |", f"| MTTR | {fmt(m['mttr_minutes'])} |", "",
                 "## Impact", "", self.impact or "-", "", "## Root cause", "", self.root_cause or "-", "",
                 "## Contributing factors", ""]
        lines += [f"- {f}" for f in self.contributing_factors] or ["- none recorded"]
        lines += ["", "## Action items", ""]
        lines += [f"- [ ] {a}" for a in self.action_items] or ["- none recorded"]
        if self.checklist:
            lines += ["", "## Response checklist", ""]
            lines += [f"- [{'x' if c.get('done') else ' '}] {c['item']}"
                      + ("" if c.get("done") else " _(no evidence in the run: to be confirmed by a person)_")
                      for c in self.checklist]
        if self.evidence_sha256:
            lines += ["", "## Evidence", ""] + [f"- sha256 `{h}`" for h in self.evidence_sha256]
        lines += ["", "## Timeline", "", "| at (UTC) | kind | by | message |", "| --- | --- | --- | --- |"]
        for e in self.timeline:
            msg = str(e.get("message", "")).replace("|", "\\|").replace("\n", " ")[:200]
            lines.append(f"| {e.get('at')} | {e.get('kind')} | {e.get('actor')} | {msg} |")
        return "\n".join(lines) + "\n"
