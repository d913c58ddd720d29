"""Block Kit messages: golden payloads per kind, and the exact JSON the Slack stand-in receives for each."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy.orm import Session

from vvops.checks.outcome import CheckOutcome
from vvops.notify.delivery import RetryPolicy, SlackDelivery
from vvops.notify.messages import KINDS, approval_request, check_failure, escape, render, summary_failures
from vvops.store.outbox import enqueue

RUN = "http://127.0.0.1:4200/runs/flow-run/abc"
CASES = {
    "check_failure": dict(environment="devnet", check={"id": "vault.paused", "area": "contract_state", "status": "crit",
                                                       "message": "Vault is paused", "value": 1.0, "threshold": 0,
                                                       "hint": "Check the pause reason in #vv-incidents"}, run_url=RUN),
    "summary": dict(cadence="daily", environment="devnet", period="2026-11-26",
                    counts={"ok": 12, "warn": 1, "crit": 1, "error": 0},
                    failing=[{"id": "vault.paused", "status": "crit", "message": "Vault is paused"},
                             {"id": "tvl.drop", "status": "warn", "message": "TVL fell 12% in 24h"}], run_url=RUN),
    "summary_failures": dict(cadence="daily", environment="devnet",
                             failing=[{"id": "tvl.drop", "status": "warn", "message": "TVL fell 12% in 24h",
                                       "value": 12.0, "threshold": 10},
                                      {"id": "vault.paused", "status": "crit", "message": "Vault is paused",
                                       "hint": "Check the pause reason"}]),
    "approval_request": dict(request_id=42, procedure="parameter-change", subject="Set feeBps 30 → 50", risk="high",
                             proposer="dana", on_approve="The timelock schedules setFeeBps(50); it executes after 48 h",
                             ui_url="http://127.0.0.1:4200", flow_run_id="0b7c-run", required_role="ops_lead",
                             quorum=1, expires_at="2026-11-27 08:00 UTC"),
    "approval_update": dict(request_id=42, status="approved", by="erin", reason="within bounds"),
    "incident_opened": dict(key="INC-0001", title="Vault paused unexpectedly", severity="P1", type="technical",
                            commander="erin", summary="Pause observed at block 1234", mentions=["<@U0ERIN01>"]),
    "incident_updated": dict(key="INC-0001", status="mitigated", message="Deposits re-enabled", actor="erin"),
    "incident_resolved": dict(key="INC-0001", title="Vault paused unexpectedly", duration_minutes=42.0,
                              root_cause="Guardian key rotation script", resolved_by="erin"),
    "escalation_page": dict(subject="INC-0001 Vault paused unexpectedly", severity="P1", target_name="frank",
                            target_slack_id="U0FRANK1", step=2, reason="not acknowledged in 15 min",
                            ack_hint="Acknowledge in the Prefect UI"),
    "oncall_handoff": dict(rotation="sre-primary", outgoing="erin", incoming="frank",
                           at=datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc), outgoing_slack_id="U0ERIN01",
                           incoming_slack_id="U0FRANK1", notes="INC-0001 still in review"),
    "alert.firing": dict(text="[FIRING:2] P1 chain=31337\n• P1 RPC down ×3\n• P2 TVL drop",
                         summary="[FIRING:2] P1 chain=31337", severity="P1", route="critical",
                         group_key="critical:chain=31337", resolved=[], environment="devnet",
                         firing=[{"id": 1, "fingerprint": "f1", "severity": "P1", "status": "firing",
                                  "labels": {"alertname": "rpc_down"}, "summary": "RPC down", "description": "",
                                  "starts_at": "2026-11-26T06:00:00+00:00", "ends_at": None, "count": 3},
                                 {"id": 2, "fingerprint": "f2", "severity": "P2", "status": "acknowledged",
                                  "labels": {"alertname": "tvl_drop"}, "summary": "TVL <drop>", "description": "",
                                  "starts_at": "2026-11-26T06:01:00+00:00", "ends_at": None, "count": 1}]),
    "alert.acknowledged": dict(text="mei acknowledged Vault paused (via slack)", summary="acknowledged by mei",
                               alert_id=7, fingerprint="f1e2d3c4b5a6978877", by="mei", source="slack", severity="P1"),
    "audit_anchor": dict(environment="devnet", rows=128, head_hash="9f2c4e1a77b0d3e5", at="2026-11-30 09:00 UTC",
                         devnet_key=True),
    "action_item_reminder": dict(item_id=12, incident="INC-0003", title="Raise the RPC timeout alert to P1",
                                 owner="mei", owner_slack_id="U01MEITAN1", due_on="2026-11-20", days_overdue=10),
}
# where each goes: (channel, thread_key)
ROUTES = {
    "check_failure": ("#vv-alerts", None),
    "summary": ("#vv-reports", "report:daily:devnet:2026-11-26"),
    "summary_failures": ("#vv-reports", "report:daily:devnet:2026-11-26"),
    "approval_request": ("#vv-approvals", "approval:42"),
    "approval_update": ("#vv-approvals", "approval:42"),
    "incident_opened": ("#vv-incidents", "incident:INC-0001"),
    "incident_updated": ("#vv-incidents", "incident:INC-0001"),
    "incident_resolved": ("#vv-incidents", "incident:INC-0001"),
    "escalation_page": ("#vv-alerts", None),
    "oncall_handoff": ("#vv-ops", None),
    "alert.firing": ("#vv-alerts", "alert-group:ab12"),
    "alert.acknowledged": ("#vv-alerts", "alert-group:ab12"),
    "audit_anchor": ("#vv-audit", None),
    "action_item_reminder": ("#vv-ops", None),
}

EXPECTED = {'check_failure': {'text': 'CRIT: vault.paused on devnet — Vault is paused',
                   'blocks': [{'type': 'header',
                               'text': {'type': 'plain_text', 'text': 'Check crit: vault.paused', 'emoji': True}},
                              {'type': 'section', 'text': {'type': 'mrkdwn', 'text': ':red_circle: Vault is paused'}},
                              {'type': 'section',
                               'fields': [{'type': 'mrkdwn', 'text': '*Environment*\ndevnet'},
                                          {'type': 'mrkdwn', 'text': '*Area*\ncontract_state'},
                                          {'type': 'mrkdwn', 'text': '*Value*\n1'},
                                          {'type': 'mrkdwn', 'text': '*Threshold*\n0'}]},
                              {'type': 'section',
                               'text': {'type': 'mrkdwn',
                                        'text': ':bulb: *What to do:* Check the pause reason in #vv-incidents'}},
                              {'type': 'context',
                               'elements': [{'type': 'mrkdwn',
                                             'text': '<http://127.0.0.1:4200/runs/flow-run/abc|Open the run in '
                                                     'Prefect>'}]}]},
 'summary': {'text': 'Daily summary — devnet — 2026-11-26: crit (ok 12, warn 1, crit 1, error 0); failing: '
                     'vault.paused, tvl.drop',
             'blocks': [{'type': 'header',
                         'text': {'type': 'plain_text',
                                  'text': 'Daily summary — devnet — 2026-11-26',
                                  'emoji': True}},
                        {'type': 'section',
                         'text': {'type': 'mrkdwn',
                                  'text': ':red_circle: *Overall: crit*\n'
                                          ':large_green_circle: ok 12 · :large_yellow_circle: warn 1 · :red_circle: '
                                          'crit 1 · :black_circle: error 0'}},
                        {'type': 'context',
                         'elements': [{'type': 'mrkdwn', 'text': '2 failing checks: details in the thread'}]},
                        {'type': 'context',
                         'elements': [{'type': 'mrkdwn',
                                       'text': '<http://127.0.0.1:4200/runs/flow-run/abc|Open the run in '
                                               'Prefect>'}]}]},
 'summary_failures': {'text': 'Failing daily checks on devnet: vault.paused crit: Vault is paused; tvl.drop warn: '
                              'TVL fell 12% in 24h',
                      'blocks': [{'type': 'section',
                                  'text': {'type': 'mrkdwn', 'text': '*Failing daily checks on devnet*'}},
                                 {'type': 'section',
                                  'text': {'type': 'mrkdwn',
                                           'text': ':red_circle: *crit* `vault.paused` — Vault is paused\n'
                                                   ':large_yellow_circle: *warn* `tvl.drop` — TVL fell 12% in 24h '
                                                   '(value 12, threshold 10)'}},
                                 {'type': 'context',
                                  'elements': [{'type': 'mrkdwn',
                                                'text': '`vault.paused`: Check the pause reason'}]}]},
 'approval_request': {'text': 'Approval needed (high risk): Set feeBps 30 → 50 — parameter-change proposed by dana. '
                              'On approve: The timelock schedules setFeeBps(50); it executes after 48 h. Run: '
                              'http://127.0.0.1:4200/runs/flow-run/0b7c-run',
                      'blocks': [{'type': 'header',
                                  'text': {'type': 'plain_text',
                                           'text': 'Approval needed: parameter-change',
                                           'emoji': True}},
                                 {'type': 'section', 'text': {'type': 'mrkdwn', 'text': '*Set feeBps 30 → 50*'}},
                                 {'type': 'section',
                                  'fields': [{'type': 'mrkdwn', 'text': '*Risk*\n:large_orange_circle: high'},
                                             {'type': 'mrkdwn', 'text': '*Proposed by*\ndana'},
                                             {'type': 'mrkdwn', 'text': '*Needs*\n1 × ops_lead'},
                                             {'type': 'mrkdwn', 'text': '*Expires*\n2026-11-27 08:00 UTC'}]},
                                 {'type': 'section',
                                  'text': {'type': 'mrkdwn',
                                           'text': '*On approve:* The timelock schedules setFeeBps(50); it executes '
                                                   'after 48 h'}},
                                 {'type': 'actions',
                                  'block_id': 'approval:42',
                                  'elements': [{'type': 'button',
                                                'action_id': 'approval_approve',
                                                'style': 'primary',
                                                'value': '42',
                                                'text': {'type': 'plain_text', 'text': 'Approve', 'emoji': True}},
                                               {'type': 'button',
                                                'action_id': 'approval_reject',
                                                'style': 'danger',
                                                'value': '42',
                                                'text': {'type': 'plain_text', 'text': 'Reject', 'emoji': True}}]},
                                 {'type': 'context',
                                  'elements': [{'type': 'mrkdwn',
                                                'text': '<http://127.0.0.1:4200/runs/flow-run/0b7c-run|Open the '
                                                        'paused run in Prefect>'},
                                               {'type': 'mrkdwn', 'text': 'request #42'}]}]},
 'approval_update': {'text': 'Approval request #42 approved by erin: within bounds',
                     'blocks': [{'type': 'section',
                                 'text': {'type': 'mrkdwn',
                                          'text': ':white_check_mark: Request #42 *approved* by erin: within '
                                                  'bounds'}}]},
 'incident_opened': {'text': 'Incident INC-0001 opened (P1, technical): Vault paused unexpectedly — commander erin',
                     'blocks': [{'type': 'header',
                                 'text': {'type': 'plain_text',
                                          'text': 'INC-0001 P1: Vault paused unexpectedly',
                                          'emoji': True}},
                                {'type': 'section',
                                 'fields': [{'type': 'mrkdwn', 'text': '*Severity*\n:red_circle: P1'},
                                            {'type': 'mrkdwn', 'text': '*Type*\ntechnical'},
                                            {'type': 'mrkdwn', 'text': '*Commander*\nerin'},
                                            {'type': 'mrkdwn', 'text': '*Status*\nopen'}]},
                                {'type': 'section',
                                 'text': {'type': 'mrkdwn', 'text': 'Pause observed at block 1234'}},
                                {'type': 'section', 'text': {'type': 'mrkdwn', 'text': 'Paging <@U0ERIN01>'}},
                                {'type': 'context',
                                 'elements': [{'type': 'mrkdwn', 'text': 'Updates follow in this thread.'}]}]},
 'incident_updated': {'text': 'INC-0001 mitigated: Deposits re-enabled (by erin)',
                      'blocks': [{'type': 'section',
                                  'text': {'type': 'mrkdwn',
                                           'text': ':memo: *INC-0001* — *mitigated*: Deposits re-enabled'}},
                                 {'type': 'context', 'elements': [{'type': 'mrkdwn', 'text': 'by erin'}]}]},
 'incident_resolved': {'text': 'Incident INC-0001 resolved: Vault paused unexpectedly after 42 min',
                       'blocks': [{'type': 'section',
                                   'text': {'type': 'mrkdwn',
                                            'text': ':white_check_mark: *INC-0001 resolved*: Vault paused '
                                                    'unexpectedly'}},
                                  {'type': 'section',
                                   'fields': [{'type': 'mrkdwn', 'text': '*Duration*\n42 min'},
                                              {'type': 'mrkdwn', 'text': '*Resolved by*\nerin'}]},
                                  {'type': 'section',
                                   'text': {'type': 'mrkdwn',
                                            'text': '*Root cause:* Guardian key rotation script'}}]},
 'escalation_page': {'text': 'Page P1 (step 2) for frank: INC-0001 Vault paused unexpectedly — escalated because not '
                             'acknowledged in 15 min',
                     'blocks': [{'type': 'section',
                                 'text': {'type': 'mrkdwn',
                                          'text': ':red_circle: *Page (P1, step 2)* <@U0FRANK1>: INC-0001 Vault '
                                                  'paused unexpectedly'}},
                                {'type': 'context',
                                 'elements': [{'type': 'mrkdwn',
                                               'text': 'Escalated because: not acknowledged in 15 min'},
                                              {'type': 'mrkdwn', 'text': 'Acknowledge in the Prefect UI'}]}]},
 'oncall_handoff': {'text': 'On-call hand-off (sre-primary): erin → frank from 2026-11-30 09:00 UTC',
                    'blocks': [{'type': 'section',
                                'text': {'type': 'mrkdwn',
                                         'text': ':arrows_counterclockwise: *On-call hand-off — sre-primary*\n'
                                                 '<@U0ERIN01> → <@U0FRANK1>'}},
                               {'type': 'context',
                                'elements': [{'type': 'mrkdwn', 'text': 'from 2026-11-30 09:00 UTC'}]},
                               {'type': 'section',
                                'text': {'type': 'mrkdwn', 'text': '*Notes:* INC-0001 still in review'}}]},
 'alert.firing': {'text': '[FIRING:2] P1 chain=31337\n• P1 RPC down ×3\n• P2 TVL drop',
                  'blocks': [{'type': 'section',
                              'text': {'type': 'mrkdwn', 'text': ':red_circle: *FIRING* [FIRING:2] P1 chain=31337'}},
                             {'type': 'section',
                              'text': {'type': 'mrkdwn',
                                       'text': ':red_circle: *P1* RPC down ×3\n'
                                               ':large_orange_circle: *P2* TVL &lt;drop&gt; (acknowledged)'}},
                             {'type': 'context',
                              'elements': [{'type': 'mrkdwn', 'text': 'route `critical`'},
                                           {'type': 'mrkdwn', 'text': 'env `devnet`'}]}]},
            'alert.acknowledged': {'text': 'mei acknowledged Vault paused (via slack)',
                                   'blocks': [{'type': 'section',
                                               'text': {'type': 'mrkdwn',
                                                        'text': ':eyes: :red_circle: mei acknowledged Vault paused '
                                                                '(via slack)'}},
                                              {'type': 'context',
                                               'elements': [{'type': 'mrkdwn', 'text': 'alert `7`'},
                                                            {'type': 'mrkdwn', 'text': 'fingerprint `f1e2d3c4b5a6`'},
                                                            {'type': 'mrkdwn', 'text': 'via slack'},
                                                            {'type': 'mrkdwn', 'text': 'escalation stopped'}]}]},
            'audit_anchor': {'text': 'audit log head on devnet: 128 rows, hash 9f2c4e1a77b0d3e5',
                             'blocks': [{'type': 'section',
                                         'text': {'type': 'mrkdwn',
                                                  'text': ':lock: *Audit head* devnet: `128` rows, `9f2c4e1a77b0d3e5`'}},
                                        {'type': 'context',
                                         'elements': [{'type': 'mrkdwn', 'text': '2026-11-30 09:00 UTC'},
                                                      {'type': 'mrkdwn',
                                                       'text': 'verify: `vvops store verify-audit --anchor '
                                                               '128:9f2c4e1a77b0d3e5`'},
                                                      {'type': 'mrkdwn', 'text': 'devnet key (not secret)'}]}]},
            'action_item_reminder': {
                'text': 'Action item #12 (INC-0003) is 10 days overdue: Raise the RPC timeout alert to P1 (owner mei, '
                        'due 2026-11-20)',
                'blocks': [{'type': 'section',
                            'text': {'type': 'mrkdwn',
                                     'text': ':alarm_clock: <@U01MEITAN1> action item *#12* from *INC-0003* is 10 days '
                                             'overdue (due 2026-11-20):\nRaise the RPC timeout alert to P1'}},
                           {'type': 'context',
                            'elements': [{'type': 'mrkdwn',
                                          'text': 'close it: `vvops action-items done 12 --by mei --evidence LINK`'},
                                         {'type': 'mrkdwn', 'text': 'reminded daily until done'}]}]}}


def test_every_kind_has_a_golden_payload():
    alert_kinds = {"alert.repeat", "alert.resolved"}  # same builder as alert.firing
    assert set(CASES) == set(KINDS) - alert_kinds == set(EXPECTED)
    for kind in alert_kinds:
        assert render(kind, **CASES["alert.firing"])["blocks"][0]["text"]["text"].startswith(
            ":white_check_mark: *RESOLVED*" if kind == "alert.resolved" else ":red_circle: *")


@pytest.mark.parametrize("kind", sorted(CASES))
def test_message_matches_golden(kind):
    assert render(kind, **CASES[kind]) == EXPECTED[kind]


def test_slack_receives_exactly_these_payloads(store_engine, slack_standin):
    """Every kind through the outbox and the real WebClient: the stand-in gets exactly the golden JSON."""
    with Session(store_engine) as session:
        for kind in CASES:  # insertion order: parents before their replies
            channel, thread_key = ROUTES[kind]
            enqueue(session, idempotency_key=f"golden:{kind}", channel=channel, kind=kind,
                    payload=render(kind, **CASES[kind]), thread_key=thread_key)
        session.commit()
    report = SlackDelivery(store_engine, token=slack_standin.token, base_url=slack_standin.base_url, timeout_s=2,
                           policy=RetryPolicy(time_scale=0.001)).drain()
    assert len(report.sent) == len(CASES) and not report.failed
    calls = slack_standin.calls("chat.postMessage")
    assert [c.args["metadata"]["event_payload"]["key"] for c in calls] == [f"golden:{k}" for k in CASES]
    parents = {}
    for call, kind in zip(calls, CASES):
        channel, thread_key = ROUTES[kind]
        expected = {"channel": channel, "text": EXPECTED[kind]["text"], "blocks": EXPECTED[kind]["blocks"],
                    "metadata": {"event_type": "vvops_outbox", "event_payload": {"key": f"golden:{kind}"}},
                    "unfurl_links": False, "unfurl_media": False}
        if thread_key in parents:  # replies go to the parent's channel id with its ts
            expected["channel"], expected["thread_ts"] = parents[thread_key]
        assert call.args == expected, kind
        assert call.headers["content-type"].startswith("application/json")
        if thread_key and thread_key not in parents:
            posted = next(m for m in slack_standin.all_messages() if m["metadata"]["event_payload"]["key"] == f"golden:{kind}")
            parents[thread_key] = (slack_standin.channel_id(channel), posted["ts"])
    assert len(parents) == 4


def test_user_text_is_escaped_and_cannot_mention_or_link():
    message = check_failure(environment="devnet", check={"id": "x", "status": "warn",
                                                         "message": "<!channel> see <http://evil|here> & more"})
    section = message["blocks"][1]["text"]["text"]
    assert "<!channel>" not in section and "&lt;!channel&gt;" in section and "&amp; more" in section
    assert escape("a<b>&c") == "a&lt;b&gt;&amp;c"


def test_approval_buttons_and_run_link():
    message = approval_request(request_id=7, procedure="upgrade-rollout", subject="Upgrade vault to V2", risk="critical",
                               proposer="dana", on_approve="upgradeTo(V2) through the timelock",
                               ui_url="http://ui.example/", flow_run_id="run-123", mentions=["<@U0LEAD001>"])
    actions = next(b for b in message["blocks"] if b["type"] == "actions")
    assert [(e["action_id"], e["value"], e["style"]) for e in actions["elements"]] == [
        ("approval_approve", "7", "primary"), ("approval_reject", "7", "danger")]
    assert "http://ui.example/runs/flow-run/run-123" in json.dumps(message)
    assert message["blocks"][1]["text"]["text"] == "<@U0LEAD001> your decision is needed"


def test_long_lists_are_cut_to_slack_limits():
    failing = [CheckOutcome(id=f"check.{i:03d}", area="a", status="crit", message="x" * 200) for i in range(60)]
    message = summary_failures(cadence="daily", environment="devnet", failing=failing)
    assert len(message["blocks"]) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in message["blocks"] if "text" in b)
    assert "… and 40 more" in json.dumps(message, ensure_ascii=False)
    assert len(message["text"]) <= 4000


def test_unknown_kind_names_the_known_ones():
    with pytest.raises(KeyError, match="known: action_item_reminder, alert.acknowledged, alert.firing"):
        render("nope")


def test_standin_speaks_like_slack(slack_standin, slack_client):
    """auth.test, bearer-token check, chat.update and files_upload_v2 (for plots later) against the stand-in."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    assert slack_client.auth_test()["user_id"] == "U0VVOPS"
    with pytest.raises(SlackApiError) as info:
        WebClient(token="xoxb-not-the-token", base_url=slack_standin.base_url, retry_handlers=[]).auth_test()
    assert info.value.response["error"] == "invalid_auth"
    posted = slack_client.chat_postMessage(channel="#vv-ops", text="v1")
    assert posted["channel"] == "C0000OPS" and posted["ts"]
    slack_client.chat_update(channel="C0000OPS", ts=posted["ts"], text="v2")
    assert slack_standin.channel_messages("C0000OPS")[0]["text"] == "v2"
    upload = slack_client.files_upload_v2(channel="C000REPRT", content=b"\x89PNG...", filename="tvl.png", title="TVL",
                                          initial_comment="TVL over 7 days", thread_ts=None)
    assert upload["file"]["title"] == "TVL" and slack_standin.uploads[upload["file"]["id"]] == b"\x89PNG..."
    assert [c.api for c in slack_standin.calls()][-3:] == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    with pytest.raises(SlackApiError) as info:
        slack_client.chat_postMessage(channel="#nowhere", text="x")
    assert info.value.response["error"] == "channel_not_found"
