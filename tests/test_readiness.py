"""A flow refuses to start, in one line naming the fix, when its worker cannot run it (issue: the Prefect-native
path failed deep in a task with `no such table: approval_requests`)."""

from __future__ import annotations

import os

import pytest

from vvops.config import ConfigError, ConfigProblem
from vvops.readiness import config_problem, readiness_problem, store_problem
from vvops.store import migrate
from vvops.store.db import make_engine


def _valid(_: str) -> None:
    return None


def test_a_never_migrated_store_names_vvops_store_migrate(empty_sqlite_url):
    line = store_problem(empty_sqlite_url)
    assert line is not None and "never migrated" in line and line.endswith("run `vvops store migrate`")
    assert "\n" not in line


def test_a_store_behind_head_says_which_revision_and_the_command(empty_sqlite_url):
    migrate(empty_sqlite_url, "0002")
    line = store_problem(empty_sqlite_url)
    assert "is at revision 0002" in line and line.endswith("run `vvops store migrate`")
    migrate(empty_sqlite_url)
    assert store_problem(empty_sqlite_url) is None


def test_a_store_migrated_by_newer_code_is_not_mistaken_for_an_old_one(empty_sqlite_url):
    migrate(empty_sqlite_url)
    engine = make_engine(empty_sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    assert "does not know" in store_problem(empty_sqlite_url)


def test_an_unreachable_store_is_one_line_without_its_password():
    url = "postgresql+psycopg://ops:hunter2@127.0.0.1:1/ops?connect_timeout=2"
    line = store_problem(url)
    assert "not reachable" in line and "hunter2" not in line and "\n" not in line


def test_invalid_config_names_vvops_config_check_and_counts_the_problems():
    def broken(environment: str) -> None:
        raise ConfigError([ConfigProblem("contracts.yaml", "contracts[0].address", "not an address", "fix it"),
                           ConfigProblem("team.yaml", "people[1]", "unknown role", "fix it")])

    line = config_problem("mainnet", broken)
    assert line.startswith("config/ is not valid for mainnet: contracts.yaml: contracts[0].address: not an address")
    assert "(and 1 more)" in line and line.endswith("run `vvops config check -e mainnet`")


def test_a_ready_environment_has_no_problem(sqlite_store_url):
    assert readiness_problem("devnet", store_url=sqlite_store_url, load_config=_valid) is None


def test_a_deployed_flow_on_an_unmigrated_store_fails_in_one_line_before_any_task(ops_flows, tmp_path, monkeypatch):
    """Under the real Prefect server: the run ends Failed with the line as its message and runs no task."""
    from prefect.client.orchestration import get_client

    from flows.dr_drill import dr_drill

    monkeypatch.setenv("VVOPS_STORE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    state = dr_drill(environment="devnet", return_state=True)
    assert state.is_failed()
    assert "never migrated" in state.message and state.message.endswith("run `vvops store migrate`")
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        run_id = state.state_details.flow_run_id
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
    assert tasks == []
