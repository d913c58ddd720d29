"""Escalation timelines: steps and waits, ack stops, resolve stops, repeat K, re-escalation after an ack
timeout, targets across a rotation hand-off and across a DST change (freezegun only on plain functions)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from freezegun import freeze_time

from vvops.alerting import escalation_timeline
from vvops.config.oncall import who_is_on_call
from vvops.config.schema import EscalationPolicy, Rotation

UTC = timezone.utc
ROT = {
    "primary": Rotation(name="primary", members=("ann", "bob", "cat"), handoff="daily", handoff_time=time(9, 0),
                        timezone="Europe/London", start=date(2026, 1, 1)),
    "lead": Rotation(name="lead", members=("lea", "lou"), handoff="daily", handoff_time=time(8, 0),
                     timezone="America/New_York", start=date(2026, 1, 1)),
}
POLICY = EscalationPolicy.model_validate({"name": "high", "repeat": 1, "steps": [
    {"notify": "rotation:primary", "wait_minutes": 15},
    {"notify": "rotation:primary:secondary", "wait_minutes": 15},
    {"notify": ["rotation:lead", "role:ops_lead", "person:ann"], "wait_minutes": 30}]})


def who(name, at):
    return who_is_on_call(ROT[name], at)


def roles(role):
    return {"ops_lead": ["lea", "zed"]}[role]


def timeline(start, **kw):
    return escalation_timeline(POLICY, start, who_is_on_call=who, people_with_role=roles, **kw)


T0 = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)  # Tuesday, London = UTC in February


def test_steps_waits_and_repeat():
    pages = timeline(T0)
    assert [(p.at - T0, p.step, p.cycle) for p in pages] == [
        (timedelta(0), 0, 0), (timedelta(minutes=15), 1, 0), (timedelta(minutes=30), 2, 0),
        (timedelta(minutes=60), 0, 1), (timedelta(minutes=75), 1, 1), (timedelta(minutes=90), 2, 1)]
    primary = who("primary", T0)
    assert pages[0].targets == (primary.primary,)
    assert pages[1].targets == (primary.secondary,)
    # rotation, role and person targets in notify order, each person once
    assert pages[2].targets[0] == who("lead", pages[2].at).primary
    assert set(pages[2].targets) == {who("lead", pages[2].at).primary, "lea", "zed", "ann"}
    assert len(pages[2].targets) == len(set(pages[2].targets))


def test_ack_stops_escalation_and_resolve_stops_it_too():
    assert [p.step for p in timeline(T0, ack_at=T0 + timedelta(minutes=20))] == [0, 1]
    assert [p.step for p in timeline(T0, ack_at=T0 + timedelta(minutes=15))] == [0]  # ack at the page instant wins
    assert [p.step for p in timeline(T0, resolve_at=T0 + timedelta(minutes=40))] == [0, 1, 2]


def test_acknowledged_but_unresolved_alert_re_escalates_after_the_ack_timeout():
    ack = T0 + timedelta(minutes=5)
    pages = timeline(T0, ack_at=ack, ack_timeout=timedelta(hours=2))
    assert [(p.at, p.step, p.cycle) for p in pages][:2] == [(T0, 0, 0), (ack + timedelta(hours=2), 0, 1)]
    assert len(pages) == 1 + 6  # the whole policy (2 passes) runs again
    # resolved before the timeout: no re-escalation
    assert len(timeline(T0, ack_at=ack, resolve_at=ack + timedelta(minutes=30), ack_timeout=timedelta(hours=2))) == 1


def test_targets_follow_a_rotation_handoff_during_escalation():
    start = datetime(2026, 2, 10, 8, 50, tzinfo=UTC)  # hand-off at 09:00 London = 09:00 UTC
    pages = timeline(start)
    before, after = who("primary", start), who("primary", start + timedelta(minutes=15))
    assert before.primary != after.primary
    assert pages[0].targets == (before.primary,)
    assert pages[1].targets == (after.secondary,)  # step 2 pages the secondary of the new shift


def test_waits_are_absolute_minutes_across_the_us_dst_change_and_handoff_moves():
    # 2026-03-08: New York springs forward; the 08:00 hand-off is at 12:00 UTC that day (13:00 UTC the day before)
    day_before = datetime(2026, 3, 7, 12, 30, tzinfo=UTC)
    dst_day = datetime(2026, 3, 8, 12, 30, tzinfo=UTC)
    assert who("lead", day_before).primary == who("lead", day_before - timedelta(hours=1)).primary
    assert who("lead", dst_day).primary != who("lead", dst_day - timedelta(hours=1)).primary
    start = datetime(2026, 3, 8, 6, 45, tzinfo=UTC)  # 01:45 EST; two of the waits straddle 02:00 → 03:00 EDT
    pages = timeline(start)
    assert [int((b.at - a.at).total_seconds() // 60) for a, b in zip(pages, pages[1:])] == [15, 15, 30, 15, 15]


def test_london_spring_forward_handoff_with_freezegun():
    # 2026-03-29 01:00 UTC London jumps to BST: the 09:00 hand-off is 08:00 UTC from that day on
    with freeze_time("2026-03-29T08:30:00Z"):
        now = datetime.now(UTC)
        pages = escalation_timeline(POLICY, now, who_is_on_call=lambda n, at: who_is_on_call(ROT[n], at),
                                    people_with_role=roles)
        assert pages[0].targets == (who_is_on_call(ROT["primary"]).primary,)  # `at` omitted = frozen now
    assert who("primary", datetime(2026, 3, 29, 8, 30, tzinfo=UTC)).primary != \
        who("primary", datetime(2026, 3, 29, 7, 30, tzinfo=UTC)).primary
