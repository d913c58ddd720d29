"""Incident response: pure rules (classification, reminders, MTTA/MTTR, report) and the flow end to end on the
devnet (P0 drain → paused in the flow → unpause needs two leads → report with MTTA/MTTR; RPC failover)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from tests.fixtures.approval_fixtures import approval_run_id, resume_signed
from tests.fixtures.approval_fixtures import wait_paused as _wait_paused
from vvops.procedures import incidents as rules
from vvops.store.models import AuditEntry, Incident, IncidentEvent

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- pure rules

def test_an_alert_is_classified_by_rule_labels_and_severity():
    alert = {"rule": "tvl_drop", "severity": "P0", "contract": "vault", "environment": "devnet",
             "labels": {"category": "security"}, "annotations": {"summary": "TVL of vault fell 60%"}}
    c = rules.classify(alert=alert)
    assert (c.severity, c.incident_type, c.variant, c.title, c.contract) == (
        "P0", "security", "contract_drain", "TVL of vault fell 60%", "vault")
    assert rules.needs_guardian_pause(c)
    # the automation renders the payload as text: JSON or a Python repr both parse
    assert rules.classify(alert=repr(alert)).variant == "contract_drain"
    assert rules.classify(alert='{"rule": "failed_tx_burst", "severity": "P2"}').variant == "general"
    person = rules.classify(title="RPC provider down", severity="p1", incident_type="external", kind="major_outage")
    assert (person.severity, person.incident_type, person.variant) == ("P1", "external", "major_outage")
    assert rules.classify(title="x", severity="P9").severity == "P2"


def test_status_update_reminders_follow_the_severity_interval():
    assert rules.reminder_schedule(T0, 15, T0 + timedelta(hours=1)) == [T0 + timedelta(minutes=m) for m in (15, 30, 45, 60)]
    assert rules.due_reminder(opened_at=T0, last_update_at=None, interval_minutes=15, now=T0 + timedelta(minutes=14)) is None
    assert rules.due_reminder(opened_at=T0, last_update_at=None, interval_minutes=15,
                              now=T0 + timedelta(minutes=16)) == T0 + timedelta(minutes=15)
    # an update restarts the clock
    assert rules.due_reminder(opened_at=T0, last_update_at=T0 + timedelta(minutes=10), interval_minutes=15,
                              now=T0 + timedelta(minutes=16)) is None


def test_mtta_mttr_exclude_drills_and_sla_breaches_are_named():
    real = rules.IncidentTimes(T0, T0 + timedelta(minutes=4), T0 + timedelta(minutes=10), T0 + timedelta(minutes=90))
    slow = rules.IncidentTimes(T0, T0 + timedelta(minutes=8), None, T0 + timedelta(minutes=30))
    drill = rules.IncidentTimes(T0, T0 + timedelta(minutes=100), None, T0 + timedelta(minutes=500), is_drill=True)
    assert rules.incident_metrics([real, slow, drill]) == {"incidents": 2, "mtta_minutes": 6.0, "mttr_minutes": 60.0}
    assert rules.sla_breaches(slow, ack_sla_minutes=5, response_sla_minutes=15) == [
        "acknowledged after 8.0 min (SLA 5 min)", "mitigated after 30.0 min (SLA 15 min)"]


def test_evidence_hash_is_canonical_and_failover_puts_backups_first():
    assert rules.evidence_sha256({"b": 1, "a": [1, 2]}) == rules.evidence_sha256({"a": [1, 2], "b": 1})
    assert rules.evidence_sha256({"a": 1}) != rules.evidence_sha256({"a": 2})
    assert rules.failover_order(["p", "b1", "b2"]) == ["b1", "b2", "p"]
    assert rules.failover_order(["p", "b1", "b2"], failed=["b1"]) == ["p", "b2", "b1"]


def test_the_report_has_timeline_impact_root_cause_factors_actions_and_metrics():
    r = rules.IncidentReport(key="INC-0007", title="drain", severity="P0", incident_type="security",
                             variant="contract_drain", commander="amara", is_drill=False, opened_at=T0,
                             acknowledged_at=T0 + timedelta(minutes=3), resolved_at=T0 + timedelta(minutes=45),
                             impact="withdrawals stopped 45 min", root_cause="oracle bug",
                             contributing_factors=["no rate limit"], action_items=["add rate limit"],
                             timeline=[{"at": T0.isoformat(), "kind": "opened", "actor": "watcher", "message": "x"}])
    d = r.as_dict()
    assert (d["mtta_minutes"], d["mttr_minutes"]) == (3.0, 45.0)
    assert d["report_due_by"] == (T0 + timedelta(days=5)).isoformat()
    md = r.markdown()
    for part in ("## Impact", "oracle bug", "- no rate limit", "- [ ] add rate limit", "| MTTA | 3.00 min |", "opened"):
        assert part in md


# --------------------------------------------------------------------------- flow

pytest_devnet = [pytest.mark.devnet, pytest.mark.prefect]




@pytest.mark.devnet
@pytest.mark.prefect
def test_a_p0_drain_is_paused_in_the_flow_unpause_needs_two_leads_and_the_report_has_mtta_mttr(
        ops_flows, ops_store_engine, devnet, fresh_devnet_state, flow_in_thread):
    from prefect.flow_runs import resume_flow_run

    from flows.incident_response import incident_response
    from tasks.incidents import verify_evidence

    vault = fresh_devnet_state.contract("VaultV1", devnet.contracts.vault)
    attacker = devnet.accounts.attacker.address
    marker = uuid.uuid4().hex[:8]
    alert = {"rule": "tvl_drop", "severity": "P0", "environment": "devnet", "contract": "vault",
             "labels": {"category": "security", "contract": "vault"},
             "annotations": {"summary": f"TVL of vault on devnet fell 60% within 10 blocks {marker}",
                             "from": attacker}}
    run = flow_in_thread(incident_response, alert=alert, opened_by="watcher", acknowledged_by="amara",
                         resolve=True, impact="vault paused 0 min; no funds lost in the drill",
                         root_cause="withdrawal limit too high", contributing_factors=["limit set last week"],
                         action_items=["lower withdrawalLimit"], unpause_on_resolution=True, poll_interval=0.5)

    import time

    unpause_subject = None

    deadline = time.monotonic() + 90
    while unpause_subject is None and time.monotonic() < deadline:   # the unpause request appears once resolved
        if not run.thread.is_alive():
            run.join()   # raises the flow's error
        with ops_store_engine.connect() as conn:
            from vvops.store.models import ApprovalRequest

            unpause_subject = conn.execute(select(ApprovalRequest.subject).where(
                ApprovalRequest.procedure == "unpause", ApprovalRequest.subject.contains(marker))).scalar()
        time.sleep(0.2)
    assert unpause_subject, "the unpause procedure did not start"
    assert vault.call("paused") is True                                  # contained within the flow (P0: automatic)

    run_id = approval_run_id(ops_store_engine, unpause_subject)
    key = _wait_paused(run_id)
    resume_signed(run_id, ops_store_engine, "kwame", reason="fixed")
    _wait_paused(run_id, after=key)
    assert vault.call("paused") is True                                  # one approval is not enough
    resume_signed(run_id, ops_store_engine, "daniel", reason="fixed")
    result = run.join(timeout=120)

    assert vault.call("paused") is False
    assert result["variant"] == "contract_drain" and result["severity"] == "P0"
    assert result["containment"]["paused"] is True and result["unpause"]["status"] == "unpaused"
    assert result["status"] == "resolved" and result["recovery"]["ok"]
    with ops_store_engine.connect() as conn:
        incident = conn.execute(select(Incident).where(Incident.key == result["incident"])).one()
        kinds = conn.execute(select(IncidentEvent.kind).where(IncidentEvent.incident_id == incident.id)
                             .order_by(IncidentEvent.id)).scalars().all()
        audit = conn.execute(select(AuditEntry.action).where(AuditEntry.subject == incident.key)).scalars().all()
    assert (incident.status, incident.type, incident.is_drill) == ("resolved", "security", False)
    assert incident.commander == result["commander"] and incident.commander
    assert incident.acknowledged_at and incident.mitigated_at and incident.resolved_at
    for kind in ("opened", "paged", "evidence", "containment", "contained", "acknowledged", "resolution", "recovery",
                 "recovery_verified", "resolved"):
        assert kind in kinds, kind
    report = incident.report
    assert report["submitted_at"] and report["mtta_minutes"] is not None and report["mttr_minutes"] is not None
    assert report["root_cause"] == "withdrawal limit too high" and report["action_items"] == ["lower withdrawalLimit"]
    assert [c["done"] for c in report["checklist"]] == [True] * 5
    assert report["runbook_url"] == "docs/runbooks.md#funds-at-risk"   # the tvl_drop rule's section
    assert verify_evidence(incident.key) == [True]
    assert "incident.report_submitted" in audit


@pytest.mark.devnet
@pytest.mark.prefect
def test_reminders_are_due_by_severity_and_sent_once(ops_flows, ops_store_engine):
    from flows.incident_response import incident_response, incident_reminder_sweep

    result = incident_response(title="slow RPC", severity="P2", incident_type="technical", opened_by="mei",
                               wait_for_people=False)
    key = result["incident"]
    with ops_store_engine.connect() as conn:
        opened_at = conn.execute(select(Incident.opened_at).where(Incident.key == key)).scalar()
    assert [r for r in incident_reminder_sweep(now=opened_at + timedelta(minutes=119)) if r["key"] == key] == []
    due = [r for r in incident_reminder_sweep(now=opened_at + timedelta(minutes=121)) if r["key"] == key]
    assert [r["interval_minutes"] for r in due] == [120]
    assert [r for r in incident_reminder_sweep(now=opened_at + timedelta(minutes=122)) if r["key"] == key] == []


@pytest.mark.devnet
@pytest.mark.prefect
def test_a_major_outage_switches_the_chain_block_to_the_backup_url_and_verifies_it(ops_flows, ops_store_engine, devnet,
                                                                                  monkeypatch):
    from blocks.chain import ChainConnection
    from flows.incident_response import incident_response

    monkeypatch.setenv("VV_TEST_DEAD_PORT", "9")     # nothing listens on the discard port
    dead = "http://127.0.0.1:${VV_TEST_DEAD_PORT}/"  # a template, as a URL with an API key would be
    ChainConnection(environment="devnet", chain_id=31337, rpc_urls=[dead, devnet.rpc_url],
                    request_timeout_s=1).save("vv-chain-devnet", overwrite=True)
    try:
        result = incident_response(title="primary RPC down", severity="P1", incident_type="external",
                                   kind="major_outage", opened_by="mei", wait_for_people=False)
        block = ChainConnection.load("vv-chain-devnet")
        assert block.rpc_urls == [devnet.rpc_url, dead]   # the new order keeps the template, not its value
        assert block.urls() == [devnet.rpc_url, "http://127.0.0.1:9/"]
        assert result["containment"]["verified"] and result["containment"]["switched"]
        with ops_store_engine.connect() as conn:
            incident = conn.execute(select(Incident).where(Incident.key == result["incident"])).one()
        assert incident.status == "mitigated" and incident.mitigated_at
    finally:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            doc = client.read_block_document_by_name("vv-chain-devnet", "veritasvault-chain")
            client.delete_block_document(doc.id)


@pytest.mark.devnet
@pytest.mark.prefect
def test_a_p1_drain_pauses_after_one_lead_and_people_answer_the_ack_and_resolution_forms(
        ops_flows, ops_store_engine, devnet, fresh_devnet_state, flow_in_thread):
    import time

    from prefect.flow_runs import resume_flow_run

    from flows.incident_response import incident_response
    from vvops.store.models import ApprovalRequest

    vault = fresh_devnet_state.contract("VaultV1", devnet.contracts.vault)
    marker = uuid.uuid4().hex[:8]
    run = flow_in_thread(incident_response, title=f"suspicious withdrawals {marker}", severity="P1",
                         incident_type="security", kind="drain", opened_by="mei", poll_interval=0.5)
    deadline, subject = time.monotonic() + 60, None
    while subject is None and time.monotonic() < deadline:
        assert run.thread.is_alive() or run.join() is None
        with ops_store_engine.connect() as conn:
            subject = conn.execute(select(ApprovalRequest.subject).where(
                ApprovalRequest.procedure == "emergency_pause", ApprovalRequest.subject.contains(marker))).scalar()
        time.sleep(0.2)
    run_id = approval_run_id(ops_store_engine, subject)
    key = _wait_paused(run_id)
    assert vault.call("paused") is False                     # P1: not automatic
    resume_signed(run_id, ops_store_engine, "kwame", reason="contain")

    with ops_store_engine.connect() as conn:   # the incident run itself pauses next: the acknowledgement form
        parent = conn.execute(select(IncidentEvent.data).join(Incident).where(
            Incident.title.contains(marker), IncidentEvent.kind == "opened")).scalar()
    incident_run = parent["flow_run_id"]
    key = _wait_paused(incident_run)
    assert vault.call("paused") is True
    resume_flow_run(uuid.UUID(incident_run), run_input={"person": "daniel", "note": "on it"})
    _wait_paused(incident_run, after=key)
    resume_flow_run(uuid.UUID(incident_run), run_input={   # the devnet trusts typed roster ids (config)
        "person": "daniel", "impact": "none", "root_cause": "false positive",
        "contributing_factors": "noisy rule\nlow threshold", "action_items": "- tune large_withdrawals\n"})
    result = run.join(timeout=60)

    assert result["severity"] == "P1" and result["containment"]["approvers"] == ["kwame"]
    assert result["status"] == "resolved" and result["recovery"]["pending"]   # still paused: unpause is separate
    assert result["report"]["action_items"][0] == "tune large_withdrawals"
    [tracked] = [r for r in result["report"]["action_item_records"] if r["title"] == "tune large_withdrawals"]
    assert tracked["status"] == "open" and tracked["owner"] in (result["commander"], "daniel") and tracked["due_on"]
    with ops_store_engine.connect() as conn:
        incident = conn.execute(select(Incident).where(Incident.key == result["incident"])).one()
    assert incident.report["contributing_factors"] == ["noisy rule", "low threshold"]
    assert incident.report["root_cause"] == "false positive" and incident.acknowledged_at
