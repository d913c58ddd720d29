"""Parameter change end to end on anvil: impact analysis, approval answered programmatically, timelock, verify, rollback."""

from __future__ import annotations


import pytest
from sqlalchemy import func, select

from tests.fixtures.approval_fixtures import approval_run_id, resume_signed, signed_proposal
from vvops.procedures.impact import diff_health
from vvops.store.models import AuditEntry, ChainAction, Incident

pytestmark = [pytest.mark.devnet, pytest.mark.prefect]

FEE_SLOT = 5  # VaultBase: uint256 public feeBps; // slot 5


def _fee(chain, devnet) -> int:
    return chain.contract("VaultV1", devnet.contracts.vault).call("feeBps")


def _count(engine, model, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model).where(*where)).scalar()


def _actions(engine, run_id: str) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(ChainAction.idempotency_key).where(
            ChainAction.idempotency_key.like(f"parameter_change:{run_id}:%")).order_by(ChainAction.id)).scalars())


@pytest.fixture(autouse=True)
def no_recent_changes(request):
    """Each test starts without earlier changes of feeBps (the 24 h cooldown would refuse the next one)."""
    if "ops_store_engine" in request.fixturenames:
        from tests.fixtures.ops_fixtures import forget_parameter_changes

        forget_parameter_changes(request.getfixturevalue("ops_store_engine"))


def _key(new_value: int) -> str:
    from tasks.parameter_changes import change_base_id

    return change_base_id("devnet", "vault", "feeBps", new_value)


def _start(flow_in_thread, engine, new_value: int, proposer: str = "priya"):
    from flows.parameter_change import parameter_change

    params = dict(parameter="feeBps", new_value=new_value, proposer=proposer, justification="test")
    thread = flow_in_thread(parameter_change, **params, environment="devnet", approval_poll_interval=0.5,
                            **signed_proposal(parameter_change, "parameter_change", proposer, params))
    run_id = approval_run_id(engine, f"vault.feeBps: 30 → {new_value}")
    thread.wait_paused(run_id)
    return thread, run_id


@pytest.fixture(autouse=True)
def _clean_parameter_history(no_recent_parameter_changes):
    """Every test here judges its change against an empty history (cooldown, relative change)."""


def _answer(run_id: str, approver: str, decision: str = "approve") -> None:
    resume_signed(run_id, None, approver, decision, reason="test")


def test_a_value_outside_bounds_is_rejected_and_audited(ops_flows, ops_store_engine):
    from flows.parameter_change import parameter_change
    from vvops.procedures.parameters import ProposalRejected

    with pytest.raises(ProposalRejected, match=r"feeBps = 5000 is outside its bounds \[0, 1000\]"):
        parameter_change(parameter="feeBps", new_value=5000, proposer="priya", environment="devnet")
    with ops_store_engine.connect() as conn:
        action, details = conn.execute(select(AuditEntry.action, AuditEntry.details)
                                       .order_by(AuditEntry.id.desc()).limit(1)).one()
    assert (action, details["rule"]) == ("parameter_change.refused", "contracts.parameters.bounds")


def test_approved_change_is_queued_executed_and_verified(ops_flows, ops_store_engine, devnet, fresh_devnet_state,
                                                         flow_in_thread):
    thread, run_id = _start(flow_in_thread, ops_store_engine, 40)
    assert _fee(fresh_devnet_state, devnet) == 30  # the impact simulation was reverted
    assert _actions(ops_store_engine, _key(40)) == []  # nothing on chain before the approval

    _answer(run_id, "daniel")
    result = thread.join()

    assert result["status"] == "applied" and result["approvers"] == ["daniel"]
    assert (result["previous_value"], result["new_value"], result["change_id"]) == (30, 40, _key(40))
    assert _fee(fresh_devnet_state, devnet) == 40
    assert _actions(ops_store_engine, _key(40)) == [f"parameter_change:{_key(40)}:schedule",
                                                    f"parameter_change:{_key(40)}:execute"]
    with ops_store_engine.connect() as conn:
        actions = conn.execute(select(AuditEntry.action).where(AuditEntry.subject == "vault.feeBps")
                               .order_by(AuditEntry.id)).scalars().all()
    assert actions[-5:] == ["parameter_change.proposed", "parameter_change.impact_analysed",
                            "parameter_change.approved", "parameter_change.executed", "parameter_change.verified"]


def test_rejected_change_sends_nothing(ops_flows, ops_store_engine, devnet, fresh_devnet_state, flow_in_thread):
    rows_before = _count(ops_store_engine, ChainAction)
    thread, run_id = _start(flow_in_thread, ops_store_engine, 42)

    _answer(run_id, "daniel", decision="reject")
    result = thread.join()

    assert result["status"] == "rejected"
    assert _fee(fresh_devnet_state, devnet) == 30
    assert _count(ops_store_engine, ChainAction) == rows_before


def test_failed_verification_rolls_back_through_the_timelock_and_opens_an_incident(
        ops_flows, ops_store_engine, devnet, fresh_devnet_state, flow_in_thread, monkeypatch):
    import flows.parameter_change as module
    from flows.parameter_change import ParameterChangeRolledBack
    from vvops.devnet.timetravel import set_storage_at

    real = module.run_through_timelock
    calls = []

    def tampering(**kwargs):
        out = real(**kwargs)
        calls.append(kwargs["key_prefix"])
        if len(calls) == 1:  # something else moves the value right after our execute
            set_storage_at(fresh_devnet_state, devnet.contracts.vault, FEE_SLOT, 77)
        return out

    monkeypatch.setattr(module, "run_through_timelock", tampering)
    incidents_before = _count(ops_store_engine, Incident)
    thread, run_id = _start(flow_in_thread, ops_store_engine, 44)
    _answer(run_id, "amara")

    with pytest.raises(ParameterChangeRolledBack, match=r"feeBps reads 77 on chain, expected 44.*rolled back to 30 \(verified\)"):
        thread.join()

    assert _fee(fresh_devnet_state, devnet) == 30
    key = _key(44)
    assert calls == [f"parameter_change:{key}", f"parameter_change:{key}:rollback"]
    assert _actions(ops_store_engine, key)[-2:] == [f"parameter_change:{key}:rollback:schedule",
                                                    f"parameter_change:{key}:rollback:execute"]
    assert _count(ops_store_engine, Incident) == incidents_before + 1
    with ops_store_engine.connect() as conn:
        title, severity = conn.execute(select(Incident.title, Incident.severity).order_by(Incident.id.desc()).limit(1)).one()
    assert "failed verification; rolled back" in title and severity == "P2"


def test_impact_diff_reports_value_changes_and_health_regressions():
    report = diff_health(
        before_values={"feeBps": 30, "paused": False}, after_values={"feeBps": 50, "paused": False},
        outcomes_before=[{"id": "solvency", "status": "ok", "message": "ok"}],
        outcomes_after=[{"id": "solvency", "status": "crit", "message": "assets < liabilities"}])
    assert [(c.key, c.before, c.after) for c in report.value_changes] == [("feeBps", 30, 50)]
    assert not report.ok and [c.check_id for c in report.regressions] == ["solvency"]
    assert "health regressions: solvency ok → crit" in report.summary()
    assert "| `feeBps` | 30 | 50 |" in report.markdown()
    failed = diff_health(before_values={}, after_values=None, outcomes_before=[], outcomes_after=None,
                         error="reverted: OutOfBounds")
    assert not failed.ok and failed.summary() == "simulation failed: reverted: OutOfBounds"
