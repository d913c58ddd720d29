"""Limits enforced where they are declared (issue 13 item 3) and a rerun that resumes instead of scheduling
again (item 6): each refusal is audited with the rule that refused it, and nothing reaches the chain."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, func, select

from vvops.procedures.parameters import ProposalRejected, solidity_int_range, validate_parameter_change
from vvops.store.change_models import ParameterChange
from vvops.store.models import AuditEntry, ChainAction


@pytest.fixture
def feebps_history(ops_store_engine):
    from tests.fixtures.ops_fixtures import forget_parameter_changes

    forget_parameter_changes(ops_store_engine)
    yield ops_store_engine


def _last_refusal(engine) -> dict:
    with engine.connect() as conn:
        return conn.execute(select(AuditEntry.details).where(AuditEntry.action == "parameter_change.refused")
                            .order_by(AuditEntry.id.desc()).limit(1)).scalar_one()


def _chain_actions(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count(ChainAction.id))).scalar()


@pytest.mark.devnet
def _proposed(new_value) -> dict:
    """The flow's parameters with a roster proposer (the devnet accepts her typed name as proof; a stranger such as
    'dana' is refused before any limit is looked at)."""
    return dict(parameter="feeBps", new_value=new_value, proposer="priya")


@pytest.mark.prefect
@pytest.mark.parametrize(("new_value", "rule", "message"), [
    (100, "procedures.parameter_changes.max_relative_change_pct", r"30 → 100 moves it by 233.3 %, more than the 50 %"),
    (True, "parameters.type", "feeBps must be an integer, got the boolean true"),
    ("1.5", "parameters.type", "feeBps must be an integer"),
])
def test_a_proposal_beyond_a_limit_is_refused_and_audited(ops_flows, feebps_history, fresh_devnet_state,
                                                          new_value, rule, message):
    from flows.parameter_change import parameter_change

    sent_before = _chain_actions(feebps_history)
    with pytest.raises(ProposalRejected, match=message):
        parameter_change(**_proposed(new_value), environment="devnet")
    assert _last_refusal(feebps_history)["rule"] == rule
    assert _chain_actions(feebps_history) == sent_before


@pytest.mark.devnet
@pytest.mark.prefect
def test_a_change_inside_the_cooldown_is_refused(ops_flows, feebps_history, fresh_devnet_state):
    from flows.parameter_change import parameter_change

    with feebps_history.begin() as conn:
        conn.execute(ParameterChange.__table__.insert().values(
            change_id="pc-earlier", environment="devnet", contract="vault", parameter="feeBps", new_value="30",
            proposer="amara", status="verified", created_at=datetime.now(timezone.utc),
            updated_at=datetime.now(timezone.utc), executed_at=datetime.now(timezone.utc) - timedelta(minutes=26)))
    with pytest.raises(ProposalRejected, match="24 h cooldown ends at"):
        parameter_change(**_proposed(35), environment="devnet")
    refusal = _last_refusal(feebps_history)
    assert refusal["rule"] == "procedures.parameter_changes.cooldown_hours"


def test_values_must_fit_the_setters_solidity_type():
    from vvops.config import load_config

    vault = load_config(environment="devnet").contract("vault")
    assert solidity_int_range("uint16") == (0, 65535) and solidity_int_range("int8") == (-128, 127)
    assert solidity_int_range("uint") == (0, 2**256 - 1) and solidity_int_range("address") is None
    with pytest.raises(ProposalRejected) as refused:
        validate_parameter_change(contract=vault, parameter="feeBps", new_value=70000, solidity_type="uint16")
    assert refused.value.rule == "abi.uint16"
    with pytest.raises(ProposalRejected) as negative:
        validate_parameter_change(contract=vault, parameter="feeBps", new_value=-1, solidity_type="uint256")
    assert negative.value.rule == "abi.uint256"


def test_config_check_refuses_bounds_outside_the_abi_type_and_absurd_durations(config_copy):
    config_copy.set("contracts.yaml", "contracts[0].parameters.feeBps.max", 2**256)
    procedures = config_copy.path("procedures.yaml")
    procedures.write_text(procedures.read_text().replace("expiry_minutes: 240", "expiry_minutes: 1e20", 1))
    config_copy.set("procedures.yaml", "approvals.unpause.expiry_minutes", 10**20)
    problems = config_copy.problems()
    assert any("parameters.feeBps.max: max 1157920892373161954235709850086879078532699846656405640394575840079131296"
               "39936 does not fit setFeeBps's uint256" in p for p in problems), problems
    assert any("approvals.parameter_change.expiry_minutes: " in p for p in problems), problems
    assert any("approvals.unpause.expiry_minutes: expiry_minutes is 1e+20, longer than any sensible setting" in p
               for p in problems), problems


@pytest.mark.devnet
@pytest.mark.prefect
def test_a_rerun_of_a_crashed_change_resumes_it_and_schedules_once(ops_flows, feebps_history, devnet,
                                                                  fresh_devnet_state, flow_in_thread, monkeypatch):
    import flows.parameter_change as module
    from tasks.governance import schedule_on_timelock
    from tasks.parameter_changes import change_base_id
    from tests.test_parameter_change import _answer, _fee, _start

    real = module.run_through_timelock

    def dies_after_scheduling(**kwargs):  # the worker dies between schedule and execute
        schedule_on_timelock(environment=kwargs["environment"], idempotency_key=f"{kwargs['key_prefix']}:schedule",
                             target=kwargs["target"], data=kwargs["data"], description="schedule")
        raise RuntimeError("worker lost")

    monkeypatch.setattr(module, "run_through_timelock", dies_after_scheduling)
    thread, run_id = _start(flow_in_thread, feebps_history, 41)
    _answer(run_id, "daniel")
    with pytest.raises(RuntimeError, match="worker lost"):
        thread.join()
    monkeypatch.setattr(module, "run_through_timelock", real)

    result = module.parameter_change(**_proposed(41), environment="devnet")

    key = change_base_id("devnet", "vault", "feeBps", 41)
    assert result["status"] == "applied" and result["change_id"] == key and result["approvers"] == ["daniel"]
    assert _fee(fresh_devnet_state, devnet) == 41
    with feebps_history.connect() as conn:
        keys = conn.execute(select(ChainAction.idempotency_key).where(
            ChainAction.idempotency_key.like(f"parameter_change:{key}:%"))).scalars().all()
        resumed = conn.execute(select(func.count(AuditEntry.id)).where(
            AuditEntry.action == "parameter_change.resumed")).scalar()
    assert sorted(keys) == [f"parameter_change:{key}:execute", f"parameter_change:{key}:schedule"]
    assert resumed >= 1
