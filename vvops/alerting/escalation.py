"""Escalation timelines (PagerDuty-like), as a pure function of the policy and a few instants.

Step i of pass k pages its targets at `started_at + (minutes of every earlier step)`; the next step follows
after `wait_minutes` without an acknowledgement; `repeat` more passes follow the first. Targets resolve at the
page's own instant: `rotation:<name>` is that rotation's primary then, `rotation:<name>:secondary` its
secondary, `person:<id>` that person and `role:<role>` everyone holding the role.

An acknowledgement or resolution stops every later page. With `ack_timeout`, an acknowledged alert that is
still not resolved `ack_timeout` after the acknowledgement re-escalates: the policy runs again from step 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from vvops.config.schema import EscalationPolicy

__all__ = ["Page", "escalation_timeline", "resolve_targets", "oncall_resolvers"]

WhoIsOnCall = Callable[[str, datetime], Any]
"""(rotation name, at) → an object with .primary and .secondary (vvops.config.OnCall)."""


@dataclass(frozen=True)
class Page:
    at: datetime
    targets: tuple[str, ...]
    """Person ids, in notify order, without duplicates."""
    step: int
    """0-based step index within the policy."""
    cycle: int
    """0 for the first pass, 1.. for `repeat` passes; re-escalations after an ack timeout continue the count."""
    notify: tuple[str, ...] = ()
    """The step's targets as written in oncall.yaml."""

    @property
    def key(self) -> str:
        return f"{self.cycle}.{self.step}@{self.at.astimezone(timezone.utc).isoformat()}"


def resolve_targets(notify: tuple[str, ...] | list[str], at: datetime, *, who_is_on_call: WhoIsOnCall,
                    people_with_role: Callable[[str], list[str]] | None = None) -> tuple[str, ...]:
    out: list[str] = []
    for target in notify:
        kind, _, rest = target.partition(":")
        found: list[str] = []
        if kind == "rotation":
            name, _, slot = rest.partition(":")
            oc = who_is_on_call(name, at)
            person = oc.secondary if slot == "secondary" else oc.primary
            found = [person] if person else []
        elif kind == "person":
            found = [rest]
        elif kind == "role" and people_with_role is not None:
            found = list(people_with_role(rest))
        out += [p for p in found if p not in out]
    return tuple(out)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def escalation_timeline(policy: EscalationPolicy, started_at: datetime, ack_at: datetime | None = None,
                        resolve_at: datetime | None = None, *, who_is_on_call: WhoIsOnCall,
                        people_with_role: Callable[[str], list[str]] | None = None,
                        ack_timeout: timedelta | None = None) -> list[Page]:
    """Every page the policy sends for an alert that started at `started_at` (UTC instants; steps count
    absolute minutes, so a DST change never stretches or shrinks a wait; hand-offs follow the rotation)."""
    started_at = _aware(started_at)
    ack_at = _aware(ack_at) if ack_at else None
    resolve_at = _aware(resolve_at) if resolve_at else None
    pages: list[Page] = []

    def run(begin: datetime, stop: datetime | None, first_cycle: int) -> int:
        t = begin
        cycle = first_cycle
        for k in range(policy.repeat + 1):
            cycle = first_cycle + k
            for i, step in enumerate(policy.steps):
                if stop is not None and t >= stop:
                    return cycle
                if resolve_at is not None and t >= resolve_at:
                    return cycle
                targets = resolve_targets(step.notify, t, who_is_on_call=who_is_on_call,
                                          people_with_role=people_with_role)
                pages.append(Page(t, targets, i, cycle, tuple(step.notify)))
                t = t + timedelta(minutes=step.wait_minutes)
        return cycle

    last = run(started_at, ack_at, 0)
    if ack_at is not None and ack_timeout is not None:
        again = ack_at + ack_timeout
        if resolve_at is None or again < resolve_at:
            run(again, None, last + 1)
    return pages


def oncall_resolvers(cfg: Any) -> tuple[WhoIsOnCall, Callable[[str], list[str]]]:
    """who_is_on_call and people_with_role bound to a loaded OpsConfig."""
    from vvops.config.oncall import who_is_on_call

    def who(name: str, at: datetime) -> Any:
        return who_is_on_call(cfg.rotation(name), at)

    def with_role(role: str) -> list[str]:
        return [p.id for p in cfg.people_with_role(role)]

    return who, with_role
