"""`vvops up` as a user runs it: one command, the UI answers, every deployment scheduled, Ctrl-C leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from deployments import DEPLOYMENTS
from vvops.devnet import free_port

pytestmark = pytest.mark.slow


def _wait_for_line(process: subprocess.Popen, needle: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"`vvops up` never printed {needle!r}; output:\n{''.join(lines)}")


@pytest.mark.timeout(1200)  # the Prefect server's first start takes minutes on a loaded 2-core machine
def test_up_serves_every_deployment_on_its_schedule_and_sigint_stops_everything(tmp_path):
    port, anvil_port, metrics_port = free_port(), free_port(), _free_port_pair()
    env = {**os.environ, "VVOPS_HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    for key in ("PREFECT_API_URL", "PREFECT_HOME", "VVOPS_STORE_URL"):
        env.pop(key, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "vvops.cli", "up", "--port", str(port), "--anvil-port", str(anvil_port),
         "--metrics-port", str(metrics_port), "--status-port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    children: list[psutil.Process] = []
    try:
        output = _wait_for_line(process, "Ctrl-C stops everything", timeout=420)  # a loaded machine: minutes
        children = psutil.Process(process.pid).children(recursive=True)
        api = f"http://127.0.0.1:{port}/api"

        assert httpx.get(f"{api}/health", timeout=5).json() is True
        deployments = _wait_for_deployments(api, expected=len(DEPLOYMENTS))
        flows = {f["id"]: f["name"] for f in httpx.post(f"{api}/flows/filter", json={}, timeout=5).json()}
        by_name = {f"{flows[d['flow_id']]}/{d['name']}": d for d in deployments}
        for spec in DEPLOYMENTS:
            deployment = by_name[f"{spec.flow_name}/devnet"]
            crons = [s["schedule"].get("cron") for s in deployment["schedules"]]
            assert crons == ([spec.cron] if spec.cron else []), spec.flow_name
            if spec.cron:
                assert deployment["schedules"][0]["schedule"]["timezone"] == "UTC"
                assert deployment["schedules"][0]["active"] is True
        assert httpx.post(f"http://127.0.0.1:{anvil_port}", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
                          timeout=5).json()["result"] == "0x7a69"
        assert any("deployment daily-checks/devnet" in line for line in output)
        # Prometheus endpoints: the exporter (store, Prefect) and the watcher
        assert "vvops_store_up 1.0" in _wait_for_metric(metrics_port, "vvops_store_up 1.0")
        assert 'vvops_chain_head_block{chain="devnet"}' in _wait_for_metric(metrics_port + 1, "vvops_chain_head_block")
        # a run started from the API: one console line when it starts and one when it ends; its logs stay off.
        # A manual run of the every-minute ops-sweep, created seconds before the minute's scheduled run is due (such
        # a run was once seen SIGTERMed at the tick): it and the scheduled one both complete.
        sweep = httpx.get(f"{api}/deployments/name/ops-sweep/devnet", timeout=10).json()
        _wait_for_second_of_minute(52)
        run = _create_flow_run(api, sweep["id"])
        output += _wait_for_line(process, f"ops-sweep/{run['name']} completed", timeout=400)
        assert any(f"ops-sweep/{run['name']} started" in line for line in output)
        tick = _scheduled_run_after(api, sweep["id"], run["expected_start_time"])
        assert _wait_for_final_state(api, tick["id"], timeout=400) == "COMPLETED", tick["name"]
        assert not [line for line in output if " cancelled after" in line or " crashed after" in line], output
        status = subprocess.run([sys.executable, "-m", "vvops.cli", "status", "--port", str(port)], env=env,
                                capture_output=True, text=True, timeout=300)
        import json

        watcher = json.loads(status.stdout)["watcher"]
        assert watcher["running"], status.stdout
        (chain,) = [c for c in watcher["chains"] if c["chain_id"] == 31337]
        assert chain["processed_block"] > 0 and chain["node_head"] >= chain["processed_block"]
    finally:
        children += _descendants(process)  # and the flow-run processes started since "ready"
        process.send_signal(signal.SIGINT)
        rest = _stopped_output(process, children, timeout=30)

    print(rest)  # the shutdown lines, for `pytest -s` (e.g. "stopped in 3.1 s")
    assert process.returncode == 0, rest
    console = "".join(output) + rest
    assert "stopped in" in rest
    for noise in ("Traceback", "CancelledError", "KeyboardInterrupt", "Finished in state", "| INFO"):
        assert noise not in console, console  # flow-run logs and shutdown noise go to the log file, not here
    shutdown = rest[rest.index("stopping ..."):].splitlines()  # before it: run lines of the last minute
    assert len(shutdown) == 2 and shutdown[1].startswith("stopped in"), rest
    assert children, "vvops up started no child processes"
    leftovers = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert leftovers == [], [c.cmdline() for c in leftovers]


def _descendants(process: subprocess.Popen) -> list[psutil.Process]:
    try:
        return psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        return []


def _stopped_output(process: subprocess.Popen, children: list[psutil.Process], *, timeout: float) -> str:
    """What `vvops up` printed after the signal; if it is still alive after `timeout` s, it and everything it
    started are killed (nothing leaks into later tests) and the test fails saying so."""
    try:
        rest, _ = process.communicate(timeout=timeout)
        return rest
    except subprocess.TimeoutExpired:
        alive = [c for c in [*children, *_descendants(process)] if c.is_running()]
        for proc in [psutil.Process(process.pid), *alive]:
            try:
                proc.kill()
            except psutil.Error:
                pass
        rest, _ = process.communicate(timeout=10)
        raise AssertionError(f"`vvops up` was still running {timeout:.0f} s after SIGINT (killed it and "
                             f"{len(alive)} process(es) it started); it printed:\n{rest}") from None


def _wait_for_second_of_minute(second: int) -> None:
    """Until the wall clock's second is `second` (at most a minute): a run created then lands just before the
    next scheduled run of an every-minute cron is due."""
    from datetime import datetime, timezone

    while datetime.now(timezone.utc).second != second:
        time.sleep(0.2)


def _scheduled_run_after(api: str, deployment_id: str, after: str) -> dict:
    """The deployment's first auto-scheduled run expected after `after` (ISO time)."""
    body = {"flow_runs": {"deployment_id": {"any_": [deployment_id]}, "expected_start_time": {"after_": after}},
            "sort": "EXPECTED_START_TIME_ASC", "limit": 10}
    runs = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json()
    return next(run for run in runs if run["auto_scheduled"])


def _create_flow_run(api: str, deployment_id: str, *, attempts: int = 30) -> dict:
    """POST create_flow_run as the UI does, sending it again while the server's SQLite answers 503 "database is
    locked" (the runner, the flow runs and the watcher's events write at the same time; Prefect's own client
    retries these the same way)."""
    for attempt in range(attempts):
        created = httpx.post(f"{api}/deployments/{deployment_id}/create_flow_run", json={}, timeout=30)
        if created.status_code < 500:
            break
        time.sleep(min(0.5 * 2 ** attempt, 4.0))
    assert created.status_code == 201, (created.status_code, created.text[:300])
    return created.json()


def _free_port_pair() -> int:
    """A port N with N+1 free too (`vvops up --metrics-port N` puts the watcher's endpoint on N+1)."""
    from vvops.devnet.anvil import port_is_free

    while True:
        port = free_port()
        if port < 65535 and port_is_free(port + 1):
            return port


def _wait_for_metric(port: int, needle: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            if needle in text:
                return text
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{needle!r} not on :{port}/metrics within {timeout:.0f} s:\n{text[:2000]}")


@pytest.fixture
def production_databases():
    """Fresh PostgreSQL databases for the Prefect server and the ops store, dropped afterwards."""
    import uuid

    from sqlalchemy.engine import make_url

    from vvops.resilience.backup import drop_scratch_database

    base = os.environ.get("VVOPS_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("set VVOPS_TEST_POSTGRES_URL to run PostgreSQL tests")
    suffix = uuid.uuid4().hex[:8]
    url = make_url(base)
    prefect_db = url.set(drivername="postgresql+asyncpg", database=f"vvops_test_prefect_{suffix}")
    store_db = url.set(drivername="postgresql+psycopg", database=f"vvops_test_store_{suffix}")
    urls = {name: u.render_as_string(hide_password=False) for name, u in (("prefect", prefect_db), ("store", store_db))}
    yield urls
    for value in urls.values():
        drop_scratch_database(scratch_url=value.replace("+asyncpg", "+psycopg"))


def test_production_profile_runs_a_deployment_on_a_worker_with_postgres(tmp_path, production_databases):
    port, anvil_port = free_port(), free_port()
    env = {**os.environ, "VVOPS_HOME": str(tmp_path), "PYTHONUNBUFFERED": "1", "PREFECT_WORKER_QUERY_SECONDS": "2",
           "VVOPS_PREFECT_DATABASE_URL": production_databases["prefect"], "VVOPS_STORE_URL": production_databases["store"],
           "PREFECT_API_AUTH_STRING": "ops:production-auth-test", "VVOPS_AUDIT_KEY": "production-audit-key-test"}
    auth = httpx.BasicAuth("ops", "production-auth-test")
    for key in ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_API_DATABASE_CONNECTION_URL"):
        env.pop(key, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "vvops.cli", "up", "--profile", "production", "--workers", "2", "--no-history",
         "--port", str(port), "--anvil-port", str(anvil_port), "--activity-interval", "0",
         "--status-port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        output = _wait_for_line(process, "Ctrl-C stops everything", timeout=420)  # as above: minutes when loaded
        assert sum("worker     vvops-worker-" in line for line in output) == 2
        assert any("vvops_test_prefect_" in line for line in output), output
        api = f"http://127.0.0.1:{port}/api"
        assert httpx.get(f"{api}/deployments/name/dr-drill/devnet", timeout=10).status_code == 401  # locked
        deployment = httpx.get(f"{api}/deployments/name/dr-drill/devnet", timeout=10, auth=auth).json()
        assert deployment["work_pool_name"] == "vvops-process"
        vault_limit = httpx.get(f"{api}/v2/concurrency_limits/vv-contract-devnet-vault", timeout=10, auth=auth).json()
        assert vault_limit["limit"] == 1 and vault_limit["active_slots"] == 0  # one change per contract
        run = httpx.post(f"{api}/deployments/{deployment['id']}/create_flow_run", json={}, timeout=10, auth=auth).json()
        state = _wait_for_final_state(api, run["id"], timeout=120, auth=auth)
        assert state == "COMPLETED"
    finally:
        children = _descendants(process)
        process.send_signal(signal.SIGINT)
        rest = _stopped_output(process, children, timeout=90)

    assert process.returncode == 0, rest
    leftovers = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert leftovers == [], [c.cmdline() for c in leftovers]
    from sqlalchemy import create_engine, text

    store = create_engine(production_databases["store"])
    with store.connect() as conn:  # the worker's flow run wrote to the PostgreSQL store
        assert conn.scalar(text("SELECT count(*) FROM drills WHERE ok")) == 1
    store.dispose()


def _wait_for_final_state(api: str, flow_run_id: str, *, timeout: float, auth=None) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=10, auth=auth)
        state = answer.json()["state"]["type"] if answer.status_code == 200 else None  # 503: SQLite busy
        if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return state
        time.sleep(1)
    return "TIMED OUT"


def _wait_for_deployments(api: str, *, expected: int, timeout: float = 240) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        deployments = httpx.post(f"{api}/deployments/filter", json={}, timeout=5).json()
        if len(deployments) >= expected or time.monotonic() > deadline:
            return deployments
        time.sleep(0.5)
