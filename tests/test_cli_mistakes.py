"""Every ordinary CLI mistake ends in one clear line on stderr and a non-zero exit, never a traceback
(issue 13 item 7). The `run` cases go through the real command against the session's Prefect server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.test_cli import _vvops
from vvops.cli import main


def _one_clear_line(result: subprocess.CompletedProcess, *, code: int | None = None) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode != 0 if code is None else result.returncode == code, (result.returncode, output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def api_up(monkeypatch):
    """`vvops run` in this process with the API health check answered (nothing here reaches a flow run)."""
    for key in ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_LOGGING_LEVEL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr("vvops.services.api_is_healthy", lambda *a, **k: True)


def _run_line(capfd, *argv: str) -> tuple[int, str]:
    code = main(["run", *argv])
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return code, lines[0]


@pytest.mark.parametrize(("params", "expected"), [
    (["-p", "bogus=1"], "unknown parameter 'bogus'"),
    (["-p", "parameter=feeBps"], "missing required parameters new_value ("),
    (["-p", "parameter=feeBps", "-p", "new_value=50", "-p", "proposer=amara", "-p", "contract=nosuch"],
     "-p contract='nosuch': not a contract in config/contracts.yaml"),
    (["-p", "parameter=feeBps", "-p", "new_value=50", "-p", "proposer=amara", "-e", "nosuchenv"],
     "unknown environment 'nosuchenv'"),
])
def test_parameter_change_mistakes(capfd, api_up, params, expected):
    code, line = _run_line(capfd, "parameter-change", *params)
    assert code != 0 and expected in line, line


def test_a_number_that_is_not_a_number(capfd, api_up):
    code, line = _run_line(capfd, "weekly-review", "-p", "week_ending=abc")
    assert code == 2 and line.startswith("vvops: weekly-review: -p week_ending='abc': expected datetime"), line


def test_wrong_types_name_the_parameter(capfd, api_up):
    code, line = _run_line(capfd, "weekly-review", "-p", "notify_slack=maybe")
    assert code == 2 and line.startswith("vvops: weekly-review: -p notify_slack='maybe': expected bool"), line


@pytest.mark.parametrize("argv", [
    ("devnet", "history", "--days", "-5"),
    ("devnet", "history", "--days", "abc"),
    ("up", "--port", "99999"),
    ("silence", "add", 'alertname="x"', "--for", "99999999d", "--by", "amara", "--reason", "x"),
    ("slots", "list", "-e", "nosuchenv"),
])
def test_argument_mistakes(argv, tmp_path):
    _one_clear_line(_vvops(*argv, env={"VVOPS_HOME": str(tmp_path)}))


def test_output_piped_into_head_ends_quietly():
    result = subprocess.run(f"'{sys.executable}' -m vvops.cli checklist show daily | head -1", shell=True,
                            capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert len(result.stdout.splitlines()) == 1
    assert result.stderr == "", result.stderr


@pytest.mark.devnet
@pytest.mark.prefect
def test_a_refused_proposal_run_from_the_cli_is_one_line_not_a_traceback(ops_flows, prefect_api):
    result = _vvops("run", "parameter-change", "-p", "parameter=feeBps", "-p", "new_value=true", "-p", "proposer=priya",
                    env={"PREFECT_API_URL": prefect_api, "VVOPS_HOME": str(ops_flows)})
    output = result.stdout + result.stderr
    assert result.returncode == 3 and "Traceback" not in output, output
    assert "ProposalRejected: feeBps must be an integer, got the boolean true" in result.stdout, output


def test_a_refused_cli_action_is_audited(tmp_path):
    from sqlalchemy import create_engine, select

    from vvops.store.models import AuditEntry

    store = f"sqlite:///{tmp_path}/ops.db"
    result = _vvops("checklist", "confirm", "daily.security-posture.threat-intelligence-updates", "--by", "mallory", "--note", "x" * 5000,
                    env={"VVOPS_STORE_URL": store, "VVOPS_HOME": str(tmp_path)})
    assert result.returncode == 1 and "'mallory' is not on the roster" in result.stderr
    engine = create_engine(store)
    with engine.connect() as conn:
        actor, action, details = conn.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.details)).one()
    engine.dispose()
    assert (actor, action, details["rule"]) == ("mallory", "checklist.confirm.refused", "identity.unknown_person")
    assert len(str(details)) < 4096
