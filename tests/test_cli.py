"""The `vvops` command as an operator meets it: readable errors, exit codes a monitoring system understands."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from vvops.cli import main, monitoring_exit_code
from vvops.devnet import free_port


def _vvops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vvops.cli", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_config_check_passes_on_the_shipped_config():
    result = _vvops("config", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("config OK: ")


def test_config_check_prints_one_line_per_problem_and_exits_1(config_copy):
    config_copy.set("team.yaml", "people[0].roles[0]", "wizard")
    config_copy.set("slack.yaml", "bot_token", "xoxb-123456789012-literal-token")

    result = _vvops("config", "check", "--config-dir", str(config_copy.dir))

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("team.yaml: people[0].roles[0]: ") for line in lines), lines
    assert any(line.startswith("slack.yaml: bot_token: ") for line in lines), lines
    assert "Traceback" not in result.stdout + result.stderr
    assert "xoxb-123456789012-literal-token" not in result.stdout + result.stderr


def test_run_without_a_server_says_how_to_start_one():
    port = free_port()
    result = _vvops("run", "daily-checks", env={"PREFECT_API_URL": f"http://127.0.0.1:{port}/api"})
    assert result.returncode == 3
    assert f"Prefect API at http://127.0.0.1:{port}/api is not answering" in result.stderr
    assert "./vv up" in result.stderr


@pytest.fixture
def api_up(monkeypatch):
    """Pretend the Prefect API answers; `vvops run` writes Prefect variables to os.environ, restored after."""
    for key in ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_LOGGING_LEVEL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr("vvops.services.api_is_healthy", lambda *a, **k: True)


def test_bad_param_is_a_usage_error(capsys, api_up):
    assert main(["run", "daily-checks", "--param", "no-equals-sign"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_unknown_flow_lists_the_known_ones(capsys, api_up):
    assert main(["run", "nightly-checks"]) == 2
    err = capsys.readouterr().err
    assert "unknown flow 'nightly-checks'" in err and "daily-checks" in err


@pytest.mark.parametrize(
    ("state", "statuses", "code"),
    [
        ("COMPLETED", ["ok", "ok"], 0),
        ("COMPLETED", ["ok", "warn"], 1),
        ("COMPLETED", ["ok", "unknown"], 1),   # nothing configured to check: attention, not ok
        ("COMPLETED", ["unknown", "error"], 3),
        ("COMPLETED", ["warn", "crit"], 2),
        ("COMPLETED", ["crit", "error"], 2),   # crit outranks could-not-run
        ("COMPLETED", ["warn", "error"], 3),
        ("FAILED", ["crit"], 2),
        ("FAILED", [], 3),
        ("COMPLETED", [], 0),
    ],
)
def test_monitoring_exit_codes(state, statuses, code):
    summary = {"state": state, "checks": [{"status": s} for s in statuses]}
    assert monitoring_exit_code(summary) == code


def test_silence_add_list_expire_from_the_command_line(tmp_path):
    env = {**os.environ, "VVOPS_HOME": str(tmp_path)}
    env.pop("VVOPS_STORE_URL", None)
    added = _vvops("silence", "add", 'alertname="rpc_down"', 'chain="mainnet"', "--for", "2h", "--by", "kwame",
                   "--reason", "provider migration", env=env)
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.split()[0]
    assert added.stdout.startswith(f'{silence_id} mutes alertname="rpc_down" chain="mainnet" until ')
    listed = _vvops("silence", "list", env=env)
    assert listed.stdout.startswith(silence_id) and "(provider migration)" in listed.stdout

    bad = _vvops("silence", "add", 'alertname=~"(rpc"', "--by", "kwame", "--reason", "x", env=env)
    assert bad.returncode == 1 and "silence not created: matchers: invalid regular expression '(rpc'" in bad.stderr
    stranger = _vvops("silence", "expire", silence_id, "--by", "nobody", env=env)
    assert stranger.returncode == 1 and "'nobody' is not on the roster" in stranger.stderr
    sre = _vvops("silence", "expire", silence_id, "--by", "mei", env=env)   # rpc_down is P1: leads and security
    assert sre.returncode == 1 and "mei (sre) may not silence P1 alerts" in sre.stderr
    expired = _vvops("silence", "expire", silence_id, "--by", "amara", env=env)
    assert expired.returncode == 0 and expired.stdout.startswith(f"{silence_id} expired")
    assert _vvops("silence", "list", env=env).stdout.strip() == "no silences in force (--all shows ended ones)"
    assert "ended" in _vvops("silence", "list", "--all", env=env).stdout


@pytest.mark.timeout(900)  # imports alone take minutes on a loaded machine
def test_a_tabletop_drill_is_recorded_with_participants_and_findings_and_counts_for_compliance(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VVOPS_HOME", str(tmp_path))
    monkeypatch.delenv("VVOPS_STORE_URL", raising=False)
    assert main(["drill", "record", "--kind", "tabletop", "--scenario", "guardian key lost during a drain",
                 "--participant", "amara", "--participant", "mei", "--finding", "no backup guardian documented",
                 "--finding", "pager escalation took 9 min", "--at", "2026-11-20T14:00", "--by", "mei"]) == 0
    assert "tabletop drill #1 with 2 participant(s), 2 finding(s)" in capsys.readouterr().out
    assert main(["drill", "record", "--kind", "tabletop", "--scenario", "x", "--participant", "mei",
                 "--by", "mei"]) == 1
    assert "record what the drill found" in capsys.readouterr().err
    assert main(["drill", "record", "--kind", "tabletop", "--scenario", "x", "--participant", "nobody",
                 "--finding", "f", "--by", "mei"]) == 1
    assert "'nobody' is not on the roster" in capsys.readouterr().err

    import pandas as pd
    from sqlalchemy import create_engine, text

    from vvops.reviews.compliance import drills_control

    engine = create_engine(f"sqlite:///{tmp_path / 'ops.db'}")
    with engine.connect() as conn:
        drills = pd.read_sql(text("SELECT id, kind, started_at, ok, details FROM drills"), conn)
        audit = conn.scalar(text("SELECT count(*) FROM audit_log WHERE action = 'drill.record'"))
    engine.dispose()
    assert len(drills) == 1 and audit == 1
    drills["started_at"] = pd.to_datetime(drills["started_at"], utc=True)
    control = drills_control(drills, every_days={"tabletop": 180}, end=datetime(2026, 11, 30, tzinfo=timezone.utc))
    assert control.passed, control.summary
