"""Every flow's first real step, run end to end: real anvil, a real Prefect test server, the SQLite store."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from vvops.devnet.timetravel import set_storage_at
from vvops.store.models import AuditEntry, CheckResult, CheckRun, Drill, Incident

pytestmark = [pytest.mark.devnet, pytest.mark.prefect]


def _statuses(summary: dict) -> dict[str, str]:
    return {check["id"]: check["status"] for check in summary["checks"]}


def test_daily_checks_on_a_healthy_devnet_are_all_ok_and_stored(ops_flows, ops_store_engine):
    from flows.daily_checks import daily_checks

    summary = daily_checks(environment="devnet")

    statuses = _statuses(summary)
    assert set(statuses.values()) == {"ok"}
    for expected in ("role.owner", "role.guardian", "implementation", "paused", "parameter.feeBps", "invariant.solvency"):
        assert f"protocol.contract_state.vault.{expected}" in statuses
    with ops_store_engine.connect() as conn:
        run = conn.execute(select(CheckRun).where(CheckRun.id == summary["store_run_id"])).one()
        stored = conn.execute(select(CheckResult.check_id, CheckResult.status).where(CheckResult.run_id == run.id)).all()
    assert run.status == "ok"
    assert dict(stored) == statuses


def test_daily_checks_flag_a_paused_vault_as_crit(ops_flows, devnet, fresh_devnet_state):
    from flows.daily_checks import daily_checks

    vault = fresh_devnet_state.contract("VaultV1", devnet.contracts.vault)
    vault.transact(devnet.accounts.guardian.address, "pause")

    statuses = _statuses(daily_checks(environment="devnet"))

    assert statuses["protocol.contract_state.vault.paused"] == "crit"


def test_daily_checks_flag_a_parameter_written_outside_its_bounds(ops_flows, devnet, fresh_devnet_state):
    from flows.daily_checks import daily_checks
    from vvops.devnet.artifacts import storage_layout_of

    slot = next(int(s["slot"]) for s in storage_layout_of("VaultV1") if s["label"] == "feeBps")
    set_storage_at(fresh_devnet_state, devnet.contracts.vault, slot, 5000)  # 50 %: the setter would refuse it

    summary = daily_checks(environment="devnet")

    fee = next(c for c in summary["checks"] if c["id"] == "protocol.contract_state.vault.parameter.feeBps")
    assert (fee["status"], fee["value"]) == ("crit", 5000.0)


def test_daily_checks_flag_an_unexpected_implementation(ops_flows, devnet, fresh_devnet_state):
    from flows.daily_checks import daily_checks
    from vvops.chain.reader import IMPLEMENTATION_SLOT

    rogue = int(devnet.contracts.vault_v2_implementation, 16)
    set_storage_at(fresh_devnet_state, devnet.contracts.vault, int(IMPLEMENTATION_SLOT, 16), rogue)

    statuses = _statuses(daily_checks(environment="devnet"))

    assert statuses["protocol.contract_state.vault.implementation"] == "crit"


def test_parameter_change_rejects_a_value_outside_bounds_and_audits_it(ops_flows, ops_store_engine):
    from flows.parameter_change import parameter_change
    from vvops.procedures.parameters import ProposalRejected

    with pytest.raises(ProposalRejected, match=r"feeBps = 5000 is outside its bounds \[0, 1000\]"):
        parameter_change(parameter="feeBps", new_value=5000, proposer="dana", environment="devnet")
    result = parameter_change(parameter="feeBps", new_value=50, proposer="dana", environment="devnet")

    assert result == {"status": "validated", "contract": "vault", "parameter": "feeBps", "current_value": 30, "new_value": 50}
    with ops_store_engine.connect() as conn:
        actions = conn.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()
    assert actions[-2:] == ["parameter_change.rejected_invalid", "parameter_change.proposed"]


def test_upgrade_checklist_passes_for_v2_and_stops_an_incompatible_layout(ops_flows, devnet):
    from flows.upgrade_rollout import upgrade_rollout

    ok = upgrade_rollout(proposer="dana", environment="devnet")
    assert ok["status"] == "checklist-passed"
    assert ok["current_implementation"] == devnet.contracts.vault_v1_implementation

    with pytest.raises(RuntimeError, match="storage layout compatible"):
        upgrade_rollout(proposer="dana", new_artifact="VaultV2Incompatible",
                        new_implementation="from-devnet:vault_v2_incompatible_implementation", environment="devnet")


def test_upgrade_checklist_stops_when_the_code_is_not_the_approved_artifact(ops_flows, devnet):
    from flows.upgrade_rollout import upgrade_rollout

    with pytest.raises(RuntimeError, match="bytecode matches the approved artifact"):
        upgrade_rollout(proposer="dana", new_implementation=devnet.contracts.vault_v1_implementation, environment="devnet")


def test_incident_response_opens_an_incident_with_the_on_call_commander(ops_flows, ops_store_engine):
    from flows.incident_response import incident_response

    result = incident_response(title="vault drained", severity="P0", incident_type="security", environment="devnet")

    with ops_store_engine.connect() as conn:
        incident = conn.execute(select(Incident).where(Incident.key == result["incident"])).one()
    assert (incident.severity, incident.type, incident.status) == ("P0", "security", "open")
    assert incident.commander == result["commander"] and result["commander"]


def test_dr_drill_restores_the_store_and_records_rto(ops_flows, ops_store_engine):
    from flows.dr_drill import dr_drill

    result = dr_drill(environment="devnet")

    assert result["ok"] and result["mismatched_tables"] == []
    with ops_store_engine.connect() as conn:
        drill = conn.execute(select(Drill).where(Drill.id == result["drill_id"])).one()
    assert drill.ok and drill.rto_seconds > 0


def test_weekly_and_monthly_reviews_summarise_the_store(ops_flows):
    from flows.daily_checks import daily_checks
    from flows.monthly_review import monthly_review
    from flows.weekly_review import weekly_review
    from datetime import datetime, timedelta, timezone

    daily_checks(environment="devnet")
    weekly = weekly_review(environment="devnet", week_ending=datetime.now(timezone.utc) + timedelta(minutes=1),
                           notify_slack=False)
    monthly = monthly_review(environment="devnet", notify_slack=False)

    protocol = next(a for a in weekly["areas"] if a["area"] == "protocol")
    assert protocol["total"] >= protocol["ok"] > 0
    assert monthly["audit_chain"]["ok"] is True and monthly["audit_chain"]["checked"] > 0


def test_emergency_pause_reads_the_state_and_audits_the_request(ops_flows, devnet):
    from flows.emergency_pause import emergency_pause

    result = emergency_pause(reason="suspicious withdrawals", requested_by="erin", environment="devnet")

    assert result == {"contract": "vault", "already_paused": False, "guardian": devnet.accounts.guardian.address}
