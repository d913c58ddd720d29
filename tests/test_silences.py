"""Silences (active/expired, matchers), maintenance windows (one-off, weekly across DST, past midnight), inhibition."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from freezegun import freeze_time

from vvops.alerting import InhibitRule, MaintenanceWindow, Silence, inhibited_by, mute_reason, silenced_by
from vvops.config import load_config

UTC = timezone.utc
RPC = {"alertname": "rpc_down", "chain": "mainnet", "category": "rpc_down", "severity": "P1"}
READ = {"alertname": "contract_state", "chain": "mainnet", "category": "contract_read", "severity": "P0"}


def silence(**kw):
    base = {"matchers": ['alertname="rpc_down"', 'chain=~"main.*"'], "starts_at": "2026-03-01T09:00:00+00:00",
            "ends_at": "2026-03-01T11:00:00+00:00", "created_by": "priya", "reason": "provider migration"}
    return Silence.model_validate({**base, **kw})


@pytest.mark.parametrize("at,expected", [("2026-03-01T08:59:59+00:00", False), ("2026-03-01T09:00:00+00:00", True),
                                         ("2026-03-01T10:59:59+00:00", True), ("2026-03-01T11:00:00+00:00", False)])
def test_silence_is_active_between_start_and_end_and_expires_by_itself(at, expected):
    mute = silenced_by(RPC, datetime.fromisoformat(at), silences=[silence()])
    assert (mute is not None) == expected
    if mute:
        assert mute.kind == "silence" and "provider migration (by priya" in mute.reason


def test_silence_matchers_must_all_match():
    now = datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert silenced_by({**RPC, "chain": "devnet"}, now, silences=[silence()]) is None
    assert silenced_by(READ, now, silences=[silence()]) is None


def test_silence_validation():
    with pytest.raises(Exception, match="after starts_at"):
        silence(ends_at="2026-03-01T08:00:00+00:00")
    with pytest.raises(Exception, match="offset"):
        silence(starts_at="2026-03-01T09:00:00")


def test_weekly_maintenance_window_on_the_local_clock_across_dst():
    w = MaintenanceWindow.model_validate({"name": "w", "matchers": ['chain="mainnet"'], "days": ["sunday"],
                                          "start": "02:30", "end": "04:00", "timezone": "Europe/London"})
    assert w.active(datetime(2026, 3, 22, 2, 45, tzinfo=UTC))       # GMT: 02:45 local
    assert not w.active(datetime(2026, 4, 5, 3, 15, tzinfo=UTC))    # BST: 04:15 local
    assert w.active(datetime(2026, 4, 5, 1, 45, tzinfo=UTC))        # BST: 02:45 local
    assert not w.active(datetime(2026, 3, 23, 2, 45, tzinfo=UTC))   # a Monday
    with freeze_time("2026-03-22T03:00:00Z"):
        assert silenced_by(RPC, datetime.now(UTC), windows=[w]).kind == "maintenance"
        assert silenced_by({**RPC, "chain": "devnet"}, datetime.now(UTC), windows=[w]) is None


def test_window_past_midnight_and_one_off_window():
    night = MaintenanceWindow.model_validate({"name": "n", "days": ["saturday"], "start": "23:00", "end": "01:00"})
    assert night.active(datetime(2026, 3, 7, 23, 30, tzinfo=UTC))   # Saturday night
    assert night.active(datetime(2026, 3, 8, 0, 30, tzinfo=UTC))    # ...into Sunday
    assert not night.active(datetime(2026, 3, 8, 23, 30, tzinfo=UTC))
    once = MaintenanceWindow.model_validate({"name": "o", "starts_at": "2026-05-01T10:00:00",
                                             "ends_at": "2026-05-01T12:00:00", "timezone": "Europe/Stockholm"})
    assert once.active(datetime(2026, 5, 1, 8, 30, tzinfo=UTC)) and not once.active(datetime(2026, 5, 1, 10, tzinfo=UTC))
    with pytest.raises(Exception, match="either one-off or weekly"):
        MaintenanceWindow.model_validate({"name": "x", "days": ["sunday"], "start": "01:00", "end": "02:00",
                                          "starts_at": "2026-05-01T10:00:00"})


def test_rpc_down_inhibits_contract_reads_of_the_same_chain_only():
    cfg = load_config(environment="devnet")
    rules = cfg.alerting.inhibit_rules
    mute = inhibited_by(READ, [RPC, READ], rules)
    assert mute.kind == "inhibition" and mute.name == "rpc-down-hides-contract-reads"
    assert "chain=mainnet" in mute.reason
    assert inhibited_by({**READ, "chain": "devnet"}, [RPC], rules) is None   # other chain
    assert inhibited_by(READ, [READ], rules) is None                          # no source firing
    assert inhibited_by(RPC, [RPC, READ], rules) is None                      # the source itself is not muted


def test_alert_matching_both_sides_does_not_inhibit_itself_or_peers():
    rule = InhibitRule.model_validate({"source_matchers": ['team="x"'], "target_matchers": ['team="x"']})
    a, b = {"alertname": "a", "team": "x"}, {"alertname": "b", "team": "x"}
    assert inhibited_by(a, [a, b], [rule]) is None


def test_mute_reason_prefers_silences_then_inhibition():
    now = datetime(2026, 3, 1, 10, tzinfo=UTC)
    cfg = load_config(environment="devnet")
    assert mute_reason(RPC, now, silences=[silence()]).kind == "silence"
    assert mute_reason(READ, now, firing=[RPC], inhibit_rules=cfg.alerting.inhibit_rules).kind == "inhibition"
    assert mute_reason(READ, now) is None
