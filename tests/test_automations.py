"""A P0 watcher alert event starts the incident-response deployment with the alert as parameters
(Prefect test server; nothing executes the run: we assert it is created)."""

from __future__ import annotations

import time

import pytest

from deployments.automations import automation_name, ensure_automations
from vvops.watcher.conditions import WatcherAlert
from vvops.watcher.sinks import PrefectEventSink

ENV = "autotest"


@pytest.fixture
def incident_deployment(prefect_api):
    from flows.incident_response import incident_response

    dep = incident_response.to_deployment(name=ENV, tags=["procedure", "incident"])
    return dep.apply()


def _alert(severity: str, tx: str) -> WatcherAlert:
    return WatcherAlert(rule="unapproved_upgrade", severity=severity, chain_id=31337, environment=ENV,
                        block_number=42, block_hash="0x" + "ab" * 32, block_timestamp=1_800_000_000, tx_hash=tx,
                        contract="vault", dedup_key=f"unapproved_upgrade:{tx}:0",
                        labels={"alertname": "unapproved_upgrade", "chain": ENV, "category": "security",
                                "dedup": f"unapproved_upgrade:{tx}:0"},
                        annotations={"summary": "vault on autotest upgraded with no approved change record"})


def _runs(deployment_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def test_p0_event_creates_incident_response_run(incident_deployment):
    ids = ensure_automations(ENV)
    assert ensure_automations(ENV) != ids  # replaced, not duplicated
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        assert len(client.read_automations_by_name(automation_name(ENV))) == 1

    p2 = _alert("P2", "0x" + "02" * 32)
    p0 = _alert("P0", "0x" + "01" * 32)
    sink = PrefectEventSink()
    assert sink.fire(p2) and sink.fire(p0)
    deadline = time.monotonic() + 20
    runs = []
    while time.monotonic() < deadline:
        runs = _runs(incident_deployment)
        if runs:
            break
        time.sleep(0.5)
    assert len(runs) == 1, "exactly the P0 event starts a run"
    params = runs[0].parameters
    assert params["severity"] == "P0"
    assert params["title"] == p0.annotations["summary"]
    assert params["incident_type"] == "security"
    assert params["opened_by"] == "watcher" and params["environment"] == ENV
    assert params["alert"]["tx_hash"] == p0.tx_hash
    assert params["alert"]["block_number"] == 42 and params["alert"]["fingerprint"] == p0.fingerprint
    time.sleep(2)
    assert len(_runs(incident_deployment)) == 1, "the P2 event started nothing"


def test_a_crashed_cadence_run_is_scheduled_again(prefect_api, incident_deployment):
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    from deployments.automations import reschedule_crashed_name
    from flows.ops_sweep import ops_sweep

    ensure_automations(ENV)
    deployment_id = ops_sweep.to_deployment(name=f"{ENV}-crash", tags=["cadence", ENV]).apply()
    with get_client(sync_client=True) as client:
        assert len(client.read_automations_by_name(reschedule_crashed_name(ENV))) == 1
        run = client.create_flow_run_from_deployment(deployment_id)
        client.set_flow_run_state(run.id, Crashed(message="worker killed"), force=True)
        deadline = time.monotonic() + 30
        state = "CRASHED"
        while time.monotonic() < deadline and state != "SCHEDULED":
            time.sleep(0.5)
            state = client.read_flow_run(run.id).state.type.value
    assert state == "SCHEDULED", "the crashed cadence run was not scheduled again"
