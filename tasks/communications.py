"""Public statements: the incident's public facts, and publishing an approved statement to every channel.
Each delivery (and each channel skipped) is in the audit log with the statement's digest."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Any

import httpx
from prefect import get_run_logger, task
from sqlalchemy import select

from tasks.incidents import add_event
from tasks.runtime import ops_config, store_engine
from tasks.status_page import publish_status_page
from tasks.store import audit
from vvops.communications.statements import (PublicFacts, announcement_recipients, recipients, statement_digest,
                                             webhook_payload, x_post)
from vvops.config import EnvVarError, resolve_secret
from vvops.status_page.evidence import read_evidence
from vvops.status_page.model import page_snapshot
from vvops.store.db import session_scope
from vvops.store.models import Incident


@task(name="statement-facts")
def statement_facts(environment: str, incident_key: str) -> PublicFacts:
    """The public facts of one incident, as the status page derives them (impact, affected components)."""
    from datetime import datetime, timezone

    cfg = ops_config(environment)
    engine = store_engine()
    with session_scope(engine) as session:
        incident = session.scalar(select(Incident).where(Incident.key == incident_key))
        if incident is None:
            raise ValueError(f"no incident {incident_key!r}")
        severity, incident_type = incident.severity, incident.type
    now = datetime.now(timezone.utc)
    checks, incidents = read_evidence(engine, environment=environment, now=now, days=cfg.status_page.uptime_days)
    snapshot = page_snapshot(cfg.status_page, checks, [i for i in incidents if i.key == incident_key], now=now,
                             environment=environment)
    public = next((i for i in snapshot["incidents"] if i["id"] == incident_key), None)
    return PublicFacts(key=incident_key, severity=severity, incident_type=incident_type,
                       impact=public["impact"] if public else "degraded_performance",
                       components=tuple(public["components"]) if public else (),
                       started=public["started_at"] if public else "", resolved=public and public["resolved_at"])


def _env_value(name: str) -> str:
    return resolve_secret("${" + name + "}").get_secret_value()


def _email(settings: Any, to: str, subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.sender, to, subject
    message.set_content(text)
    return message


def _smtp_session(settings: Any) -> smtplib.SMTP:
    """One connection (STARTTLS and login once) for every address of a statement."""
    smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout_s)
    try:
        if settings.starttls:
            smtp.starttls()
        if settings.username_env and settings.password_env:
            smtp.login(_env_value(settings.username_env), _env_value(settings.password_env))
    except BaseException:
        smtp.close()
        raise
    return smtp


def _record(rows: list[dict[str, Any]], *, key: str | None, kind: str, digest: str) -> None:
    """One row per recipient: who was told, when, through which channel (statement_notifications)."""
    from vvops.store.notification_models import StatementNotification

    with session_scope(store_engine()) as session:
        session.add_all(StatementNotification(incident_key=key, statement_kind=kind, statement_sha256=digest, **row)
                        for row in rows)


def _deliver(comms: Any, *, text: str, subject: str, to: list[tuple[str, str]], webhooks: bool = True
             ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Send an approved text to the webhooks and to each address on its own (partners and exchanges never see
    each other's addresses). Returns what went where and one row per recipient, webhook or skipped channel."""
    from datetime import datetime, timezone

    delivered: dict[str, Any] = {"webhooks": {}, "email": []}
    rows: list[dict[str, Any]] = []

    def told(channel: str, contact: str, contact_kind: str, recipient: str, outcome: str, detail: str | None):
        rows.append({"channel": channel, "contact": contact, "contact_kind": contact_kind, "recipient": recipient,
                     "status": outcome, "detail": detail, "notified_at": datetime.now(timezone.utc)})

    for hook in comms.webhooks if webhooks else ():
        try:
            url = _env_value(hook.url_env)
        except EnvVarError:  # an unset variable: the channel is off, and the run says so
            delivered["webhooks"][hook.name] = f"skipped: ${hook.url_env} is not set"
            told("webhook", hook.name, hook.kind, hook.name, "skipped", f"${hook.url_env} is not set")
            continue
        try:
            response = httpx.post(url, json=webhook_payload(hook.kind, text, chat_id=hook.chat_id), timeout=10)
            delivered["webhooks"][hook.name] = f"HTTP {response.status_code}"
            told("webhook", hook.name, hook.kind, hook.name, "sent" if response.is_success else "failed",
                 f"HTTP {response.status_code}")
        except httpx.HTTPError as exc:
            delivered["webhooks"][hook.name] = f"failed: {type(exc).__name__}"
            told("webhook", hook.name, hook.kind, hook.name, "failed", type(exc).__name__)
    kinds = {c.name: c.kind for c in comms.contacts}
    smtp, unreachable = None, None
    if to:
        try:
            smtp = _smtp_session(comms.email)
        except (OSError, smtplib.SMTPException) as exc:   # no server: every address fails alike, each recorded
            unreachable = exc
    for name, address in to:
        try:
            if smtp is None:
                raise unreachable
            smtp.send_message(_email(comms.email, address, subject, text))
            delivered["email"].append(f"{name}: {address}")
            told("email", name, kinds[name], address, "sent", None)
        except (OSError, smtplib.SMTPException) as exc:
            delivered["email"].append(f"failed: {name}: {address}: {type(exc).__name__}")
            told("email", name, kinds[name], address, "failed", f"{type(exc).__name__}: {exc}"[:500])
            get_run_logger().error("email to %s (%s) failed: %s", address, name, exc)
    if smtp is not None:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
    return delivered, rows


@task(name="publish-statement")
def publish_statement(*, environment: str, facts: PublicFacts, kind: str, text: str, approved_by: list[str],
                      requested_by: str) -> dict[str, Any]:
    """Publish an approved statement: status page, webhooks, partner email, X draft. Returns what went where;
    every recipient, webhook and skipped channel is recorded with the time it was told."""
    cfg = ops_config(environment)
    comms = cfg.communications
    digest = statement_digest(text)
    status = {"initial": "investigating", "update": "update", "resolution": "resolved",
              "post_incident": "post-incident"}[kind]
    add_event.fn(key=facts.key, kind="public_statement", actor=requested_by, message=text,
                 data={"approved_by": approved_by, "status": status, "statement_kind": kind, "sha256": digest})
    publish_status_page.fn(environment)
    to = recipients(comms.contacts, severity=facts.severity, incident_type=facts.incident_type)
    sent, rows = _deliver(comms, text=text, to=to,
                          subject=f"[{facts.severity}] {facts.key}: {kind.replace('_', ' ')} statement")
    _record(rows, key=facts.key, kind=kind, digest=digest)
    delivered: dict[str, Any] = {"status_page": True, **sent, "x_draft": None}
    if comms.x_draft:
        delivered["x_draft"] = x_post(text, link=cfg.status_page.public_url)
    audit.fn(actor=requested_by, action="statement.published", subject=facts.key,
             details={"kind": kind, "sha256": digest, "approved_by": approved_by, "delivered": delivered})
    return delivered


@task(name="publish-announcement")
def publish_announcement(*, environment: str, topic: str, title: str, text: str, audiences: list[str],
                         webhooks: bool, approved_by: list[str], requested_by: str) -> dict[str, Any]:
    """Send an approved announcement (maintenance, an API change, ...) to the contact lists of `audiences` that
    subscribe to `topic`, and to the webhooks; recorded per recipient and audited like a statement."""
    comms = ops_config(environment).communications
    digest = statement_digest(text)
    to = announcement_recipients(comms.contacts, topic=topic, kinds=audiences)
    delivered, rows = _deliver(comms, text=text, to=to, webhooks=webhooks, subject=title)
    _record(rows, key=None, kind=f"announcement:{topic}", digest=digest)
    audit.fn(actor=requested_by, action="announcement.published", subject=f"announcement:{topic}",
             details={"title": title, "sha256": digest, "approved_by": approved_by, "delivered": delivered})
    return delivered
