"""Alertmanager interop against Debian's prometheus-alertmanager on 127.0.0.1: our alerts reach it through the
v2 API (and resolve there), and its webhook opens our alerts and starts incident-response like our own P1s."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import httpx
import pytest

from tests.fixtures.prometheus_fixtures import AlertmanagerServer
from tests.watcher_helpers import wait_until
from vvops.alerting.rules import AlertInstance
from vvops.alerting.service import AlertService
from vvops.config.alerting_schema import AlertmanagerReceive, AlertmanagerSend
from vvops.devnet import free_port
from vvops.observability.alertmanager import AlertmanagerPusher, WebhookReceiver
from vvops.observability.exporter import WEBHOOK_PATH, exporter_app, ops_registry, run_in_thread
from vvops.store import make_engine, session_scope
from vvops.store.models import Alert

TOKEN = "am-webhook-test-token"


def _now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
def ops(sqlite_store_url):
    from vvops.config import load_config

    engine = make_engine(sqlite_store_url)
    cfg = load_config(environment="devnet")
    yield engine, cfg
    engine.dispose()


def _fire(service, name="tvl_drop", severity="P0", **labels):
    inst = AlertInstance(rule=name, severity=severity,
                         labels={"alertname": name, "severity": severity, "environment": "devnet", "chain": "devnet",
                                 "source": "watcher", **labels},
                         annotations={"summary": f"{name} on devnet", "tx_hash": "0x" + "ab" * 32})
    service.process_firing([inst], _now(), environment="devnet")
    return inst


def test_our_alerts_reach_alertmanager_and_resolve_there(ops, tmp_path):
    engine, cfg = ops
    am = AlertmanagerServer(tmp_path)
    try:
        service = AlertService(engine, cfg)
        fired = _fire(service)
        pusher = AlertmanagerPusher(engine, AlertmanagerSend(url=am.url, resend_interval="2s",
                                                             generator_url="http://127.0.0.1:4200"))
        assert pusher.push_once() == 1
        (got,) = wait_until(lambda: am.alerts(alertname="tvl_drop"), 10, what="the alert in Alertmanager")
        assert got["labels"]["severity"] == "P0" and got["labels"]["chain"] == "devnet"
        assert got["labels"]["origin"] == "vvops"
        assert got["annotations"]["summary"] == "tvl_drop on devnet"
        assert "_vvops" not in got["annotations"]
        assert got["generatorURL"].startswith("http://127.0.0.1:4200/")
        assert got["status"]["state"] == "active"

        service.resolve(fired.fingerprint, now=_now(), by="mei", reason="handled")
        assert pusher.push_once() == 1   # resolved with its endsAt
        wait_until(lambda: not am.alerts(alertname="tvl_drop"), 10, what="the alert resolved in Alertmanager")
    finally:
        am.stop()


def test_instead_mode_leaves_notifications_to_alertmanager(ops, config_copy):
    engine, _ = ops
    quiet = AlertService(engine, config_copy.set("alerting.yaml", "alertmanager.send",
                                                 {"url": "http://127.0.0.1:9", "mode": "instead"}).load())
    inst = AlertInstance(rule="tvl_drop", severity="P0",
                         labels={"alertname": "tvl_drop", "severity": "P0", "environment": "devnet", "chain": "devnet"})
    assert quiet.process_firing([inst], _now(), environment="devnet") == []
    with session_scope(engine) as s:
        assert s.query(Alert).count() == 1   # stored all the same


@pytest.fixture
def webhook_endpoint(ops):
    engine, cfg = ops
    events: list[dict] = []
    notified: list[dict] = []
    receiver = WebhookReceiver(AlertService(engine, cfg), AlertmanagerReceive(bearer_token_env="VV_TEST_AM_TOKEN"),
                               environment="devnet", notify=notified.extend, emit=lambda **e: events.append(e),
                               environ={"VV_TEST_AM_TOKEN": TOKEN})
    port = free_port()
    server, thread = run_in_thread(exporter_app(ops_registry(engine), webhook=receiver), "127.0.0.1", port)
    wait_until(lambda: _healthy(port), 15, what="the exporter")
    yield {"url": f"http://127.0.0.1:{port}{WEBHOOK_PATH}", "engine": engine, "events": events, "notified": notified,
           "port": port}
    server.should_exit = True
    thread.join(10)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _stored(engine, rule):
    with session_scope(engine) as s:
        return [(a.status, a.severity, dict(a.labels)) for a in s.query(Alert).filter(Alert.rule == rule)]


def test_alertmanager_webhook_opens_and_resolves_our_alerts(webhook_endpoint, tmp_path):
    am = AlertmanagerServer(tmp_path, webhook_url=webhook_endpoint["url"], bearer_token=TOKEN)
    engine = webhook_endpoint["engine"]
    try:
        node_down = {"labels": {"alertname": "NodeDown", "instance": "db-1:9100", "job": "node",
                                "severity": "critical"},
                     "annotations": {"summary": "db-1 is down"}, "generatorURL": "http://prometheus/graph"}
        am.post_alerts([node_down])   # as the team's Prometheus would
        wait_until(lambda: _stored(engine, "NodeDown"), 20, what="NodeDown in our store")
        ((status, severity, labels),) = _stored(engine, "NodeDown")
        assert (status, severity) == ("firing", "P1")
        assert labels["source"] == "alertmanager" and labels["am_severity"] == "critical"
        assert labels["instance"] == "db-1:9100" and labels["environment"] == "devnet"
        (event,) = webhook_endpoint["events"]
        assert event["event"] == "vv.alert.p1"                      # what the incident-response automation expects
        assert event["resource"]["vv.chain"] == "devnet" and event["resource"]["vv.summary"] == "db-1 is down"
        assert webhook_endpoint["notified"], "routed to Slack through our alerting like our own alerts"

        am.post_alerts([{**node_down, "endsAt": datetime.now(timezone.utc).isoformat()}])
        wait_until(lambda: _stored(engine, "NodeDown")[0][0] == "resolved", 20, what="NodeDown resolved")
        assert len(webhook_endpoint["events"]) == 1
    finally:
        am.stop()


def test_webhook_refuses_bad_requests_with_one_line(webhook_endpoint):
    url = webhook_endpoint["url"]
    r = httpx.post(url, json={"version": "4", "alerts": []})
    assert r.status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.post(url, content=b"{not json", headers=auth)
    assert r.status_code == 400 and r.json() == {"error": "payload is not JSON"}
    r = httpx.post(url, json={"version": "3", "alerts": []}, headers=auth)
    assert r.status_code == 400 and "version 4" in r.json()["error"]
    r = httpx.post(url, json={"version": "4", "alerts": [{"status": "firing", "labels": {"job": "x"}}]}, headers=auth)
    assert r.status_code == 400 and "alertname" in r.json()["error"]
    # our own alerts coming back through the team's Alertmanager are not taken in twice
    own = {"status": "firing", "labels": {"alertname": "tvl_drop", "origin": "vvops", "severity": "P0"}}
    r = httpx.post(url, json={"version": "4", "alerts": [own]}, headers=auth)
    assert r.status_code == 200 and r.json()["firing"] == 0
    assert json.loads(r.text)["new"] == 0


def test_p1_from_alertmanager_starts_incident_response(prefect_api, ops):
    """The same automation as the watcher's P0/P1 (Prefect test server; the run is created, not executed)."""
    from deployments.automations import ensure_automations
    from flows.incident_response import incident_response
    from tests.test_automations import _runs

    env = "amtest"
    deployment = incident_response.to_deployment(name=env, tags=["procedure", "incident"]).apply()
    ensure_automations(env)
    engine, cfg = ops
    receiver = WebhookReceiver(AlertService(engine, cfg), AlertmanagerReceive(), environment=env)
    body = {"version": "4", "status": "firing", "externalURL": "http://am:9093",
            "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull", "severity": "critical",
                                                       "instance": "node-2"},
                        "annotations": {"summary": "disk full on node-2"}, "startsAt": "2026-11-30T10:00:00Z"}]}
    status, answer = receiver.handle(json.dumps(body).encode(), None)
    assert (status, answer["new"]) == (200, 1)
    deadline = time.monotonic() + 20
    runs = []
    while time.monotonic() < deadline and not runs:
        runs = _runs(deployment)
        time.sleep(0.5)
    assert len(runs) == 1
    params = runs[0].parameters
    assert params["severity"] == "P1" and params["title"] == "disk full on node-2"
    assert params["alert"]["rule"] == "DiskFull"
