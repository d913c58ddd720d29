"""Alert rules: turn check outcomes and on-chain events into alert instances (pure functions)."""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any, Iterable

from vvops.config.alerting_schema import AlertRule, fingerprint_labels, matches_all

__all__ = ["AlertInstance", "CheckEvaluation", "evaluate_outcomes", "evaluate_event", "render", "fingerprint_labels"]

DEFAULT_SEVERITY = {"warn": "P3", "crit": "P2"}


@dataclass(frozen=True)
class AlertInstance:
    """One firing alert as a rule produced it (not yet deduplicated, routed or stored)."""

    rule: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    resolve_after_s: float | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint_labels(self.labels)


@dataclass(frozen=True)
class CheckEvaluation:
    firing: list[AlertInstance]
    """Outcomes whose status met a rule's condition."""
    cleared: list[dict[str, str]]
    """Label sets (so fingerprints) of rule/outcome pairs whose check came back `ok` or below the condition."""


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, values: dict[str, Any]) -> str:
    """`{value}`-style templates; unknown or missing fields render empty, never raise."""
    try:
        return string.Formatter().vformat(template, (), _Blank({k: "" if v is None else v for k, v in values.items()}))
    except (ValueError, IndexError, AttributeError):
        return template


def _fmt(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _check_severity(check_severities: dict[str, dict[str, str]] | None, check_id: str) -> dict[str, str]:
    """The checks.yaml severity of the check this outcome id belongs to (longest id prefix)."""
    best: dict[str, str] | None = None
    best_len = -1
    for cid, sev in (check_severities or {}).items():
        if (check_id == cid or check_id.startswith(cid + ".")) and len(cid) > best_len:
            best, best_len = sev, len(cid)
    return best or DEFAULT_SEVERITY


def _labels(rule: AlertRule, base: dict[str, Any], severity: str) -> dict[str, str]:
    labels = {k: str(v) for k, v in base.items() if v is not None}
    labels.update(rule.labels)
    labels["alertname"] = rule.name
    labels["severity"] = severity
    return labels


def evaluate_outcomes(rules: Iterable[AlertRule], outcomes: Iterable[Any], environment: str, *,
                      check_severities: dict[str, dict[str, str]] | None = None,
                      chain: str | None = None) -> CheckEvaluation:
    """Every (check rule, outcome) pair: firing when the outcome's status is in `when`, cleared when it is
    `ok` (or a status the rule does not fire on); `error` outcomes neither fire nor clear.

    Outcomes are `CheckOutcome`s (or anything with id/area/status/message/value/threshold/hint/details);
    `details["labels"]` adds labels (e.g. contract). `check_severities`: checks.yaml id → {warn, crit}."""
    firing: list[AlertInstance] = []
    cleared: list[dict[str, str]] = []
    outcomes = list(outcomes)
    for rule in rules:
        if not rule.enabled or rule.kind != "check":
            continue
        for o in outcomes:
            if not rule.matches_source("check", o.id):
                continue
            extra = (o.details or {}).get("labels") or {}
            base = {"environment": environment, "chain": chain or environment, "check": o.id, "area": o.area, **extra}
            if o.status == "error":
                continue
            sev_map = rule.severity.model_dump() if rule.severity else _check_severity(check_severities, o.id)
            status_for_sev = o.status if o.status in ("warn", "crit") else "crit"
            severity = sev_map[status_for_sev]
            labels = _labels(rule, base, severity)
            if not matches_all(rule.match, labels):
                continue
            if o.status in rule.when:
                values = {**labels, "value": _fmt(o.value), "threshold": o.threshold, "message": o.message,
                          "hint": o.hint or "", "status": o.status}
                annotations = {k: render(v, values) for k, v in rule.annotations.items()}
                annotations.setdefault("summary", f"{o.id}: {o.message}")
                firing.append(AlertInstance(rule.name, severity, labels, annotations))
            else:
                cleared.append(labels)
    return CheckEvaluation(firing, cleared)


def evaluate_event(rules: Iterable[AlertRule], event: str, labels: dict[str, Any], environment: str, *,
                   message: str = "", values: dict[str, Any] | None = None,
                   chain: str | None = None) -> list[AlertInstance]:
    """The alerts an on-chain event raises (one per matching event rule). `labels`: decoded event labels
    such as contract; `values` feed the annotation templates."""
    out = []
    for rule in rules:
        if not rule.enabled or not rule.matches_source("event", event):
            continue
        severity = rule.severity.crit if rule.severity else "P2"
        base = {"environment": environment, "chain": chain or environment, "event": event, **labels}
        full = _labels(rule, base, severity)
        if not matches_all(rule.match, full):
            continue
        tv = {**full, "message": message, **(values or {})}
        annotations = {k: render(v, tv) for k, v in rule.annotations.items()}
        annotations.setdefault("summary", f"{event} on {full['chain']}")
        out.append(AlertInstance(rule.name, severity, full, annotations,
                                 resolve_after_s=rule.resolve_after.total_seconds() if rule.resolve_after else None))
    return out
