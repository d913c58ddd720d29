"""The public status page: states from evidence only (no data is never 'operational'), uptime from measured
outages, and a real browser following an incident from opened to resolved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from vvops.config.status_page_schema import StatusComponent, StatusPageFile
from vvops.status_page.model import CheckRow, IncidentRow, current_state, page_snapshot, uptime

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
VAULT = StatusComponent(name="Vault contracts", checks=("protocol.contract_state",), contracts=("vault",),
                        incident_types=("security",))
API = StatusComponent(name="API", checks=("infrastructure.http_endpoints",))
PAGE = StatusPageFile(title="Test status", components=(VAULT, API), uptime_days=7)
STALE = timedelta(hours=26)


def _incident(severity="P1", status="open", type_="technical", contracts=("vault",), opened=NOW - timedelta(hours=2),
              resolved=None, drill=False) -> IncidentRow:
    return IncidentRow(key="INC-0001", severity=severity, type=type_, status=status, opened_at=opened,
                       resolved_at=resolved, contracts=contracts, is_drill=drill)


def test_no_evidence_is_no_data_never_operational():
    assert current_state(VAULT, [], [], now=NOW, stale_after=STALE)[0] == "no_data"
    old = [CheckRow("protocol.contract_state", "ok", NOW - timedelta(days=3))]
    assert current_state(VAULT, old, [], now=NOW, stale_after=STALE)[0] == "no_data"
    snapshot = page_snapshot(PAGE, [], [], now=NOW, environment="devnet")
    assert snapshot["overall"] == "no_data"


def test_check_results_set_the_state_by_prefix_and_the_worst_wins():
    rows = [CheckRow("infrastructure.http_endpoints.api", "ok", NOW - timedelta(hours=1)),
            CheckRow("infrastructure.http_endpoints.docs", "warn", NOW - timedelta(hours=1))]
    state, reasons = current_state(API, rows, [], now=NOW, stale_after=STALE)
    assert state == "degraded_performance" and reasons == ["check infrastructure.http_endpoints.docs: warn"]
    rows.append(CheckRow("infrastructure.http_endpoints.api", "crit", NOW - timedelta(minutes=5)))
    assert current_state(API, rows, [], now=NOW, stale_after=STALE)[0] == "partial_outage"
    could_not_run = [CheckRow("infrastructure.http_endpoints.api", "error", NOW)]
    assert current_state(API, could_not_run, [], now=NOW, stale_after=STALE)[0] == "no_data"


def test_open_incidents_affect_the_components_they_name_and_drills_never_do():
    ok = [CheckRow("protocol.contract_state", "ok", NOW - timedelta(hours=1))]
    assert current_state(VAULT, ok, [_incident("P0")], now=NOW, stale_after=STALE)[0] == "major_outage"
    assert current_state(API, [], [_incident("P0")], now=NOW, stale_after=STALE)[0] == "no_data"
    by_type = _incident("P1", type_="security", contracts=())
    assert current_state(VAULT, ok, [by_type], now=NOW, stale_after=STALE)[0] == "partial_outage"
    assert current_state(VAULT, ok, [_incident("P0", drill=True)], now=NOW, stale_after=STALE)[0] == "operational"
    resolved = _incident("P0", status="resolved", resolved=NOW - timedelta(hours=1))
    assert current_state(VAULT, ok, [resolved], now=NOW, stale_after=STALE)[0] == "operational"


def test_uptime_counts_incident_and_crit_time_and_says_no_data_without_evidence():
    rows = [CheckRow("protocol.contract_state", "ok", NOW - timedelta(days=6)),
            CheckRow("protocol.contract_state", "crit", NOW - timedelta(days=2)),
            CheckRow("protocol.contract_state", "ok", NOW - timedelta(days=2) + timedelta(hours=6))]
    incident = _incident("P0", status="resolved", opened=NOW - timedelta(days=1), resolved=NOW - timedelta(hours=18))
    pct, bars = uptime(VAULT, rows, [incident], now=NOW, days=7)
    evidence_window = (NOW - datetime.combine((NOW - timedelta(days=6)).date(), datetime.min.time(), tzinfo=timezone.utc))
    expected = 100 * (1 - (6 + 6) * 3600 / evidence_window.total_seconds())
    assert pct == pytest.approx(expected, abs=0.01)
    assert [b["date"] for b in bars][::6] == ["2026-11-24", "2026-11-30"]
    assert [b["state"] for b in bars] == ["operational", "no_data", "no_data", "no_data",
                                          "major_outage", "major_outage", "no_data"]  # nothing measured today
    assert bars[4]["down_minutes"] == 360.0
    api_pct, api_bars = uptime(API, rows, [incident], now=NOW, days=7)
    assert api_pct is None and {b["state"] for b in api_bars} == {"no_data"}


def test_config_check_names_a_component_check_that_does_not_exist(tmp_path):
    import shutil

    from vvops.config import check_config
    from vvops.paths import REPO_ROOT

    config = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "config", config)
    page = config / "status_page.yaml"
    page.write_text(page.read_text().replace("checks: [infrastructure.http_endpoints]",
                                             "checks: [infrastructure.http_endpoint]"))
    problems = check_config(config, "devnet")
    assert any(p.startswith("status_page.yaml: components[2].checks[0]: no check is named 'infrastructure.http_endpoint'")
               for p in problems), problems


CHROMIUM = "/usr/bin/chromium"


def test_the_served_page_is_never_a_stale_304_and_nothing_outside_status_is_served(tmp_path):
    """A page rewritten within the same second must reach a reader who reloads: no 304 from Last-Modified."""
    import functools
    import http.server
    import threading

    from vvops.status_page.cli import _StatusHandler

    (tmp_path / "index.html").write_text("<p>v1</p>")
    (tmp_path.parent / "secret.txt").write_text("no")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_StatusHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        first = httpx.get(f"{base}/status/")
        assert first.status_code == 200 and first.headers["cache-control"] == "no-cache"
        (tmp_path / "index.html").write_text("<p>v2</p>")  # same second: Last-Modified unchanged
        again = httpx.get(f"{base}/status/", headers={"If-Modified-Since": first.headers["last-modified"]})
        assert again.status_code == 200 and again.text == "<p>v2</p>"
        head = httpx.head(f"{base}/status/index.html")
        assert head.status_code == 200 and head.content == b""
        assert httpx.get(f"{base}/").status_code == 302
        assert httpx.get(f"{base}/secret.txt").status_code == 404
        assert httpx.get(f"{base}/status/../secret.txt").status_code == 404
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
@pytest.mark.timeout(600)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: apt-get install -y chromium")
def test_a_browser_sees_an_incident_appear_get_updates_and_resolve(ops_flows, quiet_store, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from tasks.incidents import add_event, update_incident
    from tasks.status_page import publish_status_page
    from tasks.store import open_incident
    from vvops.devnet import free_port
    from vvops.status_page import default_site_dir

    key = open_incident.fn(title="internal: drain from 0xbad on the vault", incident_type="security", severity="P0",
                           commander="amara", opened_by="watcher", data={"contract": "vault"})
    publish_status_page.fn("devnet")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "vvops.cli", "status-page", "serve", "--port", str(port)],
                              env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}/status/"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(base, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        publish_status_page.fn("devnet")  # `serve` rebuilt it on start: back to this test's view
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 1400})
                page.goto(base)
                card = page.locator(f"#incident-{key}")
                expect(card).to_have_attribute("data-status", "investigating")
                expect(card).to_contain_text("Major outage affecting Vault contracts")
                expect(page.locator('[data-component="Vault contracts"]')).to_have_attribute("data-state", "major_outage")
                expect(page.locator("#overall")).to_have_text("Major outage")
                assert "0xbad" not in page.content()  # internal titles never reach the public page
                page.screenshot(path=str(tmp_path / "status-open.png"), full_page=True)

                update_incident.fn(key=key, status="mitigated", mitigated_at=datetime.now(timezone.utc))
                add_event.fn(key=key, kind="public_statement", message="Deposits are paused while we investigate.",
                             data={"approved_by": ["kwame", "erin"], "status": "identified"})
                publish_status_page.fn("devnet")
                page.reload()
                expect(card).to_have_attribute("data-status", "monitoring")
                expect(card).to_contain_text("Deposits are paused while we investigate.")

                update_incident.fn(key=key, status="resolved", resolved_at=datetime.now(timezone.utc))
                publish_status_page.fn("devnet")
                page.reload()
                expect(card).to_have_attribute("data-status", "resolved")
                expect(card).to_contain_text("This incident has been resolved.")
                expect(page.locator('[data-component="Vault contracts"]')).not_to_have_attribute("data-state",
                                                                                                 "major_outage")
                page.screenshot(path=str(tmp_path / "status-resolved.png"), full_page=True)
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=15)
    site = default_site_dir("devnet")
    feed = (site / "history.atom").read_text()
    assert f"urn:vvops:incident:{key}" in feed and "[resolved]" in feed
    snapshot = json.loads((site / "status.json").read_text())
    assert next(i for i in snapshot["incidents"] if i["id"] == key)["status"] == "resolved"
