"""Warm start (deployments/warm_start.py): a deployed procedure run is claimed exactly once and run in a child
forked from a process that already imported the flow code."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from deployments.warm_start import WarmStarter
from tests.watcher_helpers import wait_until

pytestmark = [pytest.mark.prefect, pytest.mark.devnet]


def _state(run_id):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).state


@pytest.mark.timeout(900)   # the harness and the warm process's imports alone take minutes on a loaded machine
def test_a_deployed_incident_run_is_claimed_once_and_runs_warm(ops_flows, prefect_api, quiet_store, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.deployments import run_deployment
    from prefect.states import Scheduled

    from flows.incident_response import incident_response

    deployment_id = incident_response.to_deployment(name="devnet", parameters={"environment": "devnet"}).apply()
    starter = WarmStarter(prefect_api, {"incident-response/devnet": incident_response})
    assert starter.resolve_deployments() == 1
    # claiming is the orchestrated SCHEDULED -> PENDING transition: the second claimant is refused
    with get_client(sync_client=True) as client:
        later = client.create_flow_run_from_deployment(
            deployment_id, state=Scheduled(scheduled_time=datetime.now(timezone.utc) + timedelta(hours=1)))
    assert starter.due_runs() == [] or all(r["id"] != str(later.id) for r in starter.due_runs())
    assert starter.claim(str(later.id)) is True
    assert starter.claim(str(later.id)) is False

    log = (tmp_path / "warm.log").open("wb")
    warm = subprocess.Popen([sys.executable, "-m", "deployments.warm_start", "-e", "devnet", "--flows",
                             "incident-response", "--poll-s", "0.2"], env={**os.environ, "PREFECT_API_URL": prefect_api},
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        run = run_deployment("incident-response/devnet", timeout=0, parameters={
            "title": "warm start check", "severity": "P3", "incident_type": "technical", "wait_for_people": False})
        wait_until(lambda: _state(run.id).is_final(), timeout=600, every=0.5, what="the run to finish")
        assert _state(run.id).type == StateType.COMPLETED, (tmp_path / "warm.log").read_text()[-3000:]
        with get_client(sync_client=True) as client:
            history = client.read_flow_run_states(run.id)
        assert [s.type for s in history].count(StateType.RUNNING) == 1   # started once
        assert any(s.type == StateType.PENDING and s.message == "warm start" for s in history)
    finally:
        warm.terminate()
        warm.wait(30)
    assert "warm start: flow run" in (tmp_path / "warm.log").read_text()
