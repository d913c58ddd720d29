"""A lead approves a paused procedure in the real Prefect UI, in headless Chromium, and the flow completes.

The environment's identity rules are a real chain's (signatures and Slack, no typed names): the form shows the
EIP-712 Decision to sign, its fields are required (no "(Optional)"), it has no internal fields, and the lead
pastes the signature their wallet made (here: computed with the roster's devnet key, as `cast` would).

The test harness's server serves no UI, so this test starts `prefect server start` on a free port (its own
PREFECT_HOME) and runs the approval flow in a subprocess against it, with its own ops store. Chromium is
Debian's (`apt-get install chromium`), driven by Playwright's Python package: no browser download.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: apt-get install -y chromium"),
]

FLOW_CODE = """
import json, sys
sys.path.insert(0, {root!r})
from tests.fixtures.approval_fixtures import signed_proposal
from tests.test_approvals_flow import approval_test_flow
values = dict(procedure="parameter_change", subject={subject!r}, proposer="amara")
proof = signed_proposal(approval_test_flow, "parameter_change", "amara", values)
print("RESULT " + json.dumps(approval_test_flow(**values, **proof)))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: process exited {proc.returncode}\n{log.read_text()[-3000:] if log else ''}")
        try:
            value = predicate()
            if value:
                return value
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n{log.read_text()[-3000:] if log else ''}")


@pytest.fixture
def ui_server(tmp_path):
    """`prefect server start` with the UI on a free port: yields its base URL."""
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api"}
    log = tmp_path / "prefect-server.log"
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: httpx.get(f"{base}/api/health", timeout=2).status_code == 200, 240, "prefect server", proc, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_lead_approves_in_the_prefect_ui_and_the_flow_completes(ui_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from vvops.store import make_engine, migrate
    from vvops.store.models import ApprovalDecision, ApprovalRequest

    import shutil as _shutil

    import yaml

    config_dir = tmp_path / "config"   # a real environment's identity rules: no typed names
    _shutil.copytree(ROOT / "config", config_dir)
    environments = yaml.safe_load((config_dir / "environments.yaml").read_text())
    environments["environments"]["devnet"]["identity"] = {"proofs": ["eip712", "slack"], "devnet_keys": True}
    (config_dir / "environments.yaml").write_text(yaml.safe_dump(environments, sort_keys=False))
    home = tmp_path / "vvops-home"
    home.mkdir()
    store_url = f"sqlite:///{home / 'ops.db'}"
    migrate(store_url)
    subject = "browser: feeBps 30 -> 50"
    env = {**os.environ, "PREFECT_API_URL": f"{ui_server}/api", "PREFECT_HOME": str(tmp_path / "prefect-client"),
           "VVOPS_HOME": str(home), "VVOPS_STORE_URL": store_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "VVOPS_CONFIG_DIR": str(config_dir)}
    flow_log = tmp_path / "flow.log"
    flow = subprocess.Popen([sys.executable, "-c", FLOW_CODE.format(root=str(ROOT), subject=subject)], env=env,
                            cwd=ROOT, stdout=flow_log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    engine = make_engine(store_url)
    try:
        def paused_run_id():
            with engine.connect() as conn:
                run_id = conn.execute(select(ApprovalRequest.flow_run_id)
                                      .where(ApprovalRequest.subject == subject)).scalar()
            if not run_id:
                return None
            state = httpx.get(f"{ui_server}/api/flow_runs/{run_id}", timeout=5).json()["state"]
            return run_id if state and state["type"] == "PAUSED" else None

        run_id = _wait(paused_run_id, 240, "the paused approval run", flow, flow_log)
        time.sleep(1)  # the input form's schema is saved right after the PAUSED state
        from tests.fixtures.approval_fixtures import open_request_id, signed_answer

        request_id = open_request_id(engine, run_id)

        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                      "--disable-sync", "--no-first-run"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{ui_server}/runs/flow-run/{run_id}")
                resume = page.get_by_role("button", name="Resume")
                expect(resume.first).to_be_visible(timeout=60_000)
                resume.first.click()

                dialog = page.get_by_role("dialog")
                expect(dialog.get_by_text("Decide: " + subject)).to_be_visible(timeout=30_000)
                # it reads like a decision: what is signed is shown, every field is required, nothing internal
                expect(dialog.get_by_text("Sign your decision")).to_be_visible()
                expect(dialog.get_by_text('"primaryType": "Decision"').first).to_be_attached()
                assert dialog.get_by_text("(Optional)").count() == 0
                assert dialog.get_by_text("Slack", exact=False).filter(has_text="decision id").count() == 0
                assert dialog.get_by_text("Approver", exact=True).count() == 0
                decision = dialog.locator(".schema-form-property", has_text="Decision").first
                # the UI's select opens from the keyboard (a synthetic click on its button does not open it)
                decision.locator("button.p-select-button__control").first.focus()
                page.keyboard.press("ArrowDown")
                page.locator(".p-select-option").filter(has_text=re.compile(r"^\W*approve\W*$")).first.click()
                expect(decision.locator(".p-select-button__value")).to_have_text(re.compile("approve"))
                dialog.locator(".schema-form-property", has_text="Reason").first.locator("textarea").fill(
                    "checked the bounds and the timelock queue")
                # the lead's wallet signs the Decision shown above; they paste the signature
                dialog.locator(".schema-form-property", has_text="Signature").first.locator("textarea").fill(
                    signed_answer(engine, request_id, "daniel")["signature"])
                dialog.get_by_role("button", name="Submit").click()
                expect(dialog).to_be_hidden(timeout=30_000)
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                (tmp_path / "failure.html").write_text(page.content())
                dialog_html = page.locator("[role=dialog]").first.inner_html()
                form_at = max(dialog_html.find("schema-form"), 0)
                print("DIALOG FORM HTML:", dialog_html[form_at:form_at + 6000])
                raise
            finally:
                browser.close()

        assert flow.wait(120) == 0, flow_log.read_text()[-3000:]
        result = json.loads(next(line for line in flow_log.read_text().splitlines()
                                 if line.startswith("RESULT "))[len("RESULT "):])
        assert (result["approved"], result["approvers"], result["status"]) == (True, ["daniel"], "approved")
        state = httpx.get(f"{ui_server}/api/flow_runs/{run_id}", timeout=5).json()["state"]
        assert state["type"] == "COMPLETED"
        with engine.connect() as conn:
            decisions = conn.execute(select(ApprovalDecision.approver, ApprovalDecision.accepted, ApprovalDecision.source,
                                            ApprovalDecision.reason)).all()
        assert [tuple(d) for d in decisions] == [("daniel", True, "ui", "checked the bounds and the timelock queue")]
    finally:
        if flow.poll() is None:
            flow.kill()
        engine.dispose()
