"""vvops.reviews.compliance: every control passes on clean data and fails on a constructed violation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd

from vvops.reviews.compliance import (
    audit_chain_control,
    change_approvals_control,
    daily_checks_control,
    drills_control,
    evaluate_controls,
    post_incident_reports_control,
)

START = datetime(2026, 2, 1, tzinfo=timezone.utc)
END = datetime(2026, 3, 1, tzinfo=timezone.utc)
POLICIES = {"parameter_change": {"approver_role": "ops_lead", "quorum": 1, "proposer_excluded": True},
            "upgrade_rollout": {"approver_role": "ops_lead", "quorum": 2, "proposer_excluded": True}}
ROLES = {"ops_lead": ["dana", "kwame", "mei"]}


def runs(skip_day: int | None = None, unfinished_day: int | None = None) -> pd.DataFrame:
    rows = []
    for d in range(28):
        at = START + timedelta(days=d, hours=6)
        if d == skip_day:
            continue
        rows.append({"id": d + 1, "flow_name": "daily-checks", "started_at": at,
                     "finished_at": None if d == unfinished_day else at + timedelta(minutes=1), "status": "ok"})
    return pd.DataFrame(rows)


def approvals(*, self_approve=False, outsider=False, missing_vote=False):
    reqs = pd.DataFrame([
        {"id": 1, "procedure": "parameter_change", "subject": "fee", "proposer": "lukas", "status": "approved",
         "flow_run_id": "run-1", "details": {"chain_action_keys": ["parameter_change:1"]}},
        {"id": 2, "procedure": "upgrade_rollout", "subject": "v2", "proposer": "dana", "status": "approved",
         "flow_run_id": "run-2", "details": {}},
        {"id": 3, "procedure": "emergency_pause", "subject": "pause", "proposer": "dana", "status": "approved",
         "flow_run_id": "run-3", "details": {}},
    ])
    votes = [(1, "mei"), (2, "kwame"), (2, "mei"), (3, "dana")]
    if self_approve:
        votes.append((1, "lukas"))
    if outsider:
        votes = [(1, "oscar") if v == (1, "mei") else v for v in votes]
    if missing_vote:
        votes.remove((2, "mei"))
    dec = pd.DataFrame([{"request_id": r, "approver": a, "decision": "approve", "accepted": True} for r, a in votes])
    return reqs, dec


ACTIONS = pd.DataFrame([{"idempotency_key": "parameter_change:1", "status": "mined", "signed_tx_hash": "0xaa"},
                        {"idempotency_key": "upgrade_rollout:run-2:step1", "status": "mined", "signed_tx_hash": "0xbb"},
                        {"idempotency_key": "keeper:harvest:9", "status": "mined", "signed_tx_hash": "0xcc"}])


def test_daily_checks_control():
    assert daily_checks_control(runs(), start=START, end=END).passed
    missing = daily_checks_control(runs(skip_day=13), start=START, end=END)
    assert not missing.passed and missing.violations == [{"day": "2026-02-14", "problem": "no completed daily check"}]
    assert not daily_checks_control(runs(unfinished_day=0), start=START, end=END).passed
    assert not daily_checks_control(None, start=START, end=END).passed
    assert len(daily_checks_control(runs(), start=START, end=END).evidence) == 28


def test_change_approvals_control():
    reqs, dec = approvals()
    assert change_approvals_control(reqs, dec, POLICIES, ROLES, chain_actions=ACTIONS).passed
    for kwargs in ({"self_approve": True}, {"outsider": True}, {"missing_vote": True}):
        reqs, dec = approvals(**kwargs)
        result = change_approvals_control(reqs, dec, POLICIES, ROLES, chain_actions=ACTIONS)
        assert not result.passed, kwargs
    reqs, dec = approvals()
    rogue = pd.concat([ACTIONS, pd.DataFrame([{"idempotency_key": "parameter_change:rogue", "status": "mined",
                                               "signed_tx_hash": "0xdd"}])])
    result = change_approvals_control(reqs, dec, POLICIES, ROLES, chain_actions=rogue)
    assert not result.passed and result.violations[0]["chain_action"] == "parameter_change:rogue"


def test_audit_chain_control():
    assert audit_chain_control({"ok": True, "checked": 10, "first_bad_id": None, "reason": None}).passed
    bad = audit_chain_control({"ok": False, "checked": 10, "first_bad_id": 4, "reason": "hash mismatch"})
    assert not bad.passed and bad.violations[0]["entry"] == 4


def incidents(report_delay_days: float | None, severity="P1", resolved=START + timedelta(days=3), drill=False):
    report = None if report_delay_days is None else {
        "submitted_at": (resolved + timedelta(days=report_delay_days)).isoformat()}
    return pd.DataFrame([{"key": "INC-1", "severity": severity, "is_drill": drill, "opened_at": resolved
                          - timedelta(hours=2), "resolved_at": resolved, "report": report}])


def test_post_incident_reports_control():
    ok = post_incident_reports_control(incidents(2), due_days=5, start=START, end=END)
    assert ok.passed and ok.evidence[0]["status"] == "on time"
    assert not post_incident_reports_control(incidents(7), due_days=5, start=START, end=END).passed
    assert not post_incident_reports_control(incidents(None), due_days=5, start=START, end=END).passed
    # not violations: a P2 without a report, a drill, a report not yet due at the end of the month
    assert post_incident_reports_control(incidents(None, severity="P2"), due_days=5, start=START, end=END).passed
    assert post_incident_reports_control(incidents(None, drill=True), due_days=5, start=START, end=END).passed
    late_month = incidents(None, resolved=END - timedelta(days=1))
    r = post_incident_reports_control(late_month, due_days=5, start=START, end=END)
    assert r.passed and r.evidence[0]["status"] == "not yet due"


def test_drills_control():
    drills = pd.DataFrame([{"id": 1, "kind": "store-restore", "started_at": END - timedelta(days=40), "ok": True},
                           {"id": 2, "kind": "store-restore", "started_at": END - timedelta(days=5), "ok": False}])
    assert drills_control(drills, every_days={"store-restore": 90}, end=END).passed
    assert not drills_control(drills, every_days={"store-restore": 30}, end=END).passed
    assert not drills_control(drills, every_days={"tabletop": 180}, end=END).passed
    assert not drills_control(None, every_days={"store-restore": 90}, end=END).passed


def test_evaluate_controls_all_pass_on_clean_data():
    reqs, dec = approvals()
    drills = pd.DataFrame([{"id": 1, "kind": "store-restore", "started_at": END - timedelta(days=4), "ok": True}])
    controls = evaluate_controls(start=START, end=END, check_runs=runs(), approval_requests=reqs,
                                 approval_decisions=dec, chain_actions=ACTIONS, policies=POLICIES, role_holders=ROLES,
                                 audit={"ok": True, "checked": 3}, incidents=incidents(1), report_due_days=5,
                                 drills=drills, drill_every_days={"store-restore": 90})
    assert [c.id for c in controls] == ["daily-checks", "change-approvals", "audit-chain", "post-incident-reports",
                                        "drills"]
    assert all(c.passed for c in controls), [c.summary for c in controls if not c.passed]
