"""A local stand-in for the Slack Web API, for tests that drive the real `slack_sdk.WebClient`.

Stdlib only: a `ThreadingHTTPServer` on 127.0.0.1 (port 0) in a daemon thread. It answers like Slack
(HTTP 200 with `{"ok": false, "error": ...}` for API errors, 429 + `Retry-After` for rate limits), checks the
bearer token, and keeps channels and messages in memory so `conversations.history` / `conversations.replies`
return what was posted (with `metadata` when `include_all_metadata` is set).

Supported methods: auth.test, chat.postMessage, chat.update, conversations.history, conversations.replies,
conversations.list, files.getUploadURLExternal, files.completeUploadExternal (+ the upload URL it hands out).

Fault injection (each applies to the next N API requests, in the order queued):
    standin.inject("rate_limited", count=2, retry_after=1)
    standin.inject("server_error", count=3, status=500)
    standin.inject("hang", count=1, seconds=2.0, process=True)   # process=True: the post happens, the reply is late
    standin.inject("down", count=5)                               # connection closed without a response
Every request (faulted or not) is recorded in `standin.requests` as `Received(...)`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

DEFAULT_TOKEN = "xoxb-standin-test-token"
DEFAULT_CHANNELS = {
    "C0000OPS": "vv-ops",
    "C000ALERT": "vv-alerts",
    "C0000INC": "vv-incidents",
    "C000APPRV": "vv-approvals",
    "C000REPRT": "vv-reports",
    "C000AUDIT": "vv-audit",
}


@dataclass
class Received:
    """One request as the stand-in saw it."""

    api: str  # e.g. "chat.postMessage" (or "upload" for the file upload URL)
    http_method: str
    headers: dict[str, str]
    args: dict[str, Any]  # JSON body, or form/query fields (single values unwrapped)
    fault: str | None = None  # the injected fault that answered it, if any


@dataclass
class Fault:
    kind: str
    count: int
    options: dict[str, Any] = field(default_factory=dict)


class SlackStandIn:
    """The in-memory Slack workspace plus the HTTP server in front of it."""

    def __init__(self, *, token: str = DEFAULT_TOKEN, channels: dict[str, str] | None = None) -> None:
        self.token = token
        self.channels: dict[str, str] = dict(channels or DEFAULT_CHANNELS)  # id -> name
        self.messages: dict[str, list[dict[str, Any]]] = {cid: [] for cid in self.channels}
        self.requests: list[Received] = []
        self.uploads: dict[str, bytes] = {}
        self.not_in: set[str] = set()  # channel ids the bot is not a member of
        self.revoked = False
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SlackStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                standin._handle(self)

            def do_POST(self) -> None:
                standin._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, name="slack-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """What to pass as `WebClient(base_url=...)`."""
        return f"http://127.0.0.1:{self.port}/api/"

    # ------------------------------------------------------------------ test helpers

    def inject(self, kind: str, *, count: int = 1, **options: Any) -> None:
        """Answer the next `count` API requests with a fault: rate_limited, server_error, hang, down."""
        if kind not in {"rate_limited", "server_error", "hang", "down"}:
            raise ValueError(f"unknown fault {kind}")
        with self._lock:
            self._faults.append(Fault(kind, count, options))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def calls(self, api: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if api is None or r.api == api]

    def posted(self, api: str = "chat.postMessage") -> list[dict[str, Any]]:
        """Arguments of the requests to `api` that Slack accepted (ok: true)."""
        with self._lock:
            return [r.args for r in self.requests if r.api == api and r.fault in (None, "hang_processed")]

    def channel_messages(self, channel_id: str) -> list[dict[str, Any]]:
        """Every message in a channel (top level and replies), oldest first."""
        with self._lock:
            return list(self.messages[channel_id])

    def all_messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return sorted((m for ms in self.messages.values() for m in ms), key=lambda m: float(m["ts"]))

    def channel_id(self, name_or_id: str) -> str | None:
        if name_or_id in self.channels:
            return name_or_id
        name = name_or_id.lstrip("#")
        return next((cid for cid, n in self.channels.items() if n == name), None)

    # ------------------------------------------------------------------ HTTP plumbing

    def _next_fault(self) -> Fault | None:
        with self._lock:
            while self._faults:
                fault = self._faults[0]
                if fault.count <= 0:
                    self._faults.pop(0)
                    continue
                fault.count -= 1
                if fault.count == 0:
                    self._faults.pop(0)
                return fault
        return None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlparse(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in h.headers.items()}
        if url.path.startswith("/upload/"):
            self._record(Received("upload", h.command, headers, {"file_id": url.path.rsplit("/", 1)[-1], "size": len(raw)}))
            with self._lock:
                self.uploads[url.path.rsplit("/", 1)[-1]] = raw
            self._send(h, 200, b"OK - " + str(len(raw)).encode(), content_type="text/plain")
            return
        api = url.path.removeprefix("/api/").strip("/")
        args = self._parse_args(url.query, raw, headers.get("content-type", ""))
        fault = self._next_fault()
        received = Received(api, h.command, headers, args, fault.kind if fault else None)
        self._record(received)
        if fault is not None:
            if fault.kind == "rate_limited":
                body = json.dumps({"ok": False, "error": "ratelimited"}).encode()
                self._send(h, 429, body, extra={"Retry-After": str(fault.options.get("retry_after", 1))})
                return
            if fault.kind == "server_error":
                status = int(fault.options.get("status", 500))
                self._send(h, status, b"<html>Internal Server Error</html>", content_type="text/html")
                return
            if fault.kind == "down":
                h.close_connection = True
                try:
                    h.connection.shutdown(2)
                except OSError:
                    pass
                return
            if fault.kind == "hang":
                # process=True: Slack did the work but the answer comes too late; else the request is lost
                payload = None
                if fault.options.get("process", False):
                    received.fault = "hang_processed"
                    payload = self._dispatch(api, args, headers)
                self._stop.wait(float(fault.options.get("seconds", 2.0)))
                try:
                    if payload is None:
                        self._send(h, 503, b"upstream timeout", content_type="text/plain")
                    else:
                        self._send(h, 200, json.dumps(payload).encode())
                except OSError:
                    pass
                return
        self._send(h, 200, json.dumps(self._dispatch(api, args, headers)).encode())

    def _record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    @staticmethod
    def _parse_args(query: str, raw: bytes, content_type: str) -> dict[str, Any]:
        args: dict[str, Any] = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(query).items()}
        if raw:
            if "json" in content_type:
                args.update(json.loads(raw))
            else:
                args.update({k: v[0] if len(v) == 1 else v for k, v in parse_qs(raw.decode()).items()})
        return args

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, *, content_type: str = "application/json; charset=utf-8",
              extra: dict[str, str] | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()

    # ------------------------------------------------------------------ the API

    def _new_ts(self) -> str:
        """Slack-style `seconds.micros` from the wall clock, strictly increasing."""
        self._counter += 1
        self._last_us = max(int(time.time() * 1_000_000), getattr(self, "_last_us", 0) + 1)
        return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def _dispatch(self, api: str, args: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        auth = headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else args.get("token")
        if not token:
            return {"ok": False, "error": "not_authed"}
        if token != self.token:
            return {"ok": False, "error": "invalid_auth"}
        if self.revoked:
            return {"ok": False, "error": "token_revoked"}
        handler = getattr(self, "_api_" + api.replace(".", "_"), None)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        with self._lock:
            return handler(args)

    def _channel_or_error(self, args: dict[str, Any], key: str = "channel") -> tuple[str | None, dict[str, Any] | None]:
        cid = self.channel_id(str(args.get(key, "")))
        if cid is None:
            return None, {"ok": False, "error": "channel_not_found"}
        if cid in self.not_in:
            return None, {"ok": False, "error": "not_in_channel"}
        return cid, None

    def _api_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://vv-standin.slack.com/", "team": "VeritasVault", "user": "vvops",
                "team_id": "T0STANDIN", "user_id": "U0VVOPS", "bot_id": "B0VVOPS"}

    def _api_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        cid, error = self._channel_or_error(args)
        if error:
            return error
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        thread_ts = args.get("thread_ts")
        if thread_ts and not any(m["ts"] == thread_ts for m in self.messages[cid]):
            return {"ok": False, "error": "thread_not_found"}
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        metadata = args.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        message = {"type": "message", "user": "U0VVOPS", "bot_id": "B0VVOPS", "ts": self._new_ts(),
                   "text": args.get("text", ""), "blocks": blocks or []}
        if thread_ts:
            message["thread_ts"] = thread_ts
        if metadata:
            message["metadata"] = metadata
        self.messages[cid].append(message)
        public = {k: v for k, v in message.items() if k != "metadata"}
        return {"ok": True, "channel": cid, "ts": message["ts"], "message": public}

    def _api_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        cid, error = self._channel_or_error(args)
        if error:
            return error
        for message in self.messages[cid]:
            if message["ts"] == args.get("ts"):
                if "text" in args:
                    message["text"] = args["text"]
                if "blocks" in args:
                    message["blocks"] = json.loads(args["blocks"]) if isinstance(args["blocks"], str) else args["blocks"]
                return {"ok": True, "channel": cid, "ts": message["ts"], "text": message["text"]}
        return {"ok": False, "error": "message_not_found"}

    @staticmethod
    def _view(message: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
        return {k: v for k, v in message.items() if with_metadata or k != "metadata"}

    @staticmethod
    def _truthy(value: Any) -> bool:
        return str(value).lower() in {"1", "true"}

    def _api_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        cid, error = self._channel_or_error(args)
        if error:
            return error
        oldest = float(args.get("oldest") or 0)
        latest = float(args.get("latest") or 1e12)
        limit = int(args.get("limit") or 100)
        offset = int(args.get("cursor") or 0)
        top = [m for m in self.messages[cid] if "thread_ts" not in m or m["thread_ts"] == m["ts"]]
        found = [m for m in reversed(top) if oldest < float(m["ts"]) < latest]  # newest first, like Slack
        page = found[offset:offset + limit]
        more = offset + limit < len(found)
        meta = self._truthy(args.get("include_all_metadata"))
        return {"ok": True, "messages": [self._view(m, meta) for m in page], "has_more": more,
                "response_metadata": {"next_cursor": str(offset + limit) if more else ""}}

    def _api_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        cid, error = self._channel_or_error(args)
        if error:
            return error
        ts = args.get("ts")
        parent = [m for m in self.messages[cid] if m["ts"] == ts]
        if not parent:
            return {"ok": False, "error": "thread_not_found"}
        thread = parent + [m for m in self.messages[cid] if m.get("thread_ts") == ts and m["ts"] != ts]
        oldest = float(args.get("oldest") or 0)
        thread = [m for m in thread if m["ts"] == ts or float(m["ts"]) > oldest]
        limit = int(args.get("limit") or 1000)
        offset = int(args.get("cursor") or 0)
        page = thread[offset:offset + limit]
        more = offset + limit < len(thread)
        meta = self._truthy(args.get("include_all_metadata"))
        return {"ok": True, "messages": [self._view(m, meta) for m in page], "has_more": more,
                "response_metadata": {"next_cursor": str(offset + limit) if more else ""}}

    def _api_conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        chans = [{"id": cid, "name": name, "is_channel": True, "is_member": cid not in self.not_in}
                 for cid, name in self.channels.items()]
        return {"ok": True, "channels": chans, "response_metadata": {"next_cursor": ""}}

    def _api_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("filename") or not args.get("length"):
            return {"ok": False, "error": "invalid_arguments"}
        self._counter += 1
        file_id = f"F{self._counter:08d}"
        return {"ok": True, "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}", "file_id": file_id}

    def _api_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        files = json.loads(args.get("files") or "[]")
        if not files or any(f.get("id") not in self.uploads for f in files):
            return {"ok": False, "error": "file_not_found"}
        cid = None
        if args.get("channel_id"):
            cid, error = self._channel_or_error(args, "channel_id")
            if error:
                return error
        out = []
        for f in files:
            out.append({"id": f["id"], "title": f.get("title", ""), "size": len(self.uploads[f["id"]])})
            if cid:
                message = {"type": "message", "user": "U0VVOPS", "ts": self._new_ts(), "text": args.get("initial_comment", ""),
                           "files": [{"id": f["id"], "title": f.get("title", "")}]}
                if args.get("thread_ts"):
                    message["thread_ts"] = args["thread_ts"]
                self.messages[cid].append(message)
        return {"ok": True, "files": out}


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll `predicate` until it is true or `timeout` passes (for tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
