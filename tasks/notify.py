"""Prefect tasks that tell the team in Slack: every message goes to the outbox first, then is delivered.

- `notify(...)`: render a Block Kit message, enqueue it (idempotent by key), then try to deliver the due
  rows. Slack down or slow never fails the calling flow: rows stay in the outbox and a warning is logged;
  the `slack-outbox-drain` flow (every minute) delivers them later, in order.
- Without a bot token (the embedded default, or `enabled: false` in slack.yaml) rows stay `pending` in the
  outbox — "held": nothing is marked sent — and each message is published as a markdown artifact of the run,
  showing exactly the text and blocks Slack would receive. Once a token is configured the drain sends
  whatever is still held (old demo messages included: clear them from the outbox first if unwanted).
- `deliver_outbox(...)`: drain due rows; `raise_on_failure` turns permanent Slack errors (bad channel, revoked
  token) into a failed task whose message names the channel (never the token).

Settings come from the `vv-slack` block when registered, else from config/slack.yaml and the token's
environment variable. `VVOPS_SLACK_API_BASE_URL` overrides the API base URL (e.g. a local stand-in).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NONE as NO_CACHE
from prefect.artifacts import create_markdown_artifact
from prefect.logging import get_run_logger
from pydantic import SecretStr

from vvops.notify.delivery import DeliveryReport, RetryPolicy, SlackDelivery, SlackDeliveryError
from vvops.notify.messages import flow_run_url, render
from vvops.store import session_scope
from vvops.store.outbox import enqueue

BASE_URL_ENV = "VVOPS_SLACK_API_BASE_URL"
_TOKEN_SHAPE = re.compile(r"xox[abposre]-[A-Za-z0-9-]{6,}")


@dataclass(frozen=True)
class SlackSettings:
    token: SecretStr | None
    base_url: str
    timeout_s: float
    channels: dict[str, str]
    enabled: bool  # a token is configured and slack.yaml does not say `enabled: false`

    def __repr__(self) -> str:  # never print the token
        return f"SlackSettings(enabled={self.enabled}, base_url={self.base_url!r}, channels={self.channels!r})"


def slack_settings(environment: str) -> SlackSettings:
    """The Slack connection for a run: the vv-slack block wins, config/slack.yaml + env fill the gaps."""
    from blocks.names import SLACK_BLOCK
    from blocks.slack import SlackConnection
    from tasks.runtime import _load_block, ops_config

    cfg = ops_config(environment).slack
    block = _load_block(SlackConnection, SLACK_BLOCK)
    token = block.bot_token() if block is not None and block.enabled else cfg.bot_token()
    base_url = os.environ.get(BASE_URL_ENV, "").strip() or (block.api_base_url if block is not None else str(cfg.api_base_url))
    channels = dict(cfg.channels.model_dump())
    if block is not None and block.channels:
        channels.update(block.channels)
    enabled = bool(cfg.enabled and token is not None and token.get_secret_value())
    return SlackSettings(token=token, base_url=base_url, timeout_s=float(cfg.timeout_s), channels=channels, enabled=enabled)


def ui_url() -> str:
    """The Prefect UI's base URL (for links to runs)."""
    from prefect.settings import PREFECT_UI_URL

    return (PREFECT_UI_URL.value() or "http://127.0.0.1:4200").rstrip("/")


def run_url(flow_run_id: str | None = None) -> str | None:
    """`{ui}/runs/flow-run/{id}` of the given run, or of the current one."""
    if flow_run_id is None:
        from prefect.runtime import flow_run

        flow_run_id = flow_run.get_id()
    return flow_run_url(ui_url(), str(flow_run_id)) if flow_run_id else None


def _assert_no_secret(message: dict[str, Any], token: SecretStr | None) -> None:
    text = json.dumps(message, ensure_ascii=False)
    if _TOKEN_SHAPE.search(text) or (token is not None and token.get_secret_value() and token.get_secret_value() in text):
        raise ValueError("refusing to queue a Slack message that contains a token-like secret")


def _engine():
    from tasks.runtime import store_engine

    return store_engine()


def _delivery(settings: SlackSettings, policy: RetryPolicy | None) -> SlackDelivery:
    assert settings.token is not None
    return SlackDelivery(_engine(), token=settings.token.get_secret_value(), base_url=settings.base_url,
                         timeout_s=settings.timeout_s, policy=policy)


def message_markdown(*, channel: str, kind: str, message: dict[str, Any], idempotency_key: str,
                     thread_key: str | None, status: str) -> str:
    """What Slack would show (an approximation of the blocks) plus the exact payload, for a run artifact."""
    lines = [f"### Slack → `{channel}`" + (f" (thread `{thread_key}`)" if thread_key else ""),
             f"*{status}* · kind `{kind}` · key `{idempotency_key}`", ""]
    for block in message.get("blocks") or []:
        btype = block.get("type")
        if btype == "header":
            lines.append(f"**{block['text']['text']}**")
        elif btype == "section":
            if block.get("text"):
                lines.append(block["text"]["text"].replace("\n", "  \n"))
            for f in block.get("fields") or []:
                lines.append("- " + f["text"].replace("\n", ": ", 1))
        elif btype == "context":
            lines.append("_" + " · ".join(e.get("text", "") for e in block.get("elements", [])) + "_")
        elif btype == "actions":
            lines.append(" ".join(f"[{e['text']['text']}]" for e in block.get("elements", []) if e.get("type") == "button"))
        lines.append("")
    lines += ["Fallback text:", "", "> " + message.get("text", "").replace("\n", "\n> "), "",
              "```json", json.dumps(message, indent=2, ensure_ascii=False), "```"]
    return "\n".join(lines)


def _log_report(logger: Any, report: DeliveryReport) -> None:
    for f in report.retrying:
        logger.warning("Slack delivery delayed, message kept in the outbox: %s", f.error)
    for f in report.failed:
        logger.error("Slack delivery failed: %s", f.error)
    if report.lost_lease:
        logger.warning("%d message(s) were recorded after their lease expired", len(report.lost_lease))


@task(name="notify", retries=0, cache_policy=NO_CACHE)
def notify(*, kind: str, channel_purpose: str, payload: dict[str, Any], idempotency_key: str,
           thread_key: str | None = None, environment: str = "devnet", deliver: bool = True,
           policy: RetryPolicy | None = None) -> dict[str, Any]:
    """Queue one Slack message (`kind` built from `payload` by vvops.notify.messages) and try to send it.

    Idempotent by `idempotency_key` (a repeat returns the existing row). Never raises for Slack trouble:
    returns {"status": "sent"|"pending"|"held"|"failed", ...} and logs warnings/errors instead.
    """
    logger = get_run_logger()
    settings = slack_settings(environment)
    try:
        channel = settings.channels[channel_purpose]
    except KeyError:
        raise ValueError(f"unknown Slack channel purpose '{channel_purpose}' (known: {', '.join(sorted(settings.channels))})") from None
    message = render(kind, **payload)
    _assert_no_secret(message, settings.token)
    engine = _engine()
    with session_scope(engine) as session:
        row, created = enqueue(session, idempotency_key=idempotency_key, channel=channel, kind=kind,
                               payload=message, thread_key=thread_key)
        row_id = row.id
    result: dict[str, Any] = {"idempotency_key": idempotency_key, "channel": channel, "created": created}
    if not settings.enabled:
        create_markdown_artifact(
            markdown=message_markdown(channel=channel, kind=kind, message=message, idempotency_key=idempotency_key,
                                      thread_key=thread_key, status="held in the outbox: no Slack bot token configured"),
            description=f"Slack message for {channel} (not sent: no bot token)")
        logger.info("no Slack bot token: %s message %s held in the outbox and shown as an artifact", kind, idempotency_key)
        return {**result, "status": "held"}
    if deliver:
        try:
            report = _delivery(settings, policy).drain()
        except Exception as error:  # noqa: BLE001 - e.g. store trouble: the row is queued, the drain retries
            logger.warning("Slack delivery deferred (%s: %s); message %s stays in the outbox",
                           type(error).__name__, error, idempotency_key)
            report = None
        if report is not None:
            _log_report(logger, report)
    with session_scope(engine) as session:
        from vvops.store.models import NotificationOutbox

        current = session.get(NotificationOutbox, row_id)
        result.update(status=current.status, slack_ts=current.slack_ts, error=current.last_error)
    return result


@task(name="deliver-outbox", retries=0, cache_policy=NO_CACHE)
def deliver_outbox(*, environment: str = "devnet", wait_s: float = 0.0, max_rows: int | None = None,
                   raise_on_failure: bool = True, policy: RetryPolicy | None = None) -> dict[str, Any]:
    """Deliver due outbox rows to Slack (in order); transient trouble leaves rows for the next drain."""
    logger = get_run_logger()
    settings = slack_settings(environment)
    if not settings.enabled:
        logger.info("no Slack bot token configured: outbox messages stay held")
        return {"enabled": False}
    report = _delivery(settings, policy).drain(wait_s=wait_s, max_rows=max_rows)
    _log_report(logger, report)
    logger.info("Slack outbox drain: %s", report.as_dict())
    if raise_on_failure and report.failed:
        raise SlackDeliveryError("; ".join(f.error for f in report.failed))
    return {"enabled": True, **report.as_dict()}


def with_runbooks(failing: list[dict[str, Any]], environment: str) -> list[dict[str, Any]]:
    """Each failing check with the runbook section that handles it (config/runbooks.yaml), when there is one."""
    from tasks.runtime import ops_config

    try:
        books = ops_config(environment).runbooks
    except Exception:  # noqa: BLE001 - a summary without links beats no summary
        return failing
    return [{**f, "runbook_url": f.get("runbook_url") or books.for_check(f.get("id"))} if books.for_check(f.get("id"))
            else f for f in failing]


def notify_summary(*, cadence: str, environment: str, period: str, counts: dict[str, int], failing: Iterable[Any] = (),
                   run_link: str | None = None, channel_purpose: str = "reports") -> list[dict[str, Any]]:
    """A cadence summary in `reports`, with the failing checks as a reply in its thread (call inside a flow)."""
    failing = [f if isinstance(f, dict) else {k: getattr(f, k, None) for k in
               ("id", "area", "status", "message", "value", "threshold", "hint")} for f in failing]
    failing = with_runbooks(failing, environment)
    thread_key = f"report:{cadence}:{environment}:{period}"
    results = [notify(kind="summary", channel_purpose=channel_purpose, thread_key=thread_key, environment=environment,
                      idempotency_key=f"{thread_key}:summary",
                      payload={"cadence": cadence, "environment": environment, "period": period, "counts": counts,
                               "failing": failing, "run_url": run_link})]
    if failing:
        results.append(notify(kind="summary_failures", channel_purpose=channel_purpose, thread_key=thread_key,
                              environment=environment, idempotency_key=f"{thread_key}:failures",
                              payload={"cadence": cadence, "environment": environment, "failing": failing}))
    return results


@flow(name="slack-outbox-drain", log_prints=True)
def slack_outbox_drain(environment: str = "devnet", wait_s: float = 0.0) -> dict[str, Any]:
    """Deliver whatever the outbox holds (schedule every minute); fails only on permanent Slack errors."""
    return deliver_outbox(environment=environment, wait_s=wait_s)
