"""The Prefect-native path, as a team that already runs Prefect follows docs/deployment.md: their own server
(with API auth), Prefect's own CLI for the work pool, `prefect deploy --all`, a worker and `prefect deployment
run`; and `vvops up --prefect-api-url` registering everything on that server instead of starting one."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from deployments import DEPLOYMENTS
from tests.fixtures.prefect_http import prefect_http
from vvops.config import load_environments
from vvops.devnet import free_port
from vvops.paths import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.devnet]

PREFECT = str(Path(sys.executable).parent / "prefect")
AUTH_STRING = "team-ops:correct-horse-battery"
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


class TeamPrefect:
    """A Prefect server of the team's own, and the environment its people's shells have."""

    def __init__(self, api: str, env: dict[str, str]):
        self.api = api
        self.env = env
        self.http = prefect_http(api, auth=tuple(AUTH_STRING.split(":", 1)), timeout=15)

    def run(self, *argv: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        done = subprocess.run(list(argv), cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done

    def deployment_run(self, name: str, *params: str) -> str:
        argv = [PREFECT, "deployment", "run", name]
        for param in params:
            argv += ["--param", param]
        out = self.run(*argv).stdout
        return re.search(r"UUID: ([0-9a-f-]{36})", out).group(1)

    def flow_run(self, run_id: str) -> dict:
        return self.http.get(f"/flow_runs/{run_id}").json()

    def wait_for_state(self, run_id: str, states: tuple[str, ...], timeout: float = 480) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.flow_run(run_id)
            if run["state"]["type"] in states:
                return run
            time.sleep(1)
        raise AssertionError(f"flow run {run_id} never reached {states}: {run['state']}")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VVOPS_"))}
    env.update({"PYTHONUNBUFFERED": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **extra})
    return env


@pytest.fixture(scope="module")
def team_prefect(tmp_path_factory, devnet_json_path):
    """A fresh `prefect server start` with basic auth on, and a VVOPS_HOME with the devnet but no store."""
    prefect_home = tmp_path_factory.mktemp("team-prefect")
    vvops_home = tmp_path_factory.mktemp("team-vvops")
    shutil.copy(devnet_json_path, vvops_home / "devnet.json")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    server_env = _clean_env(PREFECT_HOME=str(prefect_home), PREFECT_SERVER_API_AUTH_STRING=AUTH_STRING)
    log = (prefect_home / "server.log").open("w")
    server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=server_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    team = TeamPrefect(api, _clean_env(PREFECT_HOME=str(prefect_home), PREFECT_API_URL=api,
                                       PREFECT_API_AUTH_STRING=AUTH_STRING, VVOPS_HOME=str(vvops_home),
                                       PREFECT_WORKER_QUERY_SECONDS="2"))
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if team.http.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (prefect_home / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        else:
            raise AssertionError("the team's Prefect server did not start within 300 s")
        assert httpx.get(f"{api}/deployments/filter", timeout=5).status_code == 401  # auth is really on
        yield team
    finally:
        team.http.close()
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


@pytest.mark.timeout(1500)  # a server, 22 deployments and three runs in new processes: minutes on 2 busy cores
def test_a_team_deploys_with_prefects_own_cli_and_every_run_completes(team_prefect, devnet, fresh_devnet_state):
    team = team_prefect
    team.run(PREFECT, "work-pool", "create", "vvops-process", "--type", "process")
    team.run(PREFECT, "--no-prompt", "deploy", "--all", timeout=600)

    deployments = team.http.post("/deployments/filter", json={"limit": 200}).json()
    flows = {f["id"]: f["name"] for f in team.http.post("/flows/filter", json={"limit": 200}).json()}
    by_name = {f"{flows[d['flow_id']]}/{d['name']}": d for d in deployments}
    environments = list(load_environments().environments)
    assert set(by_name) == {f"{s.flow_name}/{e}" for s in DEPLOYMENTS for e in environments}
    daily_mainnet = by_name["daily-checks/mainnet"]
    assert daily_mainnet["parameters"] == {"environment": "mainnet"}
    assert [(s["schedule"]["cron"], s["active"]) for s in daily_mainnet["schedules"]] == [("0 6 * * *", True)]
    assert [s["active"] for s in by_name["ops-sweep/devnet"]["schedules"]] == [False]  # devnet: on demand here
    # The example mainnet has no real chain behind it: pause its deployments so only the runs below use the worker.
    for deployment in deployments:
        if deployment["name"] == "mainnet":
            assert team.http.patch(f"/deployments/{deployment['id']}", json={"paused": True}).status_code == 204
    scheduled = team.http.post("/flow_runs/filter", json={"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}})
    for run in scheduled.json():
        team.http.delete(f"/flow_runs/{run['id']}")

    worker_log = Path(team.env["VVOPS_HOME"]) / "worker.log"
    with worker_log.open("w") as log:
        worker = subprocess.Popen([PREFECT, "worker", "start", "--pool", "vvops-process"], cwd=REPO_ROOT,
                                  env=team.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # The store was never migrated: the run fails at once, in one line that names the fix.
        refused = team.wait_for_state(team.deployment_run("dr-drill/devnet"), FINAL)
        assert refused["state"]["type"] == "FAILED", refused["state"]
        message = refused["state"]["message"]
        assert "was never migrated" in message and message.endswith("run `vvops store migrate`")
        assert "\n" not in message

        team.run(sys.executable, "-m", "vvops.cli", "store", "migrate")

        # A cadence and a procedure with an approval, side by side on the worker; a lead answers the paused one.
        daily_id = team.deployment_run("daily-checks/devnet")
        pause_id = team.deployment_run("emergency-pause/devnet", "reason=prefect-native drill",
                                       "requested_by=erin", "severity=P1", "approval_poll_interval=0.5")
        team.wait_for_state(pause_id, ("PAUSED", *FINAL))
        answer = {"run_input": {"decision": "approve", "approver": "kwame", "reason": "drill"}}
        assert team.http.post(f"/flow_runs/{pause_id}/resume", json=answer).status_code in (200, 201)
        for run_id in (pause_id, daily_id):
            run = team.wait_for_state(run_id, FINAL)
            assert run["state"]["type"] == "COMPLETED", (run["name"], run["state"], worker_log.read_text()[-4000:])
        assert fresh_devnet_state.contract("VaultV1", devnet.contracts.vault).call("paused") is True
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)


@pytest.mark.timeout(600)
def test_vvops_up_registers_everything_on_the_teams_server_instead_of_starting_one(team_prefect, devnet):
    team = team_prefect
    up = subprocess.Popen([sys.executable, "-m", "vvops.cli", "up", "-e", "devnet", "--no-devnet", "--no-history",
                           "--prefect-api-url", team.api, "--slack-port", str(free_port()),
                           "--status-port", str(free_port())],
                          cwd=REPO_ROOT, env=team.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not any(line.startswith("concurrency limits") for line in lines):
            line = up.stdout.readline()
            if not line and up.poll() is not None:
                break
            lines.append(line)
        output = "".join(lines)
        assert any(line.startswith("concurrency limits") for line in lines), output
        assert f"using the existing server at {team.api} (basic auth from $PREFECT_API_AUTH_STRING)" in output
        assert "prefect    UI" not in output  # no server of our own

        blocks = {b["name"] for b in team.http.post("/block_documents/filter", json={}).json()}
        assert {"vv-store", "vv-slack", "vv-chain-devnet"} <= blocks
        automations = {a["name"] for a in team.http.post("/automations/filter", json={}).json()}
        assert {"vv-alert-incident-response-devnet", "vv-reschedule-crashed-devnet"} <= automations
        assert team.http.get("/v2/concurrency_limits/vv-contract-devnet-vault").json()["limit"] == 1

        status = team.run(sys.executable, "-m", "vvops.cli", "status", "--prefect-api-url", team.api, check=False)
        assert '"healthy": true' in status.stdout and "incident-response/devnet" in status.stdout, status.stdout
        assert AUTH_STRING not in status.stdout
    finally:
        up.send_signal(signal.SIGINT)
        rest, _ = up.communicate(timeout=90)
    assert up.returncode == 0, rest
