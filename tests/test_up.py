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


def test_up_serves_every_deployment_on_its_schedule_and_sigint_stops_everything(tmp_path):
    port, anvil_port = free_port(), free_port()
    env = {**os.environ, "VVOPS_HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    for key in ("PREFECT_API_URL", "PREFECT_HOME", "VVOPS_STORE_URL"):
        env.pop(key, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "vvops.cli", "up", "--port", str(port), "--anvil-port", str(anvil_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        output = _wait_for_line(process, "Ctrl-C stops everything", timeout=180)
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
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)

    assert process.returncode == 0, rest
    assert "stopped" in rest
    assert children, "vvops up started no child processes"
    leftovers = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert leftovers == [], [c.cmdline() for c in leftovers]


def _wait_for_deployments(api: str, *, expected: int, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        deployments = httpx.post(f"{api}/deployments/filter", json={}, timeout=5).json()
        if len(deployments) >= expected or time.monotonic() > deadline:
            return deployments
        time.sleep(0.5)
