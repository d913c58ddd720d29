"""Who may take a CLI action that changes what others rely on, once their identity is proven.

- silences (`alerting.yaml silence_policy`): the severities a silence can mute decide the roles allowed and
  the longest duration. A silence that does not pin `severity` (or a single alert rule of known severity)
  can mute P0, so it needs a P0 role and P0's maximum. A reason is required.
- contract slot release (`procedures.yaml actions.slot_release`).
- checklist sign-off of an item owned by a role the person does not hold
  (`procedures.yaml actions.checklist_signoff_other_role`).
Each check raises ActionRefused(rule, message); callers audit the refusal with that rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

SEVERITIES = ("P0", "P1", "P2", "P3")


class ActionRefused(PermissionError):
    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule


def silence_severities(matchers: Iterable[Any], alerting: Any) -> list[str]:
    """The severities an alert muted by these matchers can have (conservative: unknown means all)."""
    matchers = list(matchers)
    sevs = {s for s in SEVERITIES if all(m.matches({"severity": s}) for m in matchers if m.name == "severity")}
    names = [m for m in matchers if m.name == "alertname"]
    if names:
        rules = [r for r in alerting.rules if all(m.matches({"alertname": r.name}) for m in names)]
        if rules and all(r.severity is not None for r in rules):
            sevs &= {s for r in rules for s in (r.severity.warn, r.severity.crit)}
    return sorted(sevs)


def _fmt(d: timedelta) -> str:
    hours = d.total_seconds() / 3600
    return f"{hours:g}h" if hours < 48 else f"{hours / 24:g}d"


def authorize_silence(person: Any, *, matchers: Iterable[Any], duration: timedelta, reason: str,
                      alerting: Any) -> dict[str, Any]:
    """Raise ActionRefused unless `person` may add this silence; returns what was checked (for the audit)."""
    policy = alerting.silence_policy
    if not (reason or "").strip():
        raise ActionRefused("silence_policy.reason", "a silence needs a reason (shown on every muted alert)")
    sevs = silence_severities(matchers, alerting) or list(SEVERITIES)
    for sev in sevs:
        allowed = policy.roles[sev]
        if not set(allowed) & set(person.roles):
            raise ActionRefused("silence_policy.roles", (
                f"{person.id} ({', '.join(person.roles)}) may not silence {sev} alerts (roles: {', '.join(allowed)}); "
                f"this silence can mute {', '.join(sevs)}: narrow it, e.g. severity=\"P3\""))
    longest = min(policy.max_duration[s] for s in sevs)
    if duration > longest:
        raise ActionRefused("silence_policy.max_duration", (
            f"a silence that can mute {', '.join(sevs)} lasts at most {_fmt(longest)} (asked {_fmt(duration)})"))
    return {"severities": sevs, "max_duration_s": int(longest.total_seconds())}


def authorize_slot_release(person: Any, actions: Any) -> dict[str, Any]:
    allowed = actions.slot_release
    if not set(allowed) & set(person.roles):
        raise ActionRefused("actions.slot_release", f"{person.id} may not release a contract slot "
                                                    f"(roles: {', '.join(allowed)})")
    return {"roles": list(allowed)}


def authorize_checklist(person: Any, *, owner_role: str, actions: Any) -> dict[str, Any]:
    if not owner_role or owner_role in person.roles:
        return {"owner_role": owner_role, "own_role": True}
    allowed = actions.checklist_signoff_other_role
    if not set(allowed) & set(person.roles):
        raise ActionRefused("actions.checklist_signoff_other_role", (
            f"{person.id} ({', '.join(person.roles)}) may not sign off an item owned by {owner_role} "
            f"(roles allowed to sign off for others: {', '.join(allowed)})"))
    return {"owner_role": owner_role, "own_role": False}
