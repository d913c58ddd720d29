"""who_is_on_call / upcoming_shifts: hand-off boundaries, overrides and DST in two time zones."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from tests.fixtures.config_fixtures import SHIPPED_CONFIG
from vvops.config import load_config, upcoming_shifts, who_is_on_call
from vvops.config.schema import Rotation

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def rotation(**kw) -> Rotation:
    base = dict(name="primary", members=["ana", "ben", "cai"], handoff="weekly", handoff_day="monday",
                handoff_time="09:00", timezone="Europe/London", start=date(2025, 1, 6))
    base.update(kw)
    return Rotation.model_validate(base)


def elapsed(start: datetime, end: datetime) -> timedelta:
    """Real time between two instants (subtracting two datetimes of the same zone gives wall-clock time)."""
    return end.astimezone(UTC) - start.astimezone(UTC)


def who(rot: Rotation, at: datetime) -> tuple[str, str | None]:
    oc = who_is_on_call(rot, at)
    return oc.primary, oc.secondary


# ---------------------------------------------------------------------------- weekly / daily hand-offs

def test_weekly_handoff_one_minute_either_side():
    rot = rotation()
    assert who(rot, datetime(2025, 1, 6, 9, 0, tzinfo=LONDON)) == ("ana", "ben")
    assert who(rot, datetime(2025, 1, 13, 8, 59, tzinfo=LONDON)) == ("ana", "ben")
    assert who(rot, datetime(2025, 1, 13, 9, 0, tzinfo=LONDON)) == ("ben", "cai")
    assert who(rot, datetime(2025, 1, 13, 9, 1, tzinfo=LONDON)) == ("ben", "cai")
    assert who(rot, datetime(2025, 1, 27, 9, 1, tzinfo=LONDON)) == ("ana", "ben")  # wrapped around


def test_weekly_shift_bounds():
    oc = who_is_on_call(rotation(), datetime(2025, 1, 15, 12, 0, tzinfo=UTC))
    assert oc.shift_start == datetime(2025, 1, 13, 9, 0, tzinfo=LONDON)
    assert oc.shift_end == datetime(2025, 1, 20, 9, 0, tzinfo=LONDON)
    assert oc.override_reason is None


@freeze_time("2025-01-13 08:59:00")
def test_now_just_before_handoff():
    assert who(rotation(), None) == ("ana", "ben")


@freeze_time("2025-01-13 09:01:00")
def test_now_just_after_handoff():
    oc = who_is_on_call(rotation())
    assert (oc.primary, oc.secondary) == ("ben", "cai")


def test_daily_handoff_in_new_york():
    rot = rotation(handoff="daily", handoff_day=None, handoff_time="08:00", timezone="America/New_York")
    assert who(rot, datetime(2025, 1, 6, 8, 0, tzinfo=NEW_YORK)) == ("ana", "ben")
    assert who(rot, datetime(2025, 1, 7, 7, 59, tzinfo=NEW_YORK)) == ("ana", "ben")
    assert who(rot, datetime(2025, 1, 7, 8, 0, tzinfo=NEW_YORK)) == ("ben", "cai")
    assert who(rot, datetime(2025, 1, 8, 8, 1, tzinfo=NEW_YORK)) == ("cai", "ana")
    # 12:59 UTC is 07:59 in New York (EST, UTC-5)
    assert who(rot, datetime(2025, 1, 9, 12, 59, tzinfo=UTC)) == ("cai", "ana")
    assert who(rot, datetime(2025, 1, 9, 13, 0, tzinfo=UTC)) == ("ana", "ben")


def test_single_member_rotation():
    rot = rotation(members=["solo"])
    for days in (0, 7, 30, 365):
        assert who(rot, datetime(2025, 1, 6, 10, tzinfo=UTC) + timedelta(days=days)) == ("solo", None)
    assert {s.primary for s in upcoming_shifts(rot, date(2025, 1, 6), 21)} == {"solo"}
    assert len(upcoming_shifts(rot, date(2025, 1, 6), 21)) == 1


def test_naive_datetime_means_utc():
    rot = rotation()
    assert who(rot, datetime(2025, 1, 13, 9, 0)) == who(rot, datetime(2025, 1, 13, 9, 0, tzinfo=UTC))


# ---------------------------------------------------------------------------- overrides

def test_override_wins_for_its_range():
    rot = rotation(overrides=[{"person": "dee", "start": "2025-01-08T12:00:00", "end": "2025-01-09T12:00:00",
                               "reason": "ana at a conference"}])
    assert who(rot, datetime(2025, 1, 8, 11, 59, tzinfo=LONDON)) == ("ana", "ben")
    oc = who_is_on_call(rot, datetime(2025, 1, 8, 12, 0, tzinfo=LONDON))
    assert (oc.primary, oc.secondary, oc.override_reason) == ("dee", "ben", "ana at a conference")
    assert who(rot, datetime(2025, 1, 9, 11, 59, tzinfo=LONDON)) == ("dee", "ben")
    assert who(rot, datetime(2025, 1, 9, 12, 0, tzinfo=LONDON)) == ("ana", "ben")  # end is exclusive


def test_override_by_the_secondary_swaps_them():
    rot = rotation(overrides=[{"person": "ben", "start": "2025-01-08T00:00:00", "end": "2025-01-09T00:00:00"}])
    assert who(rot, datetime(2025, 1, 8, 10, tzinfo=LONDON)) == ("ben", "ana")


def test_secondary_override_and_aware_times():
    rot = rotation(overrides=[{"person": "eve", "slot": "secondary",
                               "start": "2025-01-08T12:00:00+00:00", "end": "2025-01-08T14:00:00+00:00"}])
    assert who(rot, datetime(2025, 1, 8, 13, tzinfo=UTC)) == ("ana", "eve")
    assert who(rot, datetime(2025, 1, 8, 14, tzinfo=UTC)) == ("ana", "ben")


def test_later_override_wins_when_they_overlap():
    rot = rotation(overrides=[
        {"person": "dee", "start": "2025-01-08T00:00:00", "end": "2025-01-10T00:00:00"},
        {"person": "eve", "start": "2025-01-09T00:00:00", "end": "2025-01-09T12:00:00"},
    ])
    assert who(rot, datetime(2025, 1, 8, 6, tzinfo=LONDON))[0] == "dee"
    assert who(rot, datetime(2025, 1, 9, 6, tzinfo=LONDON))[0] == "eve"
    assert who(rot, datetime(2025, 1, 9, 13, tzinfo=LONDON))[0] == "dee"


def test_upcoming_shifts_with_override():
    rot = rotation(overrides=[{"person": "dee", "start": "2025-01-15T18:00:00", "end": "2025-01-16T08:00:00",
                               "reason": "night swap"}])
    shifts = upcoming_shifts(rot, datetime(2025, 1, 13, 0, 0, tzinfo=LONDON), 14)
    assert [(s.start, s.primary, s.override_reason) for s in shifts] == [
        (datetime(2025, 1, 13, 0, 0, tzinfo=LONDON), "ana", None),
        (datetime(2025, 1, 13, 9, 0, tzinfo=LONDON), "ben", None),
        (datetime(2025, 1, 15, 18, 0, tzinfo=LONDON), "dee", "night swap"),
        (datetime(2025, 1, 16, 8, 0, tzinfo=LONDON), "ben", None),
        (datetime(2025, 1, 20, 9, 0, tzinfo=LONDON), "cai", None),
    ]
    assert shifts[-1].end == datetime(2025, 1, 27, 0, 0, tzinfo=LONDON)
    assert all(a.end == b.start for a, b in zip(shifts, shifts[1:]))


# ---------------------------------------------------------------------------- DST

def test_london_spring_forward_daily():
    # 2025-03-30 01:00 GMT → 02:00 BST: the 09:00 hand-off moves from 09:00 UTC to 08:00 UTC
    rot = rotation(handoff="daily", handoff_day=None, start=date(2025, 3, 28))
    assert who(rot, datetime(2025, 3, 29, 8, 59, tzinfo=UTC))[0] == "ana"
    assert who(rot, datetime(2025, 3, 29, 9, 0, tzinfo=UTC))[0] == "ben"
    assert who(rot, datetime(2025, 3, 30, 7, 59, tzinfo=UTC))[0] == "ben"
    assert who(rot, datetime(2025, 3, 30, 8, 0, tzinfo=UTC))[0] == "cai"  # 09:00 BST
    shift = who_is_on_call(rot, datetime(2025, 3, 30, 3, tzinfo=UTC))
    assert elapsed(shift.shift_start, shift.shift_end) == timedelta(hours=23)
    assert shift.shift_end.hour == 9 and shift.shift_start.hour == 9


def test_london_fall_back_weekly():
    # 2025-10-26 02:00 BST → 01:00 GMT; Monday 2025-10-27 09:00 GMT is 09:00 UTC
    rot = rotation()
    before = who(rot, datetime(2025, 10, 27, 8, 59, tzinfo=UTC))
    after = who(rot, datetime(2025, 10, 27, 9, 0, tzinfo=UTC))
    assert before != after and before[1] == after[0]
    # the week before, 09:00 BST was 08:00 UTC
    assert who(rot, datetime(2025, 10, 20, 7, 59, tzinfo=UTC)) != who(rot, datetime(2025, 10, 20, 8, 0, tzinfo=UTC))
    oc = who_is_on_call(rot, datetime(2025, 10, 22, tzinfo=UTC))
    assert elapsed(oc.shift_start, oc.shift_end) == timedelta(days=7, hours=1)


def test_new_york_spring_forward_and_fall_back():
    rot = rotation(handoff="daily", handoff_day=None, handoff_time="08:00", timezone="America/New_York",
                   start=date(2025, 3, 1))
    # 2025-03-09: EST (UTC-5) → EDT (UTC-4); 08:00 local = 12:00 UTC that day, 13:00 UTC the day before
    assert who(rot, datetime(2025, 3, 8, 12, 59, tzinfo=UTC)) != who(rot, datetime(2025, 3, 8, 13, 0, tzinfo=UTC))
    assert who(rot, datetime(2025, 3, 9, 11, 59, tzinfo=UTC)) != who(rot, datetime(2025, 3, 9, 12, 0, tzinfo=UTC))
    assert who(rot, datetime(2025, 3, 9, 12, 59, tzinfo=UTC)) == who(rot, datetime(2025, 3, 9, 12, 0, tzinfo=UTC))
    # 2025-11-02: EDT → EST; 08:00 local = 13:00 UTC
    assert who(rot, datetime(2025, 11, 2, 12, 59, tzinfo=UTC)) != who(rot, datetime(2025, 11, 2, 13, 0, tzinfo=UTC))
    assert who(rot, datetime(2025, 11, 2, 12, 0, tzinfo=UTC)) == who(rot, datetime(2025, 11, 2, 12, 59, tzinfo=UTC))
    # shift n belongs to members[n % 3], whatever the offsets in between
    for day in range(1, 60):
        at = datetime(2025, 3, 1, 8, 30, tzinfo=NEW_YORK) + timedelta(days=day)
        at = at.replace(tzinfo=None).replace(tzinfo=NEW_YORK)  # 08:30 local every day
        assert who(rot, at)[0] == ["ana", "ben", "cai"][day % 3]


def test_handoff_time_inside_the_spring_forward_gap():
    # 02:30 does not exist in New York on 2025-03-09: the hand-off happens at 03:30 EDT (07:30 UTC)
    rot = rotation(handoff="daily", handoff_day=None, handoff_time="02:30", timezone="America/New_York",
                   start=date(2025, 3, 8))
    assert who(rot, datetime(2025, 3, 9, 7, 29, tzinfo=UTC))[0] == "ana"
    assert who(rot, datetime(2025, 3, 9, 7, 30, tzinfo=UTC))[0] == "ben"
    # 01:30 happens twice on 2025-11-02: the first one (EDT, 05:30 UTC) counts
    rot = rotation(handoff="daily", handoff_day=None, handoff_time="01:30", timezone="America/New_York",
                   start=date(2025, 11, 1))
    assert who(rot, datetime(2025, 11, 2, 5, 29, tzinfo=UTC))[0] == "ana"
    assert who(rot, datetime(2025, 11, 2, 5, 30, tzinfo=UTC))[0] == "ben"
    assert who(rot, datetime(2025, 11, 2, 6, 45, tzinfo=UTC))[0] == "ben"


def test_upcoming_shifts_across_dst_keep_local_handoff_time():
    rot = rotation(handoff="daily", handoff_day=None, start=date(2025, 3, 24))
    shifts = upcoming_shifts(rot, date(2025, 3, 27), 7)
    assert [s.start.astimezone(LONDON).hour for s in shifts[1:]] == [9] * 7
    lengths = {s.start.date(): elapsed(s.start, s.end) for s in shifts[1:-1]}
    assert lengths[date(2025, 3, 29)] == timedelta(hours=23)
    assert lengths[date(2025, 3, 28)] == timedelta(hours=24)
    assert shifts[0].start == datetime(2025, 3, 27, 0, 0, tzinfo=LONDON)
    assert shifts[-1].end == datetime(2025, 4, 3, 0, 0, tzinfo=LONDON)


@freeze_time("2025-12-23 10:00:00")
def test_shipped_rotations_and_holiday_override():
    cfg = load_config(SHIPPED_CONFIG)
    primary = cfg.rotation("primary")
    oc = who_is_on_call(primary)
    assert oc.primary == "lukas" and oc.override_reason == "holiday swap with priya"
    shifts = upcoming_shifts(primary, days=7)
    assert shifts[0].primary == "lukas"
    assert who_is_on_call(cfg.rotation("ops-lead")).primary in {"amara", "daniel", "kwame"}
    assert who_is_on_call(cfg.rotation("security")).secondary in {"oscar", "fatima"}


@pytest.mark.parametrize("bad, message", [
    ({"handoff_day": None}, "a weekly rotation needs handoff_day"),
    ({"handoff": "daily"}, "handoff_day is only used by weekly rotations"),
    ({"members": ["ana", "ana"]}, "'ana' is listed twice in members"),
])
def test_rotation_model_rules(bad, message):
    with pytest.raises(Exception) as exc:
        rotation(**bad)
    assert message in str(exc.value)
