"""Deployments: every playbook cadence and procedure has one, and prefect.yaml says the same as `vvops up`."""

from __future__ import annotations

import yaml

from deployments import DEPLOYMENTS, spec_for
from deployments.prefect_yaml import render
from vvops.paths import REPO_ROOT


def test_committed_prefect_yaml_is_current():
    assert (REPO_ROOT / "prefect.yaml").read_text() == render(), "run `uv run python -m deployments.prefect_yaml > prefect.yaml`"


def test_cadences_are_scheduled_in_utc_and_procedures_on_demand():
    document = yaml.safe_load(render())
    crons = {d["entrypoint"].split(":")[1]: [s["cron"] for s in d["schedules"]] for d in document["deployments"]}
    assert crons == {
        "daily_checks": ["0 6 * * *"],
        "weekly_review": ["0 7 * * 1"],
        "monthly_review": ["0 8 1 * *"],
        "parameter_change": [],
        "upgrade_rollout": [],
        "incident_response": [],
        "emergency_pause": [],
        "unpause": [],
        "dr_drill": [],
        "acknowledge_alert_flow": [],
        "ops_sweep": ["* * * * *"],
    }


def test_every_spec_points_at_a_flow_with_its_name_and_an_environment_parameter():
    for spec in DEPLOYMENTS:
        flow = spec.load_flow()
        assert flow.name == spec.flow_name
        assert "environment" in flow.parameters.properties
        assert spec_for(spec.flow_name) is spec
