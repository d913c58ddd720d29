"""The whole daily-checks flow as the team meets it: every playbook section, stored, alerted, reported."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import select

from vvops.cli import monitoring_exit_code, run_summary
from vvops.store.models import Alert, CheckResult, CheckRun, NotificationOutbox

pytestmark = [pytest.mark.devnet, pytest.mark.prefect]

# Host load on a shared CI machine is a real reading, not a flow bug: the healthy-devnet assertions cover what
# the devnet itself decides.
ENVIRONMENT_DEPENDENT = ("infrastructure.host",)


def _statuses(summary: dict) -> dict[str, str]:
    return {check["id"]: check["status"] for check in summary["checks"]}


def test_healthy_devnet_every_section_reports_and_each_check_is_stored_once(ops_flows, quiet_store, ops_store_engine):
    from flows.daily_checks import daily_checks

    state = daily_checks(environment="devnet", return_state=True)
    summary = run_summary(state, state.result())

    statuses = _statuses(summary)
    assert {c["area"] for c in summary["checks"]} == {"protocol", "infrastructure", "security", "maintenance"}
    problems = {k: v for k, v in statuses.items() if v != "ok" and not k.startswith(ENVIRONMENT_DEPENDENT)}
    # the devnet configures no access logs, vulnerability reports, TLS endpoints (no certificate file either) or
    # credentials: those checks say so (unknown), never ok
    assert problems == {"security.access_logs": "unknown", "security.vulnerability_reports": "unknown",
                        "security.tls_certs": "unknown", "security.credentials": "unknown"}
    for expected in ("protocol.contract_state.vault.role.owner", "protocol.contract_state.vault.invariant.solvency",
                     "protocol.network_conditions.block_lag", "infrastructure.database", "maintenance.backups"):
        assert expected in statuses
    with ops_store_engine.connect() as conn:
        run = conn.execute(select(CheckRun).where(CheckRun.id == summary["store_run_id"])).one()
        stored = conn.execute(select(CheckResult.check_id, CheckResult.status).where(CheckResult.run_id == run.id)).all()
    assert dict(stored) == statuses and len(stored) == len(statuses)
    assert summary["flow_run_id"] and summary["state"] == "COMPLETED"
    assert monitoring_exit_code(summary) in (0, 1, 2)  # not 3: every check could run

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
    keys = {a.key for a in artifacts if str(a.flow_run_id) == summary["flow_run_id"]}
    assert {"daily-report", "daily-checks"} <= keys
    report = next(a for a in artifacts if a.key == "daily-report" and str(a.flow_run_id) == summary["flow_run_id"])
    for section in ("## Health by area", "## Failing checks", "## Open incidents", "## Outstanding approvals",
                    "## Planned activities (next 24 h)", "## On-call handoff"):
        assert section in report.data


def test_a_paused_vault_is_crit_alerted_and_summarised_for_slack(ops_flows, quiet_store, ops_store_engine, devnet,
                                                                fresh_devnet_state):
    from flows.daily_checks import daily_checks

    from sqlalchemy import delete

    vault = fresh_devnet_state.contract("VaultV1", devnet.contracts.vault)
    vault.transact(devnet.accounts.guardian.address, "pause")
    with ops_store_engine.begin() as conn:  # the day's report is queued once per day: drop earlier tests' copy
        conn.execute(delete(NotificationOutbox).where(NotificationOutbox.thread_key.like("report:daily:devnet:%")))

    summary = daily_checks(environment="devnet")

    assert _statuses(summary)["protocol.contract_state.vault.paused"] == "crit"
    assert summary["alerts"] >= 1
    with ops_store_engine.connect() as conn:
        alerts = conn.execute(select(Alert.labels, Alert.status, Alert.severity)).all()
        queued = conn.execute(select(NotificationOutbox.kind)
                              .where(NotificationOutbox.thread_key.like("report:daily:devnet:%"))).scalars().all()
    paused = [a for a in alerts if a.labels.get("check") == "protocol.contract_state.vault.paused"]
    assert paused and paused[-1].status in ("firing", "acknowledged")
    assert {"summary", "summary_failures"} <= set(queued)
    # the runbook section that handles it travels with the alert and the Slack failure list (config/runbooks.yaml)
    with ops_store_engine.connect() as conn:
        annotations = conn.execute(select(Alert.annotations).where(Alert.status != "resolved")).scalars().all()
        failures = conn.execute(select(NotificationOutbox.payload).where(
            NotificationOutbox.thread_key.like("report:daily:devnet:%"),
            NotificationOutbox.kind == "summary_failures")).scalars().all()
    assert any(a.get("runbook_url") == "docs/runbooks.md#contract-state" for a in annotations)
    assert "`protocol.contract_state.vault.paused`: :book: Runbook: `docs/runbooks.md#contract-state`" in \
        str(failures[-1]["blocks"])


ROGUE_CODE = "0x60006000fd"  # PUSH1 0 PUSH1 0 REVERT: every call reverts
IMPLEMENTATION_SLOT = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc"


def test_a_rogue_implementation_whose_getters_revert_exits_crit_not_could_not_run(ops_flows, quiet_store, devnet,
                                                                                  fresh_devnet_state):
    """Issue 12: the proxy pointed at code whose every getter reverts used to exit 3 (could not run)."""
    from flows.daily_checks import daily_checks

    rogue = "0x000000000000000000000000000000000000bAD1"
    fresh_devnet_state.request("anvil_setCode", [rogue, ROGUE_CODE])
    fresh_devnet_state.request("anvil_setStorageAt", [devnet.contracts.vault, IMPLEMENTATION_SLOT,
                                                  "0x" + rogue[2:].lower().rjust(64, "0")])
    state = daily_checks(environment="devnet", return_state=True)
    summary = run_summary(state, state.result(raise_on_failure=False))
    statuses = _statuses(summary)
    assert statuses["protocol.contract_state.vault.implementation"] == "crit"
    assert "error" in statuses.values()  # the getters could not be read ...
    assert monitoring_exit_code(summary) == 2  # ... and the run still exits crit
