"""Who is on call: pure functions over an `oncall.yaml` rotation (no I/O, no clock unless `at` is omitted).

Hand-offs happen at `handoff_time` on the local wall clock of the rotation's time zone (every day,
or every `handoff_day`), so they stay at 09:00 local across DST changes. Shift n (counted from the
hand-off on `start`) belongs to members[n % len(members)]; the secondary is the next member.
An override puts its person in its slot (primary by default) for [start, end); when several
overlap, the one listed last wins. Naive override times are read in the rotation's time zone.

A hand-off time that does not exist on a spring-forward day (e.g. 01:30 in London) happens at the
equivalent instant just after the gap; on a fall-back day an ambiguous time means its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from .schema import WEEKDAYS, Rotation

__all__ = ["OnCall", "Shift", "who_is_on_call", "upcoming_shifts", "handoffs_between", "shift_bounds"]


@dataclass(frozen=True)
class OnCall:
    primary: str
    secondary: str | None
    rotation: str
    shift_start: datetime
    """When the regular shift (ignoring overrides) began, in the rotation's time zone."""
    shift_end: datetime
    """Next regular hand-off, in the rotation's time zone."""
    override_reason: str | None = None
    """Set when an override decided the primary or the secondary."""


@dataclass(frozen=True)
class Shift:
    start: datetime
    end: datetime
    primary: str
    secondary: str | None
    override_reason: str | None = None


def _aware(dt: datetime, tz: ZoneInfo) -> datetime:
    return dt.replace(tzinfo=tz) if dt.tzinfo is None else dt


def _handoff(rotation: Rotation, day: date) -> datetime:
    """The hand-off instant on a local date (UTC)."""
    local = datetime.combine(day, rotation.handoff_time, tzinfo=rotation.tz)
    return local.astimezone(timezone.utc)


def _anchor(rotation: Rotation) -> date:
    if rotation.handoff == "weekly" and rotation.handoff_day:
        want = WEEKDAYS.index(rotation.handoff_day)
        return rotation.start + timedelta(days=(want - rotation.start.weekday()) % 7)
    return rotation.start


def shift_bounds(rotation: Rotation, at: datetime) -> tuple[int, datetime, datetime]:
    """(shift index, start, end) of the regular shift containing `at` (start/end in the rotation's zone)."""
    tz = rotation.tz
    at = _aware(at, timezone.utc)
    day = at.astimezone(tz).date()
    step = 1 if rotation.handoff == "daily" else 7
    if step == 7:
        want = WEEKDAYS.index(rotation.handoff_day or "monday")
        day -= timedelta(days=(day.weekday() - want) % 7)
    if at < _handoff(rotation, day):
        day -= timedelta(days=step)
    index = (day - _anchor(rotation)).days // step
    start = _handoff(rotation, day).astimezone(tz)
    end = _handoff(rotation, day + timedelta(days=step)).astimezone(tz)
    return index, start, end


def who_is_on_call(rotation: Rotation, at: datetime | None = None) -> OnCall:
    """Primary and secondary of `rotation` at `at` (aware datetime; naive means UTC; None means now)."""
    at = datetime.now(timezone.utc) if at is None else _aware(at, timezone.utc)
    index, start, end = shift_bounds(rotation, at)
    members = rotation.members
    n = len(members)
    primary = members[index % n]
    secondary = members[(index + 1) % n] if n > 1 else None
    reason = None
    regular_primary = primary
    for o in rotation.overrides:
        if o.slot == "primary" and _aware(o.start, rotation.tz) <= at < _aware(o.end, rotation.tz):
            primary, reason = o.person, o.reason or "override"
    if primary != regular_primary and secondary == primary:
        secondary = regular_primary  # the cover swaps with the person they replace
    for o in rotation.overrides:
        if o.slot == "secondary" and _aware(o.start, rotation.tz) <= at < _aware(o.end, rotation.tz):
            secondary, reason = o.person, o.reason or "override"
    if secondary == primary:
        secondary = None
    return OnCall(primary=primary, secondary=secondary, rotation=rotation.name,
                  shift_start=start, shift_end=end, override_reason=reason)


def handoffs_between(rotation: Rotation, start: datetime, end: datetime) -> list[datetime]:
    """Regular hand-off instants in (start, end), in the rotation's time zone."""
    tz = rotation.tz
    start, end = _aware(start, timezone.utc), _aware(end, timezone.utc)
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    want = WEEKDAYS.index(rotation.handoff_day) if rotation.handoff == "weekly" and rotation.handoff_day else None
    out = []
    while day <= last:
        if want is None or day.weekday() == want:
            h = _handoff(rotation, day)
            if start < h < end:
                out.append(h.astimezone(tz))
        day += timedelta(days=1)
    return out


def upcoming_shifts(rotation: Rotation, start: datetime | date | None = None, days: int = 7) -> list[Shift]:
    """The shifts (regular hand-offs and overrides) from `start` for `days` local days, merged when
    consecutive segments have the same people. `start` may be a date (local midnight) or None (now)."""
    tz = rotation.tz
    if start is None:
        start = datetime.now(timezone.utc)
    if isinstance(start, datetime):
        begin = _aware(start, timezone.utc)
        local = begin.astimezone(tz)
        end_local = datetime.combine(local.date() + timedelta(days=days), local.timetz().replace(tzinfo=None))
        end = end_local.replace(tzinfo=tz)
    else:
        begin = datetime.combine(start, datetime.min.time(), tzinfo=tz)
        end = datetime.combine(start + timedelta(days=days), datetime.min.time(), tzinfo=tz)
    begin_utc, end_utc = begin.astimezone(timezone.utc), end.astimezone(timezone.utc)
    cuts = {begin_utc, end_utc}
    cuts.update(h.astimezone(timezone.utc) for h in handoffs_between(rotation, begin_utc, end_utc))
    for o in rotation.overrides:
        for t in (_aware(o.start, tz), _aware(o.end, tz)):
            t = t.astimezone(timezone.utc)
            if begin_utc < t < end_utc:
                cuts.add(t)
    points = sorted(cuts)
    shifts: list[Shift] = []
    for a, b in zip(points, points[1:]):
        oc = who_is_on_call(rotation, a)
        if shifts and (shifts[-1].primary, shifts[-1].secondary, shifts[-1].override_reason) == (
                oc.primary, oc.secondary, oc.override_reason):
            prev = shifts[-1]
            shifts[-1] = Shift(prev.start, b.astimezone(tz), prev.primary, prev.secondary, prev.override_reason)
        else:
            shifts.append(Shift(a.astimezone(tz), b.astimezone(tz), oc.primary, oc.secondary, oc.override_reason))
    return shifts
