"""The `vvops up` console: a few lines a person reads, while everything else goes to log files.

`ConsoleRedirect` keeps a handle on the terminal and points this process's stdout/stderr (file descriptors 1
and 2, inherited by every child: flow-run processes, the runner, libraries that print) at a log file, so the
console shows only what `say()` writes. `RunLines` polls the Prefect API and says one line when a flow run
starts and one when it ends (with its final state and duration); the runs' own logs are in the Prefect UI and
in the log file.
"""

from __future__ import annotations

import os
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, TextIO

import httpx

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class ConsoleRedirect:
    """Everything written to fd 1/2 from now on goes to `log_path`; `say()` still reaches the terminal."""

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self._terminal: TextIO | None = None
        self._saved: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> "ConsoleRedirect":
        sys.stdout.flush()
        sys.stderr.flush()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._saved = (os.dup(1), os.dup(2))
        self._terminal = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8", errors="replace")
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        return self

    def say(self, message: str) -> None:
        with self._lock:
            if self._terminal is None:
                print(message, flush=True)
                return
            try:
                self._terminal.write(message + "\n")
                self._terminal.flush()
            except (OSError, ValueError):  # the terminal went away (closed pipe): nothing to tell
                pass

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        if self._saved is not None:
            os.dup2(self._saved[0], 1)
            os.dup2(self._saved[1], 2)
            for fd in self._saved:
                os.close(fd)
            self._saved = None
        with self._lock:
            if self._terminal is not None:
                try:
                    self._terminal.close()
                except OSError:
                    pass
                self._terminal = None


class RunLines(threading.Thread):
    """One console line per flow run start and end, from the Prefect API (polled every `every_s`)."""

    def __init__(self, api_url: str, say: Callable[[str], None], *, every_s: float = 2.0,
                 since: datetime | None = None):
        super().__init__(name="vvops-run-lines", daemon=True)
        self.api_url = api_url
        self.say = say
        self.every_s = every_s
        self.since = since or datetime.now(timezone.utc) - timedelta(seconds=5)
        self.stop_event = threading.Event()
        self._seen: dict[str, str] = {}   # run id -> last state type said ("RUNNING" | "PAUSED" | final)
        self._flows: dict[str, str] = {}

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while not self.stop_event.wait(self.every_s):
                try:
                    self.poll(client)
                except (httpx.HTTPError, ValueError, KeyError):
                    continue  # the server is restarting or going down: try again on the next tick

    def poll(self, client: httpx.Client) -> list[str]:
        # deployed runs only (a sub-flow is part of its parent's line), that have started since `up` began
        body = {"sort": "START_TIME_DESC", "limit": 200,
                "flow_runs": {"start_time": {"after_": self.since.isoformat()},
                              "deployment_id": {"is_null_": False},
                              "state": {"type": {"any_": ["RUNNING", "PAUSED", *sorted(FINAL)]}}}}
        runs = client.post(f"{self.api_url}/flow_runs/filter", json=body).json()
        lines = []
        for run in reversed(runs):
            state = (run.get("state") or {}).get("type") or ""
            said = self._seen.get(run["id"])
            if state == said or said in FINAL:
                continue
            name = f"{self._flow_name(client, run['flow_id'])}/{run['name']}"
            if said is None:
                lines.append(f"run        {name} started")
            if state in FINAL:
                took = run.get("total_run_time") or 0.0
                lines.append(f"run        {name} {state.lower()} after {took:.1f} s")
            elif state == "PAUSED":
                lines.append(f"run        {name} paused: waiting for input in the UI")
            self._seen[run["id"]] = state
        for line in lines:
            self.say(line)
        return lines

    def _flow_name(self, client: httpx.Client, flow_id: str) -> str:
        if flow_id not in self._flows:
            try:
                self._flows[flow_id] = client.get(f"{self.api_url}/flows/{flow_id}").json()["name"]
            except (httpx.HTTPError, ValueError, KeyError):
                return "flow"
        return self._flows[flow_id]
