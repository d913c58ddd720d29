"""Slack request signatures (v0): `X-Slack-Signature: v0=hex(HMAC-SHA256(secret, "v0:{ts}:{raw body}"))`.

A request is accepted only when its timestamp is within `window_s` (5 minutes) of now, the signature
matches (constant-time compare) and the same signature has not been seen within the window (replay).
Pure: the clock is passed in (`now`), the replay memory lives in the verifier object (one per process;
a restart forgets it, but the 5-minute window still bounds a replay, and the store accepts one decision
per approver per request).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

VERSION = "v0"
WINDOW_S = 300

MISSING = "missing_headers"
MALFORMED = "malformed_timestamp"
STALE = "stale_timestamp"
FORGED = "bad_signature"
REPLAYED = "replayed"


class SignatureError(Exception):
    """Why a request was refused (`reason` is one of the constants above)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _secret_bytes(secret: str | bytes) -> bytes:
    if hasattr(secret, "get_secret_value"):
        secret = secret.get_secret_value()
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def sign(secret: str | bytes, timestamp: int | str, body: bytes | str) -> str:
    """The `X-Slack-Signature` value for a body sent at `timestamp` (what Slack computes)."""
    body_b = body.encode() if isinstance(body, str) else body
    base = f"{VERSION}:{timestamp}:".encode() + body_b
    return f"{VERSION}=" + hmac.new(_secret_bytes(secret), base, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, *, timestamp: str | None, signature: str | None, body: bytes,
                     now: float, window_s: int = WINDOW_S) -> None:
    """Raise SignatureError unless the signature is valid for this body and the timestamp is fresh."""
    if not timestamp or not signature:
        raise SignatureError(MISSING, "X-Slack-Request-Timestamp and X-Slack-Signature are required")
    try:
        ts = int(timestamp)
    except ValueError:
        raise SignatureError(MALFORMED, "X-Slack-Request-Timestamp is not an integer") from None
    if abs(now - ts) > window_s:
        raise SignatureError(STALE, f"timestamp is {int(now - ts)} s away from now (window {window_s} s)")
    expected = sign(secret, ts, body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise SignatureError(FORGED, "signature does not match")


class SlackSignatureVerifier:
    """Verifies signatures and refuses replays: a signature seen within the window is refused again."""

    def __init__(self, secret: str | bytes, *, window_s: int = WINDOW_S, clock: Callable[[], float] | None = None,
                 max_remembered: int = 100_000):
        self._secret = _secret_bytes(secret)
        self.window_s = window_s
        self._clock = clock
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._max = max_remembered
        self._lock = threading.Lock()

    def verify(self, *, timestamp: str | None, signature: str | None, body: bytes, now: float | None = None) -> None:
        at = (self._clock() if self._clock else time.time()) if now is None else now
        verify_signature(self._secret, timestamp=timestamp, signature=signature, body=body, now=at,
                         window_s=self.window_s)
        with self._lock:
            self._forget_older_than(at - self.window_s)
            if signature in self._seen:
                raise SignatureError(REPLAYED, "this request was already received")
            self._seen[signature] = int(timestamp)
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)

    def _forget_older_than(self, cutoff: float) -> None:
        for sig, ts in list(self._seen.items()):
            if ts < cutoff:
                del self._seen[sig]
