"""Outbox → Slack delivery: leased, ordered, at-most-once-visible posting with `slack_sdk.WebClient`.

Guarantees (store first, then Slack):
- **No loss.** A message is an outbox row before anything is sent. Transient failures (429, 5xx, timeouts,
  connection errors) put the row back to `pending` with `next_attempt_at` (Retry-After for 429, exponential
  backoff otherwise) and it is retried forever; only permanent Slack errors (`channel_not_found`,
  `not_in_channel`, `invalid_auth`, `token_revoked`, ...) mark it `failed`, with an error naming the channel.
- **No duplicates.** Each post carries the idempotency key in message metadata (event_type `vvops_outbox`).
  A row that was claimed before (a retry, a timed-out post, a worker that died between the post and
  `mark_sent`) is first looked up with `conversations.history` (or `conversations.replies` in a thread) and
  recorded instead of re-sent when found. Two workers never hold the same row (leases, see store.outbox).
  Inline HTTP retries are only used where they are safe: 429 on any call (Slack did nothing) and 5xx/network
  errors on read calls; a failed `chat.postMessage` is never blindly re-posted.
- **Order.** A row waits while an earlier row of the same channel or thread is undelivered, so messages go out
  per channel/thread in `sequence` order after an outage, and thread replies wait for their parent. The first
  sent message of a `thread_key` records its `ts` in `slack_threads`; later ones are posted with `thread_ts`.

No Prefect here: `vvops.notify.delivery` is plain Python; `tasks/notify.py` wraps it in tasks and a flow.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.client import RemoteDisconnected
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.jitter import Jitter
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from vvops.store import outbox
from vvops.store.models import NotificationOutbox, utcnow

log = logging.getLogger("vvops.notify")

METADATA_EVENT_TYPE = "vvops_outbox"
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")

AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
                         "no_permission", "missing_scope", "ekm_access_denied", "org_login_required"})
CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived", "restricted_action",
                            "restricted_action_read_only_channel", "restricted_action_thread_only_channel",
                            "restricted_action_non_threadable_channel", "team_access_not_granted"})
MESSAGE_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "too_many_attachments",
                            "invalid_metadata_format", "invalid_metadata_schema", "metadata_too_large",
                            "thread_not_found", "invalid_arguments", "invalid_arg_name", "duplicate_message_not_found"})
TRANSIENT_ERRORS = frozenset({"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
                              "request_timeout", "team_added_to_org"})
PERMANENT_ERRORS = AUTH_ERRORS | CHANNEL_ERRORS | MESSAGE_ERRORS


class SlackDeliveryError(RuntimeError):
    """Slack refused messages for good (bad channel, revoked token, invalid message); the text names the channels."""


@dataclass(frozen=True)
class RetryPolicy:
    """How delivery waits. Production defaults; tests pass small values (never seconds of sleep)."""

    base_delay_s: float = 5.0  # outbox backoff: base * 2**(attempt-1), capped
    max_delay_s: float = 300.0
    max_inline_retry_after_s: float = 30.0  # a 429 with a longer Retry-After goes back to the outbox instead
    inline_rate_limit_retries: int = 2
    read_retries: int = 2  # inline retries of idempotent reads (history/replies/list) on 5xx/network errors
    read_backoff_s: float = 0.5
    max_unknown_error_attempts: int = 5  # an unrecognised Slack error becomes permanent after this many attempts
    time_scale: float = 1.0  # multiplies every wait (Retry-After included); tests use e.g. 0.001

    def backoff(self, attempts: int) -> float:
        return min(self.max_delay_s, self.base_delay_s * (2 ** max(0, attempts - 1))) * self.time_scale


class _NoJitter(Jitter):
    def recalculate(self, duration: float) -> float:
        return duration


class RetryAfterHandler(RetryHandler):
    """Retries a 429 after exactly its `Retry-After` (scaled), when that is at most `max_wait_s`."""

    def __init__(self, *, max_retry_count: int, max_wait_s: float, scale: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_s = max_wait_s
        self.scale = scale
        self.sleep = sleep
        self.waits: list[float] = []  # the Retry-After values honoured (seconds, unscaled)

    def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
        return response is not None and response.status_code == 429 and retry_after_of(response.headers) <= self.max_wait_s

    def prepare_for_next_attempt(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> None:
        wait = retry_after_of(response.headers)
        self.waits.append(wait)
        self.sleep(wait * self.scale)
        state.next_attempt_requested = True
        state.increment_current_attempt()


def retry_after_of(headers: Any) -> float:
    """Seconds from a Retry-After header (dict of str or of lists); 1 when absent or unreadable."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            value = value[0] if isinstance(value, list | tuple) else value
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return 1.0
    return 1.0


@dataclass
class Failure:
    idempotency_key: str
    channel: str
    error: str


@dataclass
class DeliveryReport:
    """What one drain did. `sent` includes `recovered` (found already in Slack and recorded, not re-posted)."""

    sent: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    retrying: list[Failure] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    held: int = 0
    lost_lease: list[str] = field(default_factory=list)
    stopped: str | None = None  # why the drain stopped early (auth error)

    def as_dict(self) -> dict[str, Any]:
        return {"sent": len(self.sent), "recovered": len(self.recovered), "retrying": len(self.retrying),
                "failed": [f"{f.channel}: {f.error}" for f in self.failed], "held": self.held,
                "lost_lease": len(self.lost_lease), "stopped": self.stopped}

    def raise_for_failures(self) -> None:
        if self.failed:
            raise SlackDeliveryError("; ".join(f.error for f in self.failed))


@dataclass
class _Outcome:
    kind: str  # permanent | transient
    code: str
    retry_after: float | None = None


def classify(error: BaseException) -> _Outcome:
    """Sort an exception from slack_sdk (or the network) into permanent or transient, with the Slack error code."""
    if isinstance(error, SlackApiError):
        response = error.response
        status = getattr(response, "status_code", 200)
        code = ""
        try:
            code = str(response.get("error") or "")
        except Exception:  # noqa: BLE001 - non-JSON body
            code = ""
        if status == 429 or code in {"ratelimited", "rate_limited"}:
            return _Outcome("transient", "ratelimited", retry_after_of(getattr(response, "headers", {})))
        if status >= 500:
            return _Outcome("transient", f"http_{status}")
        if code in PERMANENT_ERRORS:
            return _Outcome("permanent", code)
        if code in TRANSIENT_ERRORS:
            return _Outcome("transient", code)
        return _Outcome("unknown", code or f"http_{status}")
    if isinstance(error, TimeoutError):
        return _Outcome("transient", "timeout")
    if isinstance(error, (URLError, ConnectionError, RemoteDisconnected, OSError)):
        return _Outcome("transient", f"network: {type(error).__name__}")
    if isinstance(error, SlackClientError):
        return _Outcome("transient", f"client: {type(error).__name__}")
    raise error


def make_clients(*, token: str, base_url: str, timeout_s: float, policy: RetryPolicy,
                 sleep: Callable[[float], None] = time.sleep) -> tuple[WebClient, WebClient]:
    """(write client, read client): writes retry only 429s and refused connections; reads also 5xx and resets."""
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    rate = RetryAfterHandler(max_retry_count=policy.inline_rate_limit_retries,
                             max_wait_s=policy.max_inline_retry_after_s, scale=policy.time_scale, sleep=sleep)
    backoff = BackoffRetryIntervalCalculator(backoff_factor=policy.read_backoff_s * policy.time_scale, jitter=_NoJitter())
    write = WebClient(token=token, base_url=base_url, timeout=timeout_s, retry_handlers=[
        rate,
        # URLError without a response = the connection was never made: the post cannot have happened
        ConnectionErrorRetryHandler(max_retry_count=1, interval_calculator=backoff, error_types=[URLError]),
    ])
    read = WebClient(token=token, base_url=base_url, timeout=timeout_s, retry_handlers=[
        rate,
        ServerErrorRetryHandler(max_retry_count=policy.read_retries, interval_calculator=backoff),
        ConnectionErrorRetryHandler(max_retry_count=policy.read_retries, interval_calculator=backoff,
                                    error_types=[URLError, ConnectionResetError, RemoteDisconnected, TimeoutError]),
    ])
    return write, read


class SlackDelivery:
    """Delivers due outbox rows to Slack. One instance = one worker (its own `worker_id` for leases)."""

    def __init__(self, engine: Engine, *, token: str, base_url: str | None = None, timeout_s: float = 10.0,
                 policy: RetryPolicy | None = None, worker_id: str | None = None, lease_s: float | None = None,
                 batch_size: int = 20, clock: Callable[[], datetime] = utcnow, sleep: Callable[[float], None] = time.sleep,
                 after_post: Callable[[NotificationOutbox, dict[str, Any]], None] | None = None) -> None:
        if not token:
            raise ValueError("SlackDelivery needs a bot token (without one, messages stay in the outbox)")
        self.engine = engine
        self.policy = policy or RetryPolicy()
        self.worker_id = worker_id or f"slack-{uuid.uuid4().hex[:12]}"
        self.timeout_s = timeout_s
        # the lease must outlive one row's worst case: post (+ inline 429 waits) and a history lookup
        worst = timeout_s * (3 + self.policy.read_retries) + self.policy.max_inline_retry_after_s * self.policy.time_scale * self.policy.inline_rate_limit_retries
        self.lease_s = lease_s if lease_s is not None else max(60.0, worst + 30.0)
        self.batch_size = batch_size
        self.clock = clock
        self.sleep = sleep
        self.after_post = after_post  # test hook: runs after Slack accepted a post, before it is recorded
        self._token = token
        self.write, self.read = make_clients(token=token, base_url=base_url or "https://slack.com/api/", timeout_s=timeout_s, policy=self.policy,
                                             sleep=sleep)
        self._channel_ids: dict[str, str] = {}
        self._bind = engine.execution_options(sqlite_begin_immediate=True) if engine.dialect.name == "sqlite" else engine

    # ------------------------------------------------------------------ public

    def drain(self, *, wait_s: float = 0.0, max_rows: int | None = None) -> DeliveryReport:
        """Deliver every due row; with `wait_s`, also wait for rows coming due (backoffs) within that many seconds."""
        report = DeliveryReport()
        deadline = time.monotonic() + wait_s
        done = 0
        seen: set[int] = set()  # rows tried in this drain: after the deadline each row gets one try only
        while report.stopped is None:
            limit = self.batch_size if max_rows is None else min(self.batch_size, max_rows - done)
            if limit <= 0:
                break
            with self._session() as session:
                rows = outbox.claim_next(session, worker_id=self.worker_id, now=self.clock(),
                                         lease_seconds=self.lease_s, limit=limit)
                session.commit()
            if not rows:
                if not self._wait_for_due(deadline):
                    break
                continue
            overtime = time.monotonic() > deadline
            seen_before = set(seen)
            for row in rows:
                if report.stopped is not None or (overtime and row.id in seen):
                    self._give_back([row])
                    continue
                seen.add(row.id)
                self._deliver(row, report)
                done += 1
            if overtime and all(r.id in seen_before for r in rows):
                break
        return report

    def _give_back(self, rows: list[NotificationOutbox]) -> None:
        """Release claimed rows untouched (attempts and next_attempt_at as they were)."""
        with self._session() as session:
            for row in rows:
                outbox.release(session, outbox_id=row.id, worker_id=self.worker_id, retry_at=row.next_attempt_at)
            session.commit()

    # ------------------------------------------------------------------ one row

    def _session(self) -> Session:
        # short transactions; on SQLite take the write lock at BEGIN (a read-then-write transaction could
        # otherwise fail with "database is locked" when another worker wrote in between)
        return Session(bind=self._bind, expire_on_commit=False)

    def _wait_for_due(self, deadline: float) -> bool:
        with self._session() as session:
            due = outbox.next_due_at(session)
        if due is None:
            return False
        delay = max(0.0, (due - self.clock()).total_seconds())
        if time.monotonic() + delay > deadline:
            return False
        if delay > 0:
            self.sleep(delay)
        return True

    def _deliver(self, row: NotificationOutbox, report: DeliveryReport) -> None:
        # 1. order: wait behind an undelivered earlier row of this channel/thread
        with self._session() as session:
            before = outbox.predecessor(session, row)
            thread = outbox.get_thread(session, row.thread_key) if row.thread_key else None
            if before is not None and before.status == "failed":
                error = (f"message {row.idempotency_key} for channel {row.channel} not sent: its thread "
                         f"{row.thread_key} has no parent in Slack (message {before.idempotency_key} failed)")
                outbox.mark_failed(session, outbox_id=row.id, worker_id=self.worker_id, error=error, retry_at=None)
                session.commit()
                report.failed.append(Failure(row.idempotency_key, row.channel, error))
                return
            if before is not None:
                # retry when the earlier row is due again; behind a row another worker is sending, soon
                soon = self.clock() + timedelta(seconds=min(1.0, self.policy.base_delay_s) * self.policy.time_scale)
                retry_at = before.next_attempt_at if before.status == "pending" and before.next_attempt_at else None
                outbox.release(session, outbox_id=row.id, worker_id=self.worker_id,
                               retry_at=max(retry_at, soon) if retry_at else soon)
                session.commit()
                report.held += 1
                return
        channel = thread.channel if thread else row.channel
        thread_ts = thread.ts if thread else None
        try:
            # 2. a row claimed before may already be in Slack: look for its key before posting again
            found = self._find_posted(row, channel, thread_ts) if row.attempts > 1 else None
            if found is not None:
                channel_id, ts = found
                self._record(row, channel_id, ts, report, recovered=True)
                return
            # 3. post
            args: dict[str, Any] = {
                "channel": channel,
                "text": row.payload.get("text", ""),
                "blocks": row.payload.get("blocks") or None,
                "metadata": {"event_type": METADATA_EVENT_TYPE, "event_payload": {"key": row.idempotency_key}},
                "unfurl_links": False,
                "unfurl_media": False,
            }
            if thread_ts:
                args["thread_ts"] = thread_ts
            response = self.write.chat_postMessage(**args)
            data = dict(response.data) if isinstance(response.data, dict) else {}
            if self.after_post is not None:
                self.after_post(row, data)
        except Exception as error:  # noqa: BLE001 - classified below; unknown exception types re-raise
            self._failed(row, error, report)
            return
        self._record(row, str(data.get("channel") or channel), str(data["ts"]), report, recovered=False)

    def _record(self, row: NotificationOutbox, channel_id: str, ts: str, report: DeliveryReport, *, recovered: bool) -> None:
        with self._session() as session:
            ok = outbox.mark_sent(session, outbox_id=row.id, worker_id=self.worker_id, now=self.clock(),
                                  slack_ts=ts, slack_channel_id=channel_id)
            if row.thread_key and outbox.get_thread(session, row.thread_key) is None:
                outbox.record_thread(session, thread_key=row.thread_key, channel=channel_id, ts=ts)
            session.commit()
        if CHANNEL_ID.match(channel_id):
            self._channel_ids[row.channel] = channel_id
        if not ok:
            log.warning("outbox row %s was posted (ts %s) after its lease passed to another worker", row.idempotency_key, ts)
            report.lost_lease.append(row.idempotency_key)
            return
        report.sent.append(row.idempotency_key)
        if recovered:
            report.recovered.append(row.idempotency_key)

    def _failed(self, row: NotificationOutbox, error: BaseException, report: DeliveryReport) -> None:
        outcome = classify(error)
        now = self.clock()
        if outcome.kind == "unknown" and row.attempts >= self.policy.max_unknown_error_attempts:
            outcome.kind = "permanent"
        if outcome.kind == "permanent":
            if outcome.code in AUTH_ERRORS:
                text = (f"Slack rejected the bot token ({outcome.code}) posting to channel {row.channel}: "
                        "check the token in the vv-slack block or its environment variable")
                report.stopped = text
            else:
                text = f"Slack refused the message for channel {row.channel}: {outcome.code}"
            text = self._scrub(text)
            with self._session() as session:
                outbox.mark_failed(session, outbox_id=row.id, worker_id=self.worker_id, error=text, retry_at=None)
                session.commit()
            log.error("%s (message %s)", text, row.idempotency_key)
            report.failed.append(Failure(row.idempotency_key, row.channel, text))
            return
        if outcome.retry_after is not None:
            delay = outcome.retry_after * self.policy.time_scale
        else:
            delay = self.policy.backoff(row.attempts)
        retry_at = now + timedelta(seconds=delay)
        text = self._scrub(f"Slack unavailable for channel {row.channel} ({outcome.code}); retry after {delay:.3g}s")
        with self._session() as session:
            outbox.mark_failed(session, outbox_id=row.id, worker_id=self.worker_id, error=text, retry_at=retry_at)
            session.commit()
        log.warning("%s (message %s, attempt %d)", text, row.idempotency_key, row.attempts)
        report.retrying.append(Failure(row.idempotency_key, row.channel, text))

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "********") if self._token else text

    # ------------------------------------------------------------------ duplicate detection

    def _channel_id(self, channel: str) -> str | None:
        if CHANNEL_ID.match(channel):
            return channel
        if channel in self._channel_ids:
            return self._channel_ids[channel]
        with self._session() as session:
            known = outbox.known_channel_id(session, channel)
        if known:
            self._channel_ids[channel] = known
            return known
        name = channel.lstrip("#")
        cursor = None
        for _ in range(50):
            page = self.read.conversations_list(types="public_channel,private_channel", exclude_archived=True,
                                                limit=200, cursor=cursor)
            for item in page.get("channels") or []:
                if item.get("name") == name:
                    self._channel_ids[channel] = item["id"]
                    return item["id"]
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return None

    def _find_posted(self, row: NotificationOutbox, channel: str, thread_ts: str | None) -> tuple[str, str] | None:
        """(channel id, ts) of a message carrying this row's key, if an earlier attempt got it into Slack."""
        channel_id = self._channel_id(channel)
        if channel_id is None:
            return None  # unknown channel: the post will report channel_not_found
        oldest = f"{row.created_at.timestamp() - 60:.6f}"  # a minute of clock skew
        cursor = None
        for _ in range(20):
            if thread_ts:
                page = self.read.conversations_replies(channel=channel_id, ts=thread_ts, include_all_metadata=True,
                                                       limit=200, cursor=cursor)
            else:
                page = self.read.conversations_history(channel=channel_id, oldest=oldest, include_all_metadata=True,
                                                       limit=200, cursor=cursor)
            for message in page.get("messages") or []:
                meta = message.get("metadata") or {}
                if meta.get("event_type") == METADATA_EVENT_TYPE and (meta.get("event_payload") or {}).get("key") == row.idempotency_key:
                    return channel_id, str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return None
