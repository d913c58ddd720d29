"""Every flow's first real step, run end to end: real anvil, a real Prefect test server, the SQLite store."""

from __future__ import annotations

import pytest


pytestmark = [pytest.mark.devnet, pytest.mark.prefect]


def test_weekly_and_monthly_reviews_summarise_the_store(ops_flows):
    from flows.daily_checks import daily_checks
    from flows.monthly_review import monthly_review
    from flows.weekly_review import weekly_review
    from datetime import datetime, timedelta, timezone

    daily_checks(environment="devnet")
    from vvops.store import append_audit, default_store_url, make_engine, session_scope

    with session_scope(make_engine(default_store_url()), immediate=True) as session:
        append_audit(session, actor="amara", action="test.entry", subject="monthly-review", source="test")
    weekly = weekly_review(environment="devnet", week_ending=datetime.now(timezone.utc) + timedelta(minutes=1),
                           notify_slack=False)
    monthly = monthly_review(environment="devnet", notify_slack=False)

    protocol = next(a for a in weekly["areas"] if a["area"] == "protocol")
    assert protocol["total"] >= protocol["ok"] > 0
    assert monthly["audit_chain"]["ok"] is True and monthly["audit_chain"]["checked"] > 0


def test_ops_sweep_runs_every_sweep_and_reports_each(ops_flows):
    from flows.ops_sweep import ops_sweep

    results = ops_sweep(environment="devnet")

    assert set(results) == {"alerts", "approvals", "incident_reminders", "action_item_reminders", "stabilisation",
                            "timelock", "probes", "oncall_handoff", "slack_outbox",
                            "status_page", "audit_anchor"}
    assert [name for name, result in results.items() if "error" in result] == []
    assert results["probes"]["probed"] >= 1  # every RPC URL of the devnet at least
