"""Slack v0 request signatures: valid, forged, stale, replayed."""

from __future__ import annotations

import time

import pytest
from freezegun import freeze_time

from vvops.approvals.slack_signature import (
    FORGED, MISSING, REPLAYED, STALE, SignatureError, SlackSignatureVerifier, sign, verify_signature,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BODY = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
TS = 1_764_000_000


def test_sign_matches_slacks_documented_example():
    # the example from Slack's "Verifying requests from Slack" guide
    body = ("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
            "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
            "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
            "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    assert sign(SECRET, 1531420618, body) == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_a_valid_signature_passes():
    verify_signature(SECRET, timestamp=str(TS), signature=sign(SECRET, TS, BODY), body=BODY, now=TS + 10)


@pytest.mark.parametrize("signature", [sign("another-secret", TS, BODY), sign(SECRET, TS, BODY + b"x"),
                                       sign(SECRET, TS + 1, BODY), "v0=" + "0" * 64, "garbage"])
def test_forged_signatures_fail(signature):
    with pytest.raises(SignatureError) as err:
        verify_signature(SECRET, timestamp=str(TS), signature=signature, body=BODY, now=TS)
    assert err.value.reason == FORGED


def test_missing_headers_fail():
    with pytest.raises(SignatureError) as err:
        verify_signature(SECRET, timestamp=None, signature=sign(SECRET, TS, BODY), body=BODY, now=TS)
    assert err.value.reason == MISSING


@pytest.mark.parametrize("offset", [301, -301, 3600])
def test_stale_timestamps_fail_even_with_a_valid_signature(offset):
    with pytest.raises(SignatureError) as err:
        verify_signature(SECRET, timestamp=str(TS), signature=sign(SECRET, TS, BODY), body=BODY, now=TS + offset)
    assert err.value.reason == STALE


def test_the_verifier_uses_the_clock_for_the_window():
    verifier = SlackSignatureVerifier(SECRET)
    with freeze_time("2026-01-01 00:00:00"):
        ts = int(time.time())
    with freeze_time("2026-01-01 00:04:59"):
        verifier.verify(timestamp=str(ts), signature=sign(SECRET, ts, BODY), body=BODY)
    with freeze_time("2026-01-01 00:05:01"), pytest.raises(SignatureError) as err:
        verifier.verify(timestamp=str(ts), signature=sign(SECRET, ts, BODY + b"&x=1"), body=BODY + b"&x=1")
    assert err.value.reason == STALE


def test_a_replayed_request_is_refused_within_the_window():
    verifier = SlackSignatureVerifier(SECRET)
    signature = sign(SECRET, TS, BODY)
    verifier.verify(timestamp=str(TS), signature=signature, body=BODY, now=TS + 1)
    with pytest.raises(SignatureError) as err:
        verifier.verify(timestamp=str(TS), signature=signature, body=BODY, now=TS + 2)
    assert err.value.reason == REPLAYED
    # a new request (new timestamp) from the same user is fine
    verifier.verify(timestamp=str(TS + 5), signature=sign(SECRET, TS + 5, BODY), body=BODY, now=TS + 6)
    # after the window the old one is stale, not remembered forever
    with pytest.raises(SignatureError) as err:
        verifier.verify(timestamp=str(TS), signature=signature, body=BODY, now=TS + 400)
    assert err.value.reason == STALE
