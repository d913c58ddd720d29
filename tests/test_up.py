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
        # a run started from the API: one console line when it starts and one when it ends; its logs stay off
        # (weekly-review, not the every-minute ops-sweep: a manual ops-sweep run started seconds before the minute's
        # scheduled one was seen SIGTERMed and cancelled at the tick — an open problem named in the closing note)
        review = httpx.get(f"{api}/deployments/name/weekly-review/devnet", timeout=10).json()
        for _ in range(5):  # the server's SQLite may answer 503 "database is locked" while the sweeps write
            created = httpx.post(f"{api}/deployments/{review['id']}/create_flow_run", json={}, timeout=10)
            if created.status_code < 500:
                break
        assert created.status_code == 201, (created.status_code, created.text[:300])
        run = created.json()
        output += _wait_for_line(process, f"weekly-review/{run['name']} completed", timeout=400)
        assert any(f"weekly-review/{run['name']} started" in line for line in output)
        status = subprocess.run([sys.executable, "-m", "vvops.cli", "status", "--port", str(port)], env=env,
                                capture_output=True, text=True, timeout=300)
        import json

        watcher = json.loads(status.stdout)["watcher"]
        assert watcher["running"], status.stdout
        (chain,) = [c for c in watcher["chains"] if c["chain_id"] == 31337]
        assert chain["processed_block"] > 0 and chain["node_head"] >= chain["processed_block"]
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)

    assert process.returncode == 0, rest
    console = "".join(output) + rest
    assert "stopped in" in rest
    for noise in ("Traceback", "CancelledError", "KeyboardInterrupt", "Finished in state", "| INFO"):
        assert noise not in console, console  # flow-run logs and shutdown noise go to the log file, not here
    assert len(rest.splitlines()) <= 4, rest
    assert children, "vvops up started no child processes"
    leftovers = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert leftovers == [], [c.cmdline() for c in leftovers]


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
        output = _wait_for_line(process, "Ctrl-C stops everything", timeout=240)
        children = psutil.Process(process.pid).children(recursive=True)
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
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=90)

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
        state = httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=10, auth=auth).json()["state"]["type"]
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
