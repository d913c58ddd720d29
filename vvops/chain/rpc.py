"""A small JSON-RPC client with failover across RPC URLs, a short timeout per URL and per-URL latency.

We speak JSON-RPC directly (httpx) rather than through web3's provider stack: reads are batched and
decoded with eth_abi, and every answer says which endpoint served it, which a check result must report.
"""

from __future__ import annotations

import itertools
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx


def endpoint_label(url: str) -> str:
    """A log-safe name for an RPC URL: scheme, host and port; never its path, query or credentials."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or 'unknown'}{port}"


class RpcError(Exception):
    """The node answered with a JSON-RPC error (it was reachable: no failover for this)."""

    def __init__(self, method: str, error: dict[str, Any]):
        self.method = method
        self.code = error.get("code")
        self.data = error.get("data")
        super().__init__(f"{method}: {error.get('message', 'error')} (code {self.code})")


class RpcUnavailable(Exception):
    """No configured RPC URL answered; the message lists each endpoint label and its failure."""


@dataclass
class Attempt:
    label: str
    ok: bool
    latency_ms: float
    error: str | None = None
    method: str | None = None


@dataclass
class RpcClient:
    """JSON-RPC over HTTP to the first URL that answers, in priority order, with retries per URL.

    A transport failure (connection refused, timeout, HTTP 5xx/429, unparsable answer) is retried on the
    same URL after a short jittered pause (`retry_backoff_s` doubled per retry), then the next URL is tried.
    A JSON-RPC error is the node's answer and is raised as `RpcError` without failover.
    """

    urls: list[str]
    timeout_s: float = 5.0
    retries_per_url: int = 2
    retry_backoff_s: float = 0.05
    attempts: list[Attempt] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _client: httpx.Client | None = None
    # a caller-owned httpx.Client (its connection pool) to use instead of a new one; close() leaves it open
    shared_http: httpx.Client | None = None

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("RpcClient needs at least one RPC URL")

    @property
    def http(self) -> httpx.Client:
        if self.shared_http is not None:
            return self.shared_http
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout_s, headers={"content-type": "application/json"})
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def labels(self) -> list[str]:
        return [endpoint_label(url) for url in self.urls]

    @property
    def served_by(self) -> str | None:
        """The endpoint that answered the latest successful request."""
        for attempt in reversed(self.attempts):
            if attempt.ok:
                return attempt.label
        return None

    def latency_by_url(self) -> dict[str, dict[str, Any]]:
        """Per endpoint label: requests tried, how many answered, median/max latency and the last error."""
        summary: dict[str, dict[str, Any]] = {}
        for label in self.labels:
            tried = [a for a in self.attempts if a.label == label]
            ok = [a.latency_ms for a in tried if a.ok]
            failed = [a for a in tried if not a.ok]
            summary[label] = {
                "attempts": len(tried),
                "ok": len(ok),
                "failed": len(failed),
                "median_ms": round(statistics.median(ok), 2) if ok else None,
                "max_ms": max(ok) if ok else None,
                "last_error": failed[-1].error if failed else None,
            }
        return summary

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        """One request; raises RpcError for a JSON-RPC error, RpcUnavailable when no URL answers."""
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or []}
        answer = self._post(payload, method)
        if "error" in answer:
            raise RpcError(method, answer["error"])
        return answer["result"]

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Several requests in one HTTP round trip; results in call order, errors raised as RpcError."""
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in zip(ids, calls)]
        answers = self._post(payload, f"batch[{len(calls)}]:{calls[0][0]}")
        if isinstance(answers, dict):  # some nodes answer a whole batch with one error object
            raise RpcError("batch", answers.get("error", {"message": "unexpected batch answer"}))
        by_id = {answer.get("id"): answer for answer in answers}
        results = []
        for request_id, (method, _) in zip(ids, calls):
            answer = by_id.get(request_id, {"error": {"message": "missing from batch answer"}})
            if "error" in answer:
                raise RpcError(method, answer["error"])
            results.append(answer["result"])
        return results

    def batch_chunked(self, calls: list[tuple[str, list[Any]]], chunk_size: int = 100) -> list[Any]:
        """Like `batch`, in HTTP round trips of at most `chunk_size` requests (nodes cap batch sizes)."""
        results: list[Any] = []
        for start in range(0, len(calls), chunk_size):
            results += self.batch(calls[start : start + chunk_size])
        return results

    def _post(self, payload: Any, method: str | None = None) -> Any:
        failures = []
        for url in self.urls:
            label = endpoint_label(url)
            for attempt in range(1 + self.retries_per_url):
                if attempt:  # short pause with full jitter: spread retries of concurrent checks
                    time.sleep(random.uniform(0, self.retry_backoff_s * 2 ** (attempt - 1)))
                started = time.perf_counter()
                try:
                    response = self.http.post(url, json=payload)
                    response.raise_for_status()
                    answer = response.json()
                except (httpx.HTTPError, ValueError) as exc:
                    reason = _describe(exc)
                    self.attempts.append(Attempt(label, False, _ms(started), reason, method))
                    failures.append(f"{label}: {reason}")
                    if isinstance(exc, httpx.HTTPStatusError) and 400 <= exc.response.status_code < 500 \
                            and exc.response.status_code not in (408, 429):
                        break  # this URL refuses the request itself (auth, bad path): go to the next URL
                    continue
                self.attempts.append(Attempt(label, True, _ms(started), None, method))
                return answer
        raise RpcUnavailable("no RPC endpoint answered: " + "; ".join(failures))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _describe(exc: Exception) -> str:
    # httpx messages can embed the full URL (with an API key in its path): name the failure, not the URL.
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.HTTPError):
        return type(exc).__name__
    return "invalid JSON answer"
