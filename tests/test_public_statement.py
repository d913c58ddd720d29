"""Public statements: drafted from the incident's public facts, edited by a person, approved on their exact text
(support; security operations too for security incidents), then published to the status page, a webhook (stand-in
server) and the partners' inboxes (a real SMTP server, aiosmtpd); nothing goes out unapproved."""

from __future__ import annotations

import email
import email.policy
import json
import time

import pytest
from sqlalchemy import select

from tests.fixtures.comms_fixtures import answer as _answer
from tests.fixtures.comms_fixtures import paused_run_of
from vvops.communications.statements import PublicFacts, draft, recipients, x_post
from vvops.config.communications_schema import Contact
from vvops.store.models import AuditEntry, IncidentEvent, StatementNotification

pytestmark = [pytest.mark.prefect]

FACTS = PublicFacts(key="INC-0042", severity="P0", incident_type="security", impact="major_outage",
                    components=("Vault contracts",), started="2026-11-30T10:00:00+00:00", resolved=None)


def test_a_draft_says_only_public_facts_and_fits_the_templates_fields():
    text = draft("We are investigating a {impact} affecting {components}. Next update within {next_update_minutes} "
                 "minutes.", FACTS, details="", next_update_minutes=30)
    assert text == "We are investigating a major outage affecting Vault contracts. Next update within 30 minutes."
    summary = draft("Post-incident summary for the {impact} ({started} to {resolved}).", FACTS, details="",
                    next_update_minutes=30)
    assert summary == "Post-incident summary for the major outage (2026-11-30 10:00 UTC to ongoing)."
    post = x_post("word " * 80, link="https://status.example")
    assert len(post) <= 280 and post.endswith(" https://status.example")


def test_contacts_are_told_by_severity_and_type_each_address_once():
    contacts = (Contact(name="Exchanges", kind="exchange", emails=("a@x.example", "b@x.example"),
                        severities=("P0",), incident_types=("security",)),
                Contact(name="Partners", kind="partner", emails=("b@x.example", "c@y.example"), severities=("P1",)))
    assert recipients(contacts, severity="P0", incident_type="security") == [("Exchanges", "a@x.example"),
                                                                            ("Exchanges", "b@x.example")]
    assert recipients(contacts, severity="P0", incident_type="technical") == []
    assert recipients(contacts, severity="P1", incident_type="technical") == [("Partners", "b@x.example"),
                                                                             ("Partners", "c@y.example")]


def _paused_statement_run(after_start: float) -> str:
    return paused_run_of("public-statement", after_start)


@pytest.mark.timeout(600)
def test_a_security_statement_is_edited_approved_by_support_and_security_then_published(
        ops_flows, ops_store_engine, quiet_store, flow_in_thread, statement_channels):
    from flows.public_statement import public_statement
    from tasks.store import open_incident

    hooks, mails = statement_channels
    key = open_incident.fn(title="internal: exploit tx 0xdead on the vault", incident_type="security",
                           severity="P0", commander="amara", opened_by="watcher", data={"contract": "vault"})
    started = time.time()
    thread = flow_in_thread(public_statement, incident_key=key, requested_by="kwame", kind="initial",
                            environment="devnet", approval_poll_interval=0.5)
    run_id = _paused_statement_run(started)
    edit_key = thread.wait_paused(run_id)
    edited = "We are investigating a major outage affecting Vault contracts. Deposits are paused."
    _answer(run_id, body=edited)
    support_key = thread.wait_paused(run_id, after=edit_key)
    assert not hooks and not mails  # nothing public before every approval
    _answer(run_id, decision="approve", approver="sofia", reason="wording ok")
    thread.wait_paused(run_id, after=support_key)
    assert not hooks and not mails
    _answer(run_id, decision="approve", approver="oscar", reason="no exploit details")
    result = thread.join(timeout=120)

    assert result["published"] is True and result["approved_by"] == ["sofia", "oscar"]
    assert hooks == [{"content": edited, "allowed_mentions": {"parse": []}}]
    assert sorted(rcpt for mail in mails for rcpt in mail.rcpt_tos) == [
        "incidents@regulator.example", "listings-ops@exchange.example", "oncall@partner-a.example",
        "oncall@partner-b.example"]
    message = email.message_from_bytes(mails[0].content, policy=email.policy.default)
    assert message.get_content().strip() == edited
    assert result["x_draft"] == edited and "0xdead" not in json.dumps(result)
    with ops_store_engine.connect() as conn:
        statement = conn.execute(select(IncidentEvent.message, IncidentEvent.data).join(IncidentEvent.incident)
                                 .where(IncidentEvent.kind == "public_statement")
                                 .order_by(IncidentEvent.id.desc())).first()
        published = conn.execute(select(AuditEntry.details).where(AuditEntry.action == "statement.published",
                                                                  AuditEntry.subject == key)).scalar_one()
    assert statement.message == edited and statement.data["approved_by"] == ["sofia", "oscar"]
    assert published["delivered"]["webhooks"] == {"community-discord": "HTTP 204"}
    # one message per address (partners never see each other's addresses), and who was told when is on record
    assert sorted(tuple(mail.rcpt_tos) for mail in mails) == [("incidents@regulator.example",),
                                                              ("listings-ops@exchange.example",),
                                                              ("oncall@partner-a.example",),
                                                              ("oncall@partner-b.example",)]
    with ops_store_engine.connect() as conn:
        told = conn.execute(select(StatementNotification).where(StatementNotification.incident_key == key)).all()
    assert sorted((t.channel, t.contact_kind, t.recipient, t.status) for t in told) == [
        ("email", "exchange", "listings-ops@exchange.example", "sent"),
        ("email", "partner", "oncall@partner-a.example", "sent"),
        ("email", "partner", "oncall@partner-b.example", "sent"),
        ("email", "regulator", "incidents@regulator.example", "sent"),
        ("webhook", "discord", "community-discord", "sent")]
    assert {t.statement_sha256 for t in told} == {published["sha256"]} and all(t.notified_at for t in told)
    # `vvops notified --incident KEY`; no capsys here: Prefect's console handler, set up during this test's first
    # flow run, would keep capsys's stream and fail on every later log line once the test ends
    import argparse
    import contextlib
    import io

    from vvops.communications.cli import cmd_notified

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cmd_notified(argparse.Namespace(incident=key, announcements=False, json=False)) == 0
    listed = out.getvalue().splitlines()
    assert len(listed) == 5 and all(line.endswith(f"sha256 {published['sha256'][:12]}") for line in listed)
    assert any("email" in line and "regulator" in line and "incidents@regulator.example" in line and " sent " in line
               for line in listed)


@pytest.mark.timeout(600)
def test_a_rejected_statement_is_never_published(ops_flows, ops_store_engine, quiet_store, flow_in_thread,
                                                 statement_channels):
    from flows.public_statement import public_statement
    from tasks.store import open_incident

    hooks, mails = statement_channels
    key = open_incident.fn(title="rpc provider down", incident_type="technical", severity="P1", commander="amara",
                           opened_by="watcher")
    started = time.time()
    thread = flow_in_thread(public_statement, incident_key=key, requested_by="kwame", kind="update",
                            details="We switched providers.", environment="devnet", approval_poll_interval=0.5)
    run_id = _paused_statement_run(started)
    edit_key = thread.wait_paused(run_id)
    _answer(run_id, body="Update: we switched providers and are monitoring.")
    thread.wait_paused(run_id, after=edit_key)
    _answer(run_id, decision="reject", approver="sofia", reason="too early to say")
    result = thread.join(timeout=120)

    assert result["published"] is False
    assert hooks == [] and mails == []
    with ops_store_engine.connect() as conn:
        refused = conn.execute(select(AuditEntry.details).where(AuditEntry.action == "statement.not_approved",
                                                                AuditEntry.subject == key)).scalar_one()
        statements = conn.execute(select(IncidentEvent.id).join(IncidentEvent.incident)
                                  .where(IncidentEvent.kind == "public_statement")
                                  .where(IncidentEvent.message.like("%switched providers%"))).all()
    assert refused["policy"] == "public_statement" and statements == []
    with ops_store_engine.connect() as conn:
        assert conn.execute(select(StatementNotification.id).where(StatementNotification.incident_key == key)).all() == []


def test_announcements_go_to_the_kinds_chosen_that_subscribe_to_the_topic():
    from vvops.communications.statements import announcement_recipients

    contacts = (Contact(name="Exchanges", kind="exchange", emails=("a@x.example",), topics=("maintenance",)),
                Contact(name="Partners", kind="partner", emails=("b@y.example", "a@x.example"),
                        topics=("maintenance", "api_change")),
                Contact(name="Regulator", kind="regulator", emails=("r@z.example",)))
    assert announcement_recipients(contacts, topic="api_change", kinds=("partner", "exchange")) == [
        ("Partners", "b@y.example"), ("Partners", "a@x.example")]
    assert announcement_recipients(contacts, topic="maintenance", kinds=("exchange", "partner")) == [
        ("Exchanges", "a@x.example"), ("Partners", "b@y.example")]
    assert announcement_recipients(contacts, topic="maintenance", kinds=("regulator",)) == []


@pytest.mark.timeout(600)
def test_an_api_change_announcement_is_approved_by_support_then_sent_to_subscribed_partners_only(
        ops_flows, ops_store_engine, flow_in_thread, statement_channels):
    from flows.announcement import announcement

    hooks, mails = statement_channels
    body = "The v1 /positions endpoint is deprecated on 2027-01-31; use /v2/positions (same fields, paginated)."
    started = time.time()
    thread = flow_in_thread(announcement, topic="api_change", title="API deprecation: /positions v1", body=body,
                            requested_by="kwame", environment="devnet", approval_poll_interval=0.3)
    run_id = paused_run_of("announcement", started)
    thread.wait_paused(run_id)
    assert not hooks and not mails  # nothing goes out before support approves
    _answer(run_id, decision="approve", approver="sofia", reason="dates checked")
    result = thread.join(timeout=120)

    assert result["published"] is True and result["approved_by"] == ["sofia"]
    assert sorted(r for m in mails for r in m.rcpt_tos) == ["oncall@partner-a.example", "oncall@partner-b.example"]
    message = email.message_from_bytes(mails[0].content, policy=email.policy.default)
    assert message["Subject"] == "API deprecation: /positions v1" and message.get_content().strip() == body
    assert hooks == [{"content": body, "allowed_mentions": {"parse": []}}]
    with ops_store_engine.connect() as conn:
        told = conn.execute(select(StatementNotification.incident_key, StatementNotification.recipient,
                                   StatementNotification.status)
                            .where(StatementNotification.statement_kind == "announcement:api_change")).all()
    assert sorted(told) == [(None, "community-discord", "sent"), (None, "oncall@partner-a.example", "sent"),
                            (None, "oncall@partner-b.example", "sent")]
