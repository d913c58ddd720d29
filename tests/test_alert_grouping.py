"""Grouping (group_wait, group_interval, group_by), repeat interval and resolve notifications — pure planner."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from vvops.alerting import AlertView, Route, group_key, plan_group, route_alert

UTC = timezone.utc
T0 = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)
ROUTE = route_alert(Route.model_validate({"channel": "alerts", "group_by": ["alertname", "chain"],
                                          "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}),
                    {})[0]


def alert(fp, chain="mainnet", status="firing", **kw):
    labels = {"alertname": "contract_state", "chain": chain, "check": fp}
    return AlertView(fp, status, "P1", labels, {"summary": f"{fp} broke"}, kw.pop("starts_at", T0), **kw)


def test_group_key_uses_group_by_labels():
    a, b = alert("a"), alert("b")
    assert group_key(ROUTE, a.labels) == group_key(ROUTE, b.labels) == 'root:{alertname="contract_state",chain="mainnet"}'
    assert group_key(ROUTE, alert("c", chain="devnet").labels) != group_key(ROUTE, a.labels)


def test_new_group_waits_group_wait_then_sends_one_notification_for_all():
    alerts = [alert("a"), alert("b", starts_at=T0 + timedelta(seconds=20))]
    gk = group_key(ROUTE, alerts[0].labels)
    assert plan_group(ROUTE, gk, alerts, T0 + timedelta(seconds=29)) is None
    note = plan_group(ROUTE, gk, alerts, T0 + timedelta(seconds=30))
    assert note.kind == "firing" and [a.fingerprint for a in note.firing] == ["a", "b"]
    msg = note.as_message("devnet")
    assert msg["kind"] == "alert.firing" and msg["channel_purpose"] == "alerts"
    assert msg["thread_key"].startswith("alert-group:") and len(msg["payload"]["firing"]) == 2
    assert msg["payload"]["text"].splitlines()[0].startswith("[FIRING:2] P1")


def test_changes_wait_for_group_interval_and_nothing_new_repeats_after_repeat_interval():
    sent = T0 + timedelta(seconds=30)
    a = alert("a", notified_at=sent)
    gk = group_key(ROUTE, a.labels)
    assert plan_group(ROUTE, gk, [a], sent + timedelta(hours=3)) is None
    assert plan_group(ROUTE, gk, [a], sent + timedelta(hours=4)).kind == "repeat"
    b = alert("b", starts_at=sent + timedelta(minutes=1))
    assert plan_group(ROUTE, gk, [a, b], sent + timedelta(minutes=4)) is None
    assert plan_group(ROUTE, gk, [a, b], sent + timedelta(minutes=5)).kind == "firing"


def test_resolve_notification_once_and_only_for_notified_alerts():
    sent = T0 + timedelta(seconds=30)
    a = alert("a", status="resolved", notified_at=sent, ends_at=sent + timedelta(hours=1))
    gk = group_key(ROUTE, a.labels)
    note = plan_group(ROUTE, gk, [a], sent + timedelta(hours=1))
    assert note.kind == "resolved" and [x.fingerprint for x in note.resolved] == ["a"]
    assert "[RESOLVED:1]" in note.text()
    assert plan_group(ROUTE, gk, [replace(a, resolved_notified=True)], sent + timedelta(hours=2)) is None
    never = alert("b", status="resolved", ends_at=T0 + timedelta(seconds=10))  # resolved inside group_wait
    assert plan_group(ROUTE, gk, [never], T0 + timedelta(minutes=1)) is None


def test_partial_resolve_is_a_firing_update_listing_both():
    sent = T0
    a = alert("a", notified_at=sent)
    b = alert("b", status="resolved", notified_at=sent, ends_at=sent + timedelta(minutes=1))
    note = plan_group(ROUTE, group_key(ROUTE, a.labels), [a, b], sent + timedelta(minutes=6))
    assert note.kind == "firing" and [x.fingerprint for x in note.firing] == ["a"]
    assert [x.fingerprint for x in note.resolved] == ["b"]
