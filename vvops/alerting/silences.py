"""Silences, maintenance windows and inhibition (pure functions over label sets and `now`).

A silence or maintenance window mutes matching alerts while active and expires by itself; an inhibition
rule mutes target alerts while a matching source alert fires with the same `equal` labels. Muted alerts
are still tracked (status `silenced`) but send no notification and page nobody."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from vvops.config.alerting_schema import InhibitRule, MaintenanceWindow, SilenceSpec, matches_all

__all__ = ["Silence", "Mute", "silenced_by", "inhibited_by", "mute_reason", "active_silences"]

Silence = SilenceSpec
"""An ad-hoc silence has the same shape as a config one: `Silence(matchers=[Matcher.parse(...)], starts_at=...,
ends_at=..., created_by=..., reason=...)` (or `Silence.model_validate({...})` with matcher strings)."""


@dataclass(frozen=True)
class Mute:
    kind: str
    """silence | maintenance | inhibition"""
    name: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "reason": self.reason}


def active_silences(silences: Iterable[SilenceSpec], now: datetime) -> list[SilenceSpec]:
    return [s for s in silences if s.active(now)]


def silenced_by(labels: dict[str, Any], now: datetime, *, silences: Iterable[SilenceSpec] = (),
                windows: Iterable[MaintenanceWindow] = ()) -> Mute | None:
    """The first active silence or maintenance window matching these labels, or None."""
    for s in silences:
        if s.active(now) and s.matches(labels):
            return Mute("silence", s.id or "silence", f"{s.reason} (by {s.created_by} until {s.ends_at.isoformat()})")
    for w in windows:
        if w.active(now) and w.matches(labels):
            return Mute("maintenance", w.name, w.reason or "maintenance window")
    return None


def inhibited_by(labels: dict[str, Any], firing: Iterable[dict[str, Any]],
                 rules: Iterable[InhibitRule]) -> Mute | None:
    """The first inhibition rule for which some other firing alert (a source) mutes this one (a target)."""
    firing = list(firing)
    for i, rule in enumerate(rules):
        if not matches_all(rule.target_matchers, labels):
            continue
        for src in firing:
            if src == labels or not matches_all(rule.source_matchers, src):
                continue
            if matches_all(rule.target_matchers, src) and matches_all(rule.source_matchers, labels):
                continue  # an alert matching both sides never inhibits its peers (Alertmanager's rule)
            if all(str(src.get(k, "")) == str(labels.get(k, "")) for k in rule.equal):
                return Mute("inhibition", rule.name or f"inhibit_rules[{i}]",
                            f"inhibited by {src.get('alertname', '?')}"
                            + (f" ({', '.join(f'{k}={src.get(k)}' for k in rule.equal)})" if rule.equal else ""))
    return None


def mute_reason(labels: dict[str, Any], now: datetime, *, firing: Iterable[dict[str, Any]] = (),
                silences: Iterable[SilenceSpec] = (), windows: Iterable[MaintenanceWindow] = (),
                inhibit_rules: Iterable[InhibitRule] = ()) -> Mute | None:
    """Why this alert is muted now (silence, then maintenance window, then inhibition), or None."""
    return (silenced_by(labels, now, silences=silences, windows=windows)
            or inhibited_by(labels, firing, inhibit_rules))
