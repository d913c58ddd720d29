"""Run anvil (from the npm package @foundry-rs/anvil) as a child process: start, wait until ready, stop cleanly.

Not devnet code: the devnet runs on it, and so does every simulation (`vvops.chain.fork`, a throwaway fork of
whichever chain an environment names). `vvops.devnet.anvil` re-exports these names for the devnet tooling.

The platform binary is executed directly (never through npx: killing an npx wrapper leaves anvil orphaned).
On Linux a child started from the main thread also gets PR_SET_PDEATHSIG, so it dies with its parent even on
SIGKILL; and an atexit hook stops every AnvilProcess still running when Python exits.
"""

from __future__ import annotations

import atexit
import os
import platform
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Sequence

import httpx

from vvops import paths
from vvops.services import die_with_parent as _die_with_parent
from vvops.services import port_is_free  # noqa: F401 - re-exported: SO_REUSEADDR, as the servers bind

DEFAULT_CHAIN_ID = 31337
ANVIL_BIN_ENV = "VVOPS_ANVIL_BIN"

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_LIVE: "weakref.WeakSet[AnvilProcess]" = weakref.WeakSet()


class AnvilError(RuntimeError):
    """anvil is missing, could not start, or did not answer; the message says why (with its output tail)."""


def anvil_binary() -> Path:
    """Path of the anvil binary: $VVOPS_ANVIL_BIN, else node_modules/@foundry-rs/anvil-<platform>-<arch>/bin/anvil."""
    override = os.environ.get(ANVIL_BIN_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise AnvilError(f"anvil not found at {path} (from ${ANVIL_BIN_ENV})")
        return path
    system = platform.system().lower()  # linux, darwin, windows
    arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    exe = "anvil.exe" if system == "windows" else "anvil"
    path = paths.node_modules_dir() / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / exe
    if not path.is_file():
        raise AnvilError(f"anvil not found at {path}: run `npm ci` in the repo root")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def tail(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.exists():
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class AnvilProcess:
    """One anvil node on 127.0.0.1:`port` with chain id 31337.

    >>> with AnvilProcess(free_port()) as node:
    ...     node.rpc_url
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        block_time: float | None = None,
        chain_id: int = DEFAULT_CHAIN_ID,
        extra_args: Sequence[str] = (),
        log_path: Path | str | None = None,
        startup_timeout: float = 15.0,
        binary: Path | str | None = None,
        die_with_parent: bool = True,
    ):
        self.port = port if port is not None else free_port()
        self._auto_port = port is None
        self.block_time = block_time
        self.chain_id = chain_id
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.binary = Path(binary) if binary else None
        self.die_with_parent = die_with_parent
        self._own_log = log_path is None
        self.log_path: Path | None = Path(log_path) if log_path else None
        self._proc: subprocess.Popen | None = None
        self._log_fh = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ properties
    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        cmd = [str(self.binary or anvil_binary()), "--host", "127.0.0.1", "--port", str(self.port),
               "--chain-id", str(self.chain_id)]
        if self.block_time:
            cmd += ["--block-time", f"{self.block_time:g}"]
        return cmd + self.extra_args

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<AnvilProcess {self.rpc_url} {state}>"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "AnvilProcess":
        """Start anvil and wait until eth_chainId answers. Raises AnvilError (with anvil's output tail)."""
        with self._lock:
            if self.running:
                return self
            attempts = 3 if self._auto_port else 1
            for attempt in range(attempts):
                try:
                    self._spawn()
                    self._wait_ready()
                    _LIVE.add(self)
                    return self
                except AnvilError as error:
                    self._terminate()
                    in_use = "address already in use" in str(error).lower() or "addrinuse" in str(error).lower()
                    if attempt + 1 < attempts and in_use:
                        self.port = free_port()
                        continue
                    raise
        return self

    def _spawn(self) -> None:
        cmd = self.command()
        if not port_is_free(self.port):  # else the readiness probe would talk to whoever holds the port
            raise AnvilError(f"cannot start anvil: port {self.port} on 127.0.0.1 is already in use "
                             f"(address already in use)")
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix=f"anvil-{self.port}-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_fh = open(self.log_path, "ab")
        use_pdeathsig = (self.die_with_parent and platform.system() == "Linux"
                         and threading.current_thread() is threading.main_thread())
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=self._log_fh,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if use_pdeathsig else None,
            )
        except OSError as error:
            self._close_log()
            raise AnvilError(f"cannot start {cmd[0]}: {error}") from error

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        payload = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        with httpx.Client(timeout=1.0) as client:
            while True:
                code = self._proc.poll() if self._proc else -1
                if code is not None:
                    raise AnvilError(f"anvil exited with code {code} while starting on port {self.port}.\n"
                                     f"Last output ({self.log_path}):\n{tail(self.log_path)}")
                try:
                    body = client.post(self.rpc_url, json=payload).json()
                    if int(body["result"], 16) == self.chain_id and self._proc.poll() is None:
                        return
                except (httpx.HTTPError, ValueError, KeyError, TypeError):
                    pass
                if time.monotonic() > deadline:
                    raise AnvilError(f"anvil did not answer eth_chainId on {self.rpc_url} within "
                                     f"{self.startup_timeout:.0f} s.\nLast output ({self.log_path}):\n"
                                     f"{tail(self.log_path)}")
                time.sleep(0.05)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, wait up to `timeout`, then SIGKILL; always reaps the child. Idempotent."""
        with self._lock:
            self._terminate(timeout)
            _LIVE.discard(self)

    def _terminate(self, timeout: float = 5.0) -> None:
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                try:
                    proc.terminate()
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=timeout)
                except ProcessLookupError:
                    pass
            else:
                proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log_fh is not None:
            try:
                self._log_fh.close()
            finally:
                self._log_fh = None

    def output_tail(self, lines: int = 20) -> str:
        return tail(self.log_path, lines)

    def __enter__(self) -> "AnvilProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __del__(self) -> None:  # last resort; stop() is the API
        try:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait(timeout=2)
        except Exception:  # noqa: BLE001
            pass


@atexit.register
def _stop_all() -> None:
    for node in list(_LIVE):
        try:
            node.stop(timeout=2.0)
        except Exception:  # noqa: BLE001
            pass
