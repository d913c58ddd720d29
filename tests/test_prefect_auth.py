"""The control plane is locked (issue 13 item 2): the Prefect server `vvops up` starts requires the basic-auth
string every client we start sends; an unauthenticated call — the PATCH that rewrote the store block, the
`include_secrets` filter — is refused. Against a real `prefect server start`."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import httpx
import pytest

from vvops.devnet import free_port

AUTH = "ops:auth-string-of-this-test-7f3a9c"


@pytest.fixture
def locked_server(tmp_path, monkeypatch, ops_home):
    from vvops.services import Supervisor, prefect_api_url, start_prefect_server

    monkeypatch.setenv("PREFECT_API_AUTH_STRING", AUTH)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    port = free_port()
    supervisor = Supervisor(log_dir=tmp_path / "logs")
    try:
        start_prefect_server(supervisor, port=port, timeout=300)
        yield prefect_api_url(port)
    finally:
        supervisor.stop_all()


def _vvops(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vvops.cli", *args], capture_output=True, text=True, timeout=240,
                          env=env)


@pytest.mark.timeout(1200)  # a real server start plus two CLI processes: minutes on a loaded 2-core machine
def test_unauthenticated_calls_are_refused_and_our_clients_get_in(locked_server, ops_home):
    api = locked_server
    anyone = httpx.Client(base_url=api, timeout=30)
    assert anyone.get("/health").status_code == 200                         # probes stay open
    assert anyone.post("/block_documents/filter", json={"include_secrets": True}).status_code == 401
    assert anyone.patch(f"/block_documents/{uuid.uuid4()}", json={"data": {"url": "sqlite:///evil.db"}}).status_code == 401
    assert anyone.post("/flow_runs/filter", json={}).status_code == 401
    wrong = httpx.Client(base_url=api, timeout=30, auth=httpx.BasicAuth("ops", "guess"))
    assert wrong.post("/flows/filter", json={}).status_code == 401

    env = {**os.environ, "PREFECT_API_URL": api, "VVOPS_HOME": str(ops_home)}
    registered = _vvops("blocks", "register", "-e", "devnet", env=env)          # a client we start: authenticated
    assert registered.returncode == 0, registered.stdout + registered.stderr
    names = [d["name"] for d in httpx.post(f"{api}/block_documents/filter", json={}, timeout=30,
                                           auth=httpx.BasicAuth(*AUTH.split(":", 1))).json()]
    assert {"vv-slack", "vv-store"} <= set(names)

    env.pop("PREFECT_API_AUTH_STRING")
    refused = _vvops("blocks", "register", "-e", "devnet", env=env)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "the Prefect API refused us (401 Unauthorized)" in refused.stderr, refused.stderr


def test_outside_the_devnet_up_refuses_to_start_without_the_auth_string(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_AUTH_STRING", "VVOPS_AUDIT_KEY",
                                                           "PREFECT_API_KEY")}
    result = _vvops("up", "-e", "mainnet", "--no-devnet", "--port", str(free_port()),
                    env={**env, "VVOPS_HOME": str(tmp_path), "VVOPS_AUDIT_KEY": "k" * 32})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "$PREFECT_API_AUTH_STRING is not set" in result.stderr, result.stderr
    no_key = _vvops("up", "--profile", "production", "--port", str(free_port()),
                    env={**env, "VVOPS_HOME": str(tmp_path), "PREFECT_API_AUTH_STRING": AUTH})
    assert no_key.returncode == 1 and "$VVOPS_AUDIT_KEY is not set" in no_key.stderr, no_key.stderr
