"""Child processes of `vvops up`: started in their own session, logged to files, always stopped together."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from vvops import paths

DEFAULT_PREFECT_PORT = 4200
PREFECT_AUTH_ENV = "PREFECT_API_AUTH_STRING"
"""Clients' basic-auth string (`user:password`); `vvops up` gives the server it starts the same value as
PREFECT_SERVER_API_AUTH_STRING. Required outside the devnet."""
PREFECT_SERVER_AUTH_ENV = "PREFECT_SERVER_API_AUTH_STRING"


class ServiceError(RuntimeError):
    """A service could not start or answer; the message says which and where its log is."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could listen on host:port now. Binds with SO_REUSEADDR, as the servers we start do:
    a socket left in TIME_WAIT by a process that just stopped does not hold the port (a plain bind or a connect
    would refuse it for about a minute after every restart); a listening socket still does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def prefect_api_url(port: int = DEFAULT_PREFECT_PORT, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{port}/api"


def prefect_runtime_env(*, api_url: str | None = None) -> dict[str, str]:
    """Environment for every process that talks to Prefect: our API URL and a Prefect home under the state dir."""
    env = {
        "PREFECT_HOME": os.environ.get("PREFECT_HOME", str(paths.state_dir() / "prefect")),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "INFO"),
    }
    env["PREFECT_API_URL"] = api_url or os.environ.get("PREFECT_API_URL") or prefect_api_url()
    auth = os.environ.get(PREFECT_AUTH_ENV)
    if auth:  # the server we start requires what every client we start sends (Prefect's basic auth)
        env[PREFECT_SERVER_AUTH_ENV] = auth
    return env



def apply_prefect_runtime_env(*, api_url: str | None = None) -> dict[str, str]:
    """Put the Prefect runtime environment into os.environ (before prefect is imported) and return it."""
    env = prefect_runtime_env(api_url=api_url)
    os.environ.update(env)
    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    return env


def die_with_parent() -> None:
    """Run in a child between fork and exec: the kernel SIGTERMs it when the parent dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # best effort: not Linux, or no libc by that name
        pass


def prefect_api_headers() -> dict[str, str]:
    """The credentials Prefect's own client sends, for our plain HTTP calls to the API: Prefect Cloud's API key
    (PREFECT_API_KEY, bearer) or a self-hosted server's basic auth (PREFECT_API_AUTH_STRING, `user:password`)."""
    key = os.environ.get("PREFECT_API_KEY")
    if key:
        return {"Authorization": f"Bearer {key}"}
    auth_string = os.environ.get("PREFECT_API_AUTH_STRING")
    if auth_string:
        return {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}
    return {}


def prefect_auth_kind() -> str:
    """How we authenticate to the Prefect API, for status lines (never the credential itself)."""
    if os.environ.get("PREFECT_API_KEY"):
        return "API key from $PREFECT_API_KEY"
    if os.environ.get("PREFECT_API_AUTH_STRING"):
        return "basic auth from $PREFECT_API_AUTH_STRING"
    return "no credentials"


def api_is_healthy(api_url: str, *, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{api_url}/health", headers=prefect_api_headers(), timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for_api(api_url: str, *, timeout: float, process: subprocess.Popen | None = None, log: Path | None = None) -> float:
    """Wait until the Prefect API answers /health; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if api_is_healthy(api_url):
            return time.monotonic() - started
        if process is not None and process.poll() is not None:
            raise ServiceError(f"Prefect server exited with code {process.returncode}; see {log}{_log_tail(log)}")
        time.sleep(0.25)
    raise ServiceError(f"Prefect server did not answer {api_url}/health within {timeout:.0f} s; see {log}{_log_tail(log)}")


def _log_tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n  " + "\n  ".join(tail) if tail else ""


@dataclass
class ManagedProcess:
    name: str
    process: subprocess.Popen
    log: Path

    def stop(self, *, timeout: float = 15.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left: nothing outlives `vvops up`."""
        if self.process.poll() is not None:
            return
        _signal_group(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


@dataclass
class Supervisor:
    """Starts child processes in their own process groups and stops them in reverse order."""

    log_dir: Path = field(default_factory=lambda: paths.state_dir() / "logs")
    children: list[ManagedProcess] = field(default_factory=list)
    stopping: bool = False

    def start(self, name: str, argv: list[str], *, env: dict[str, str] | None = None) -> ManagedProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        handle = log.open("ab")
        process = subprocess.Popen(
            argv,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        handle.close()
        child = ManagedProcess(name=name, process=process, log=log)
        self.children.append(child)
        return child

    def signal_all(self, sig: int, *, keep: tuple[str, ...] = ()) -> None:
        """Send `sig` to every child's process group except those named in `keep`, without waiting: they stop
        while `stop_all` is not yet called (e.g. while the Prefect server still takes the last logs)."""
        self.stopping = True
        for child in self.children:
            if child.name not in keep and child.process.poll() is None:
                _signal_group(child.process.pid, sig)

    def stop_all(self, *, timeout: float = 4.0) -> None:
        """SIGTERM every child's process group at once, wait up to `timeout` s for all of them together,
        then SIGKILL what is left: stopping takes the slowest child's time, not the sum."""
        self.stopping = True  # keep_running must not restart what is being stopped
        children, self.children = list(reversed(self.children)), []
        for child in children:
            if child.process.poll() is None:
                _signal_group(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(c.process.poll() is None for c in children):
            time.sleep(0.05)
        for child in children:
            if child.process.poll() is None:
                _signal_group(child.process.pid, signal.SIGKILL)
                child.process.wait(timeout=5)
            else:
                _signal_group(child.process.pid, signal.SIGKILL)  # grandchildren left in the group


def stop_descendants(*, timeout: float = 3.0) -> int:
    """Terminate every process this one started that is still alive (flow-run processes of the runner,
    anything a library spawned), then kill the ones that outlast `timeout`. Returns how many there were."""
    import psutil

    try:
        procs = psutil.Process().children(recursive=True)
    except psutil.Error:
        return 0
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=2)
    return len(procs)


def start_prefect_server(supervisor: Supervisor, *, port: int, timeout: float = 300.0) -> tuple[ManagedProcess | None, float]:
    """Start `prefect server start` unless one already answers on the port; return it and its start-up time."""
    api_url = prefect_api_url(port)
    if api_is_healthy(api_url):
        return None, 0.0
    child = supervisor.start(
        "prefect-server",
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=prefect_runtime_env(api_url=api_url),
    )
    took = wait_for_api(api_url, timeout=timeout, process=child.process, log=child.log)
    return child, took


def ensure_postgres_database(url: str) -> bool:
    """Create the database a PostgreSQL URL names, unless it exists; True when it was created."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = create_engine(parsed.set(drivername="postgresql+psycopg", database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}):
                return False
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
            return True
    finally:
        admin.dispose()


def keep_running(supervisor: Supervisor, *, restart: dict[str, list[str]], env: dict[str, str] | None = None,
                 poll_s: float = 1.0, out=print) -> None:
    """Until the supervisor stops: a child named in `restart` that exits is started again with the same argv."""
    while not supervisor.stopping:
        time.sleep(poll_s)
        for child in list(supervisor.children):
            if supervisor.stopping:
                return
            if child.process.poll() is None or child.name not in restart:
                continue
            out(f"{child.name} exited with code {child.process.returncode}; restarting (log {child.log})")
            supervisor.children.remove(child)
            supervisor.start(child.name, restart[child.name], env=env)
