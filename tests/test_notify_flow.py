"""The notify tasks and the slack-outbox-drain flow under the Prefect test server (no token, stand-in, outage)."""

from __future__ import annotations

import uuid

import pytest
from prefect import flow
from sqlalchemy import select
from sqlalchemy.orm import Session

from tasks.notify import BASE_URL_ENV, notify, notify_summary, slack_outbox_drain
from vvops.notify.delivery import RetryPolicy
from vvops.store.models import NotificationOutbox

FAST = RetryPolicy(time_scale=0.001)


@flow(name="notify-test")
def _notify_flow(tag: str, deliver: bool = True) -> dict:
    return notify(kind="incident_opened", channel_purpose="incidents", thread_key=f"incident:{tag}",
                  idempotency_key=f"{tag}:opened", environment="devnet", deliver=deliver, policy=FAST,
                  payload={"key": tag, "title": "Vault paused unexpectedly", "severity": "P1", "type": "technical",
                           "commander": "erin"})


@flow(name="summary-test")
def _summary_flow(tag: str) -> list:
    return notify_summary(cadence="daily", environment="devnet", period=tag, counts={"ok": 3, "crit": 1},
                          failing=[{"id": "vault.paused", "status": "crit", "message": "Vault is paused"}])


def _row(engine, key):
    with Session(engine) as session:
        return session.scalars(select(NotificationOutbox).where(NotificationOutbox.idempotency_key == key)).one()


def _artifacts(flow_run_id):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))


@pytest.fixture
def no_slack(monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv(BASE_URL_ENV, raising=False)


@pytest.fixture
def slack_on(monkeypatch, slack_standin):
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack_standin.token)
    monkeypatch.setenv(BASE_URL_ENV, slack_standin.base_url)
    return slack_standin


def _tag() -> str:
    return f"INC-{uuid.uuid4().hex[:6].upper()}"


def test_without_token_messages_are_held_and_shown_as_an_artifact(ops_flows, ops_store_engine, no_slack):
    tag = _tag()
    state = _notify_flow(tag, return_state=True)
    assert state.is_completed()
    assert state.result()["status"] == "held"
    row = _row(ops_store_engine, f"{tag}:opened")
    assert (row.status, row.slack_ts, row.channel) == ("pending", None, "#vv-incidents")
    [artifact] = _artifacts(state.state_details.flow_run_id)
    assert artifact.type == "markdown"
    assert f"Incident {tag} opened (P1, technical): Vault paused unexpectedly — commander erin" in artifact.data
    assert "#vv-incidents" in artifact.data and "no Slack bot token" in artifact.data
    assert '"type": "header"' in artifact.data  # the exact payload is in the artifact


def test_with_token_summary_and_failures_thread(ops_flows, ops_store_engine, slack_on):
    tag = f"2026-{uuid.uuid4().hex[:6]}"
    state = _summary_flow(tag, return_state=True)
    assert state.is_completed()
    summary, failures = state.result()
    assert summary["status"] == failures["status"] == "sent"
    posts = {c.args["metadata"]["event_payload"]["key"]: c.args for c in slack_on.calls("chat.postMessage")}
    top = posts[f"report:daily:devnet:{tag}:summary"]
    reply = posts[f"report:daily:devnet:{tag}:failures"]
    assert top["channel"] == "#vv-reports" and "thread_ts" not in top
    assert reply["thread_ts"] == summary["slack_ts"] and reply["channel"] == "C000REPRT"
    assert "vault.paused" in reply["text"]
    assert _artifacts(state.state_details.flow_run_id) == []


def test_slack_down_does_not_fail_the_flow_and_the_drain_delivers_later(ops_flows, ops_store_engine, slack_on, caplog):
    tag = _tag()
    slack_on.inject("down", count=10_000)
    state = _notify_flow(tag, return_state=True)
    assert state.is_completed()
    assert state.result()["status"] == "pending"
    assert "Slack delivery delayed" in caplog.text
    slack_on.clear_faults()
    drained = slack_outbox_drain(environment="devnet", wait_s=0.0)
    assert drained["enabled"] is True
    assert _row(ops_store_engine, f"{tag}:opened").status == "sent"
    keys = [m["metadata"]["event_payload"]["key"] for m in slack_on.all_messages() if m.get("metadata")]
    assert keys.count(f"{tag}:opened") == 1


def test_drain_fails_clearly_on_a_missing_channel(ops_flows, ops_store_engine, slack_on):
    tag = _tag()
    del slack_on.channels["C0000INC"]  # the bot's #vv-incidents is gone
    result = _notify_flow(tag, deliver=False)
    assert result["status"] == "pending"
    state = slack_outbox_drain(environment="devnet", return_state=True)
    assert state.is_failed()
    message = str(state.result(raise_on_failure=False))
    assert "#vv-incidents" in message and "channel_not_found" in message and slack_on.token not in message
    assert _row(ops_store_engine, f"{tag}:opened").status == "failed"
