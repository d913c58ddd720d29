"""Pure rule evaluation of the chain watcher (no chain, no store)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from vvops.chain.abi import encode_param_name
from vvops.watcher.conditions import ApprovalRecord, BlockData, ChainLog, ChainTx, ConditionEvaluator, approval_matches
from vvops.watcher.config import load_watcher_config

UNIT = 10**18
VAULT = "0x" + "11" * 20
ATTACKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
T0 = 1_800_000_000


def _ev(name, args, tx="0xaa", idx=0, contract="vault"):
    return ChainLog(contract=contract, address=VAULT, event=name, args=args, tx_hash=tx, log_index=idx)


def _block(n, logs=(), txs=(), tvl=None):
    return BlockData(number=n, hash=f"0x{n:064x}", parent_hash=f"0x{n - 1:064x}", timestamp=T0 + n, logs=tuple(logs),
                     txs=tuple(txs), tvl={"vault": tvl} if tvl is not None else {})


def _evaluator():
    cfg = load_watcher_config()
    return ConditionEvaluator(cfg.rules, chain_id=31337, environment="devnet", denylist=cfg.denylist)


def _rules(alerts):
    return sorted((a.rule, a.severity) for a in alerts)


def test_events_map_to_rules_with_severity():
    ev = _evaluator()
    logs = [_ev("Paused", {"account": ATTACKER}, tx="0x01"),
            _ev("OwnershipTransferred", {"previousOwner": VAULT, "newOwner": ATTACKER}, tx="0x02"),
            _ev("RoleGranted", {"role": b"\1" * 32, "account": ATTACKER, "sender": VAULT}, tx="0x03", contract="timelock"),
            _ev("AdminChanged", {"previousAdmin": VAULT, "newAdmin": ATTACKER}, tx="0x04"),
            _ev("Deposit", {"user": ATTACKER, "assets": 1, "shares": 1}, tx="0x05")]
    alerts = ev.evaluate(_block(10, logs, tvl=1000 * UNIT))
    assert _rules(alerts) == [("admin_changed", "P0"), ("ownership_transferred", "P0"), ("role_granted", "P1"),
                              ("vault_paused", "P1")]
    paused = next(a for a in alerts if a.rule == "vault_paused")
    assert paused.tx_hash == "0x01" and paused.block_number == 10 and paused.contract == "vault"
    assert ATTACKER in paused.annotations["summary"]
    assert paused.labels["dedup"] == "vault_paused:0x01:0"


def test_parameter_change_without_approval_is_p0_and_with_approval_p3():
    ev = _evaluator()
    log = _ev("ParameterChanged", {"name": encode_param_name("feeBps"), "oldValue": 30, "newValue": 37}, tx="0x09")
    assert _rules(ev.evaluate(_block(5, [log]))) == [("unapproved_parameter_change", "P0")]
    at = datetime.fromtimestamp(T0 + 6, timezone.utc) - timedelta(hours=1)
    ok = ApprovalRecord(1, "parameter_change", "vault.feeBps", "approved", at, {"new_value": "37"})
    assert _rules(ev.evaluate(_block(6, [log]), [ok])) == [("parameter_changed", "P3")]
    # wrong value, wrong parameter, pending, too old: not covered
    for bad in (ApprovalRecord(2, "parameter_change", "vault.feeBps", "approved", at, {"new_value": "50"}),
                ApprovalRecord(3, "parameter_change", "vault.depositCap", "approved", at, {}),
                ApprovalRecord(4, "parameter_change", "vault.feeBps", "pending", at, {}),
                ApprovalRecord(5, "parameter_change", "vault.feeBps", "approved", at - timedelta(days=30), {})):
        assert _rules(ev.evaluate(_block(7 + bad.id, [log]), [bad])) == [("unapproved_parameter_change", "P0")], bad


def test_upgrade_approval_matching_by_implementation():
    impl = "0x" + "ab" * 20
    log = _ev("Upgraded", {"implementation": impl})
    when = datetime.fromtimestamp(T0, timezone.utc)
    rec = ApprovalRecord(1, "upgrade_rollout", f"vault -> {impl}", "approved", when, {})
    assert approval_matches(rec, procedure="upgrade_rollout", log=log, block_time=when, max_age=timedelta(days=7))
    other = ApprovalRecord(1, "upgrade_rollout", "vault", "approved", when, {"new_implementation": "0x" + "cd" * 20})
    assert not approval_matches(other, procedure="upgrade_rollout", log=log, block_time=when, max_age=timedelta(days=7))
    ev = _evaluator()
    assert _rules(ev.evaluate(_block(3, [log]))) == [("unapproved_upgrade", "P0")]
    assert _rules(ev.evaluate(_block(4, [log]), [rec])) == [("implementation_upgraded", "P2")]


def test_withdrawal_window_and_tvl_drop_fire_once_per_episode():
    ev = _evaluator()
    tvl = 1000 * UNIT
    fired = []
    for n in range(1, 30):
        logs = []
        if n in (12, 13, 14):  # 3 x 200 = 60 % of TVL
            logs = [_ev("Withdraw", {"user": ATTACKER, "assets": 200 * UNIT, "shares": 200 * UNIT, "fee": 0}, tx=f"0x{n}")]
            tvl -= 200 * UNIT
        fired += [(n, a.rule, a.severity) for a in ev.evaluate(_block(n, logs, tvl=tvl))]
    assert fired == [(13, "large_withdrawals", "P1"), (13, "tvl_drop", "P0")]  # 400/1000 = 40 %


def test_restart_priming_does_not_refire():
    cfg = load_watcher_config()
    blocks, tvl = [], 1000 * UNIT
    for n in range(1, 20):
        logs = []
        if n == 5:
            logs = [_ev("Withdraw", {"user": ATTACKER, "assets": 600 * UNIT, "shares": 0, "fee": 0}, tx="0x5")]
            tvl -= 600 * UNIT
        blocks.append(_block(n, logs, tvl=tvl))
    one = ConditionEvaluator(cfg.rules, chain_id=1, environment="devnet")
    straight = [(b.number, a.rule) for b in blocks for a in one.evaluate(b)]
    two = ConditionEvaluator(cfg.rules, chain_id=1, environment="devnet")
    part1 = [(b.number, a.rule) for b in blocks[:6] for a in two.evaluate(b)]
    three = ConditionEvaluator(cfg.rules, chain_id=1, environment="devnet")   # a restart after block 6
    three.prime(blocks[6 - three.history_blocks:6])
    part2 = [(b.number, a.rule) for b in blocks[6:] for a in three.evaluate(b)]
    assert straight == part1 + part2 == [(5, "large_withdrawals"), (5, "tvl_drop")]


def test_denylisted_caller_and_failed_tx_burst():
    ev = _evaluator()
    deny = ChainTx(hash="0xd1", sender=ATTACKER, to=VAULT, contract="vault", ok=True)
    assert _rules(ev.evaluate(_block(1, txs=[deny]))) == [("denylisted_caller", "P1")]
    fired = []
    for n in range(2, 12):
        txs = [ChainTx(hash=f"0xf{n}", sender=VAULT, to=VAULT, contract="vault", ok=False)] if n <= 8 else []
        fired += [(n, a.rule) for a in ev.evaluate(_block(n, txs=txs))]
    assert fired == [(6, "failed_tx_burst")]


def test_dedup_key_ignores_block_hash():
    ev1, ev2 = _evaluator(), _evaluator()
    log = _ev("Paused", {"account": ATTACKER}, tx="0x77")
    a = ev1.evaluate(_block(9, [log]))[0]
    b = ev2.evaluate(BlockData(number=10, hash="0xother", parent_hash="0x0", timestamp=T0, logs=(log,)))[0]
    assert a.fingerprint == b.fingerprint and a.block_hash != b.block_hash


def test_watcher_config_rejects_bad_rules():
    import pytest
    from pydantic import ValidationError

    from vvops.watcher.config import WatcherConfig

    with pytest.raises(ValidationError, match="unknown condition"):
        WatcherConfig.model_validate({"rules": [{"name": "x", "source": "condition:nope"}]})
    with pytest.raises(ValidationError, match="duplicate rule names"):
        WatcherConfig.model_validate({"rules": [{"name": "x", "source": "event:Paused"}] * 2})
    with pytest.raises(ValidationError, match="20-byte"):
        WatcherConfig.model_validate({"denylist": ["0x1234"]})
