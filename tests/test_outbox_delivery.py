"""Outbox → Slack delivery against the Slack stand-in, on SQLite and PostgreSQL: 0 lost, 0 duplicated, in order."""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from vvops.notify.delivery import RetryPolicy, SlackDelivery, SlackDeliveryError
from vvops.notify.messages import render
from tests.fixtures.store_fixtures import BACKENDS
from vvops.store.db import make_engine, migrate
from vvops.store.models import NotificationOutbox, SlackThread, utcnow
from vvops.store.outbox import enqueue

# every wait scaled down 1000×: a Retry-After of 1 s waits 1 ms; backoff base 20 ms (scaled) stays tiny
FAST = RetryPolicy(base_delay_s=20.0, max_delay_s=100.0, max_inline_retry_after_s=30.0, inline_rate_limit_retries=2,
                   read_retries=2, read_backoff_s=5.0, time_scale=0.001)


class Crash(Exception):
    """The worker 'dies' right after Slack accepted the post, before the outbox records it."""


@pytest.fixture(scope="module")
def _sqlite_template(tmp_path_factory):
    """A store migrated once per module; each SQLite test gets a copy (migrating takes ~1 s a test)."""
    path = tmp_path_factory.mktemp("outbox-template") / "ops.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path, _sqlite_template):
    if request.param == "sqlite":
        shutil.copy(_sqlite_template, tmp_path / "ops.db")
        url = f"sqlite:///{tmp_path / 'ops.db'}"
    else:
        url = request.getfixturevalue("postgres_store_url")
    eng = make_engine(url)
    yield eng
    eng.dispose()


def queue(engine, key, *, channel="#vv-ops", text=None, thread_key=None):
    message = {"text": text or key, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text or key}}]}
    with Session(engine) as session:
        row, created = enqueue(session, idempotency_key=key, channel=channel, kind="test", payload=message,
                               thread_key=thread_key)
        session.commit()
        return row.id


def rows(engine):
    with Session(engine) as session:
        return {r.idempotency_key: r for r in session.scalars(select(NotificationOutbox).order_by(NotificationOutbox.sequence))}


def worker(engine, standin, **kwargs):
    kwargs.setdefault("policy", FAST)
    kwargs.setdefault("timeout_s", 2.0)
    return SlackDelivery(engine, token=standin.token, base_url=standin.base_url, **kwargs)


def keys_posted(standin):
    return [m["metadata"]["event_payload"]["key"] for m in standin.all_messages()]


def test_posts_exact_payload_and_records_ts(engine, slack_standin):
    message = render("incident_updated", key="INC-0001", status="mitigated", message="pause in place", actor="dana")
    with Session(engine) as session:
        enqueue(session, idempotency_key="inc-1-upd", channel="#vv-incidents", kind="incident_updated", payload=message)
        session.commit()
    report = worker(engine, slack_standin).drain()
    assert report.sent == ["inc-1-upd"] and not report.failed
    [call] = slack_standin.calls("chat.postMessage")
    assert call.headers["authorization"] == f"Bearer {slack_standin.token}"
    assert call.args == {
        "channel": "#vv-incidents",
        "text": "INC-0001 mitigated: pause in place (by dana)",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": ":memo: *INC-0001* — *mitigated*: pause in place"}},
                   {"type": "context", "elements": [{"type": "mrkdwn", "text": "by dana"}]}],
        "metadata": {"event_type": "vvops_outbox", "event_payload": {"key": "inc-1-upd"}},
        "unfurl_links": False,
        "unfurl_media": False,
    }
    row = rows(engine)["inc-1-upd"]
    [posted] = slack_standin.channel_messages("C0000INC")
    assert (row.status, row.slack_ts, row.slack_channel_id) == ("sent", posted["ts"], "C0000INC")


def test_thread_replies_wait_for_parent_and_use_its_ts(engine, slack_standin):
    queue(engine, "inc-1-open", channel="#vv-incidents", thread_key="incident:INC-0001")
    queue(engine, "inc-1-upd", channel="#vv-incidents", thread_key="incident:INC-0001")
    queue(engine, "other", channel="#vv-ops")
    queue(engine, "inc-1-done", channel="#vv-incidents", thread_key="incident:INC-0001")
    slack_standin.inject("server_error", count=1)  # the parent's first post fails: replies must wait for it
    slower = RetryPolicy(base_delay_s=20.0, time_scale=0.01)  # 0.2 s backoff: the replies are still held below
    first = worker(engine, slack_standin, policy=slower).drain()
    assert first.sent == ["other"] and first.held == 2
    report = worker(engine, slack_standin).drain(wait_s=5)
    assert report.sent == ["inc-1-open", "inc-1-upd", "inc-1-done"]
    parent, upd, done = slack_standin.channel_messages("C0000INC")
    assert "thread_ts" not in parent and upd["thread_ts"] == done["thread_ts"] == parent["ts"]
    with Session(engine) as session:
        thread = session.scalars(select(SlackThread)).one()
    assert (thread.thread_key, thread.channel, thread.ts) == ("incident:INC-0001", "C0000INC", parent["ts"])
    replies = [c.args for c in slack_standin.calls("chat.postMessage") if c.args.get("thread_ts")]
    assert [r["channel"] for r in replies] == ["C0000INC", "C0000INC"]


def test_rate_limit_honours_retry_after_inline(engine, slack_standin):
    queue(engine, "m1")
    slack_standin.inject("rate_limited", count=2, retry_after=3)
    w = worker(engine, slack_standin)
    report = w.drain()
    assert report.sent == ["m1"]
    assert w.write.retry_handlers[0].waits == [3.0, 3.0]  # exactly Retry-After, twice
    assert len(slack_standin.calls("chat.postMessage")) == 3 and keys_posted(slack_standin) == ["m1"]


def test_long_retry_after_goes_back_to_the_outbox(engine, slack_standin):
    queue(engine, "m1")
    slack_standin.inject("rate_limited", count=1, retry_after=120)  # longer than max_inline_retry_after_s
    before = utcnow()
    report = worker(engine, slack_standin).drain()
    assert report.sent == [] and len(report.retrying) == 1
    row = rows(engine)["m1"]
    assert row.status == "pending" and "ratelimited" in row.last_error
    assert timedelta(seconds=0.11) <= row.next_attempt_at - before <= timedelta(seconds=2)  # 120 s × 0.001
    assert worker(engine, slack_standin).drain(wait_s=2).sent == ["m1"]
    assert keys_posted(slack_standin) == ["m1"]


def test_server_errors_retry_with_backoff_without_duplicates(engine, slack_standin):
    for i in range(3):
        queue(engine, f"m{i}")
    slack_standin.inject("server_error", count=3, status=500)
    report = worker(engine, slack_standin).drain(wait_s=5)
    assert sorted(report.sent) == ["m0", "m1", "m2"]
    assert keys_posted(slack_standin) == ["m0", "m1", "m2"]
    assert rows(engine)["m0"].attempts >= 2
    assert slack_standin.calls("conversations.history")  # a re-send is preceded by a lookup


def test_timeout_after_slack_posted_is_not_reposted(engine, slack_standin):
    queue(engine, "m1")
    slack_standin.inject("hang", count=1, seconds=1.0, process=True)  # Slack posts, the answer comes too late
    w = worker(engine, slack_standin, timeout_s=0.3)
    first = w.drain()
    assert first.sent == [] and "timeout" in first.retrying[0].error
    report = w.drain(wait_s=3)
    assert report.sent == ["m1"] and report.recovered == ["m1"]
    assert keys_posted(slack_standin) == ["m1"]
    [msg] = slack_standin.all_messages()
    assert rows(engine)["m1"].slack_ts == msg["ts"]


@pytest.mark.parametrize("threaded", [False, True])
def test_crash_between_send_and_record(engine, slack_standin, threaded):
    thread_key = "approval:7" if threaded else None
    if threaded:
        queue(engine, "parent", channel="#vv-approvals", thread_key=thread_key)
        assert worker(engine, slack_standin).drain().sent == ["parent"]
    queue(engine, "m1", channel="#vv-approvals", thread_key=thread_key)

    def die(row, response):
        raise Crash(row.idempotency_key)

    dying = worker(engine, slack_standin, after_post=die, lease_s=30)
    with pytest.raises(Crash):
        dying.drain()
    assert rows(engine)["m1"].status == "sending"  # posted, not recorded
    # a second worker before the lease expires finds nothing to do ...
    assert worker(engine, slack_standin).drain().sent == []
    # ... and after it expired, recovers the post instead of re-sending it
    later = worker(engine, slack_standin, clock=lambda: utcnow() + timedelta(seconds=31))
    report = later.drain()
    assert report.sent == ["m1"] and report.recovered == ["m1"]
    assert Counter(keys_posted(slack_standin))["m1"] == 1
    assert len([c for c in slack_standin.calls("chat.postMessage") if c.args["metadata"]["event_payload"]["key"] == "m1"]) == 1
    lookups = slack_standin.calls("conversations.replies" if threaded else "conversations.history")
    assert lookups and lookups[-1].args["include_all_metadata"] in ("1", "true", "True", True)
    row = rows(engine)["m1"]
    assert row.status == "sent" and row.slack_ts == [m for m in slack_standin.all_messages()
                                                     if m["metadata"]["event_payload"]["key"] == "m1"][0]["ts"]


def test_outage_delays_then_everything_goes_out_in_order(engine, slack_standin):
    plan = [("a1", "#vv-ops", None), ("i1", "#vv-incidents", "incident:INC-0002"), ("a2", "#vv-ops", None),
            ("i2", "#vv-incidents", "incident:INC-0002"), ("r1", "#vv-reports", None), ("a3", "#vv-ops", None),
            ("i3", "#vv-incidents", "incident:INC-0002")]
    for key, channel, thread_key in plan:
        queue(engine, key, channel=channel, thread_key=thread_key)
    slack_standin.inject("down", count=10_000)  # Slack unreachable
    w = worker(engine, slack_standin)
    for _ in range(3):
        report = w.drain(wait_s=0.05)
        assert report.sent == [] and not report.failed
    assert {r.status for r in rows(engine).values()} == {"pending"}
    slack_standin.clear_faults()  # Slack is back
    report = w.drain(wait_s=5)
    assert sorted(report.sent) == sorted(k for k, _, _ in plan) and not report.failed
    posted = keys_posted(slack_standin)
    assert Counter(posted) == Counter(k for k, _, _ in plan)  # 0 lost, 0 duplicated
    for channel in ("C0000OPS", "C0000INC", "C000REPRT"):
        got = [m["metadata"]["event_payload"]["key"] for m in slack_standin.channel_messages(channel)]
        want = [k for k, c, _ in plan if slack_standin.channel_id(c) == channel]
        assert got == want
    inc = slack_standin.channel_messages("C0000INC")
    assert inc[1]["thread_ts"] == inc[2]["thread_ts"] == inc[0]["ts"]


def test_two_workers_never_duplicate_and_keep_order(engine, slack_standin):
    keys = [f"m{i:02d}" for i in range(16)]
    for i, key in enumerate(keys):
        queue(engine, key, channel="#vv-ops" if i % 2 else "#vv-alerts")
    slack_standin.inject("server_error", count=2)
    workers = [worker(engine, slack_standin, batch_size=3) for _ in range(2)]
    errors = []

    def run(w):
        try:
            w.drain(wait_s=5)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert Counter(keys_posted(slack_standin)) == Counter(keys)
    for channel, parity in (("C0000OPS", 1), ("C000ALERT", 0)):
        got = [m["metadata"]["event_payload"]["key"] for m in slack_standin.channel_messages(channel)]
        assert got == [k for i, k in enumerate(keys) if i % 2 == parity]
    assert {r.status for r in rows(engine).values()} == {"sent"}


def test_enqueue_is_idempotent_so_a_retried_notify_sends_once(engine, slack_standin):
    queue(engine, "daily:2026-11-26")
    queue(engine, "daily:2026-11-26")
    worker(engine, slack_standin).drain()
    queue(engine, "daily:2026-11-26")
    worker(engine, slack_standin).drain()
    assert keys_posted(slack_standin) == ["daily:2026-11-26"]


def test_unknown_channel_fails_naming_the_channel_not_the_token(engine, slack_standin):
    queue(engine, "bad", channel="#vv-nope")
    queue(engine, "good", channel="#vv-ops")
    report = worker(engine, slack_standin).drain()
    assert report.sent == ["good"]
    [failure] = report.failed
    assert "#vv-nope" in failure.error and "channel_not_found" in failure.error
    row = rows(engine)["bad"]
    assert row.status == "failed" and "#vv-nope" in row.last_error and slack_standin.token not in row.last_error
    with pytest.raises(SlackDeliveryError, match="#vv-nope.*channel_not_found") as info:
        report.raise_for_failures()
    assert slack_standin.token not in str(info.value)


def test_not_in_channel_is_permanent(engine, slack_standin):
    slack_standin.not_in.add("C000ALERT")
    queue(engine, "a", channel="#vv-alerts")
    report = worker(engine, slack_standin).drain(wait_s=1)
    assert [f.error for f in report.failed] == ["Slack refused the message for channel #vv-alerts: not_in_channel"]
    assert len(slack_standin.calls("chat.postMessage")) == 1  # not retried


@pytest.mark.parametrize("problem", ["invalid_auth", "token_revoked"])
def test_bad_token_stops_the_drain_and_never_shows_the_token(engine, slack_standin, problem):
    for key in ("a", "b", "c"):
        queue(engine, key)
    token = "xoxb-wrong-token-123456"
    if problem == "token_revoked":
        slack_standin.revoked, token = True, slack_standin.token
    report = SlackDelivery(engine, token=token, base_url=slack_standin.base_url, timeout_s=2, policy=FAST).drain()
    assert len(report.failed) == 1 and report.stopped
    error = report.failed[0].error
    assert problem in error and "#vv-ops" in error and token not in error
    state = {k: r.status for k, r in rows(engine).items()}
    assert state == {"a": "failed", "b": "pending", "c": "pending"}
    assert rows(engine)["b"].attempts == 0  # handed back untouched
    assert len(slack_standin.calls("chat.postMessage")) == 1


def test_failed_thread_parent_fails_its_replies(engine, slack_standin):
    queue(engine, "p", channel="#vv-nope", thread_key="incident:INC-0009")
    queue(engine, "r", channel="#vv-nope", thread_key="incident:INC-0009")
    report = worker(engine, slack_standin).drain()
    assert [f.idempotency_key for f in report.failed] == ["p", "r"]
    assert "no parent" in rows(engine)["r"].last_error
    assert len(slack_standin.calls("chat.postMessage")) == 1
