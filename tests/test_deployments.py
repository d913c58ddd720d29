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
        "public_statement": [],
        "announcement": [],
        "acknowledge_alert_flow": [],
        "ops_sweep": ["* * * * *"],
    }


def test_every_spec_points_at_a_flow_with_its_name_and_an_environment_parameter():
    for spec in DEPLOYMENTS:
        flow = spec.load_flow()
        assert flow.name == spec.flow_name
        assert "environment" in flow.parameters.properties
        assert spec_for(spec.flow_name) is spec


def test_prefect_yaml_has_every_flow_for_every_configured_environment_and_devnet_schedules_paused():
    from vvops.config import load_environments

    environments = load_environments().environments
    document = yaml.safe_load(render())
    names = {(d["entrypoint"], d["name"]) for d in document["deployments"]}
    assert names == {(spec.entrypoint, env) for spec in DEPLOYMENTS for env in environments}
    for deployment in document["deployments"]:
        assert deployment["parameters"]["environment"] == deployment["name"]
        assert deployment["name"] in deployment["tags"]
        for schedule in deployment["schedules"]:
            assert schedule["active"] is (not environments[deployment["name"]].uses_devnet)


def _config_with_schedules(tmp_path, monkeypatch, schedules_yaml: str):
    import shutil

    config = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "config", config)
    path = config / "environments.yaml"
    text = path.read_text().replace("    explorer_url: https://etherscan.io\n",
                                    "    explorer_url: https://etherscan.io\n" + schedules_yaml, 1)
    path.write_text(text)
    monkeypatch.setenv("VVOPS_CONFIG_DIR", str(config))
    return config


def test_an_environments_schedules_override_the_defaults_or_turn_a_cadence_off(tmp_path, monkeypatch):
    _config_with_schedules(tmp_path, monkeypatch,
                           "    schedules:\n      daily-checks: '30 5 * * *'\n      ops-sweep: off\n")
    document = yaml.safe_load(render(environments=["mainnet"]))
    crons = {d["entrypoint"].split(":")[1]: [s["cron"] for s in d["schedules"]] for d in document["deployments"]}
    assert crons["daily_checks"] == ["30 5 * * *"]
    assert crons["ops_sweep"] == []
    assert crons["weekly_review"] == ["0 7 * * 1"]


def test_a_schedule_for_a_flow_that_does_not_exist_is_refused_by_name(tmp_path, monkeypatch):
    import pytest

    _config_with_schedules(tmp_path, monkeypatch, "    schedules:\n      daily-check: '0 6 * * *'\n")
    with pytest.raises(ValueError, match=r"schedules: no deployment named daily-check \(choose from daily-checks"):
        render(environments=["mainnet"])


def test_config_check_refuses_a_cron_that_would_never_parse(tmp_path, monkeypatch):
    from vvops.config import check_config

    config = _config_with_schedules(tmp_path, monkeypatch,
                                    "    schedules:\n      daily-checks: '0 25 * * *'\n      weekly-review: '0 7 * *'\n")
    problems = check_config(config, "mainnet")
    assert any("environments.mainnet.schedules.daily-checks" in p and "hour: 25 is outside 0-23" in p for p in problems)
    assert any("schedules.weekly-review" in p and "has 4 fields" in p for p in problems), problems
