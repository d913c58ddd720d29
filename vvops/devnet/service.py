"""Devnet lifecycle for the CLI: `vvops devnet up | down | status`, and an in-process devnet for `vvops up`.

Files under the state dir (`.vvops/`, moved by VVOPS_HOME):
- `devnet.json`            what runs where (see DevnetInfo); kept after `down` as a record
- `anvil.pid`              pid of the anvil node (removed when it stops)
- `devnet-supervisor.pid`  pid of the `devnet up` process that owns anvil and the activity (foreground mode)
- `anvil.log`, `devnet.log` anvil's output; the background supervisor's output
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import psutil

from vvops import paths
from vvops.devnet.activity import ActivityThread
from vvops.devnet.anvil import AnvilProcess, port_is_free, tail
from vvops.devnet.chain import Chain, RpcError
from vvops.devnet.deploy import DevnetInfo, deploy_devnet, load_devnet_file, write_devnet_file

DEFAULT_PORT = 8545
DEFAULT_BLOCK_TIME = 2.0  # seconds: blocks (and confirmations) advance without traffic, like a real chain
PROTOCOLS = ("veritasvault", "openzeppelin")  # ours (the default) and the OpenZeppelin reference protocol

Out = Callable[[str], None]


class DevnetError(RuntimeError):
    """The devnet cannot start or stop; the message says why and what to do."""


def anvil_pid_file() -> Path:
    return paths.state_dir() / "anvil.pid"


def supervisor_pid_file() -> Path:
    return paths.state_dir() / "devnet-supervisor.pid"


def anvil_log_file() -> Path:
    return paths.state_dir() / "anvil.log"


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _write_pid(path: Path, pid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid}\n")


def _remove(path: Path, only_if_pid: int | None = None) -> None:
    if only_if_pid is not None and _read_pid(path) != only_if_pid:
        return  # somebody else's file now
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _alive(pid: int | None, name_contains: str | None = None) -> bool:
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return name_contains is None or name_contains in proc.name().lower()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def running_anvil_pid() -> int | None:
    """The pid in anvil.pid if that process is alive and is anvil (else None)."""
    pid = _read_pid(anvil_pid_file())
    return pid if _alive(pid, "anvil") else None


def _check_can_start(port: int | None) -> None:
    pid = running_anvil_pid()
    if pid is not None:
        raise DevnetError(f"a devnet is already running (anvil pid {pid}, see {paths.devnet_file()}): "
                          f"stop it with `vvops devnet down` first")
    _remove(anvil_pid_file())  # stale
    _remove(supervisor_pid_file())
    if port is not None and not port_is_free(port):
        raise DevnetError(f"port {port} on 127.0.0.1 is already in use: choose another with --port")


def start_devnet_background(
    *,
    port: int | None = DEFAULT_PORT,
    block_time: float | None = DEFAULT_BLOCK_TIME,
    activity_interval: float | None = 2.0,
    timelock_delay: int = 3600,
    seed: int | None = None,
    write_files: bool = True,
    extra_anvil_args: tuple[str, ...] = (),
    governance: str = "eoa",
    protocol: str = "veritasvault",
) -> tuple[AnvilProcess, DevnetInfo, ActivityThread | None]:
    """Start anvil, deploy, (write devnet.json + anvil.pid), start the activity thread; return all three.
    The caller owns them: stop with `stop_devnet_background(node, activity)`. No activity if interval is None/0.
    The contracts are deployed with automine (fast), then the node switches to a block every `block_time` s
    (None/0: keep automine, one block per transaction). `protocol="openzeppelin"` deploys the OpenZeppelin
    reference protocol instead of ours (no synthetic activity for it yet)."""
    if protocol not in PROTOCOLS:
        raise DevnetError(f"unknown protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    if write_files:
        _check_can_start(port)
    elif port is not None and not port_is_free(port):
        raise DevnetError(f"port {port} on 127.0.0.1 is already in use")
    node = AnvilProcess(port, extra_args=extra_anvil_args, log_path=anvil_log_file() if write_files else None)
    node.start()
    try:
        if protocol == "openzeppelin":
            from vvops.devnet.openzeppelin import deploy_openzeppelin

            info = deploy_openzeppelin(node.rpc_url, timelock_delay=timelock_delay, governance=governance)
        else:
            info = deploy_devnet(node.rpc_url, timelock_delay=timelock_delay, governance=governance)
        if block_time:
            with Chain(node.rpc_url) as chain:
                chain.request("evm_setIntervalMining", [max(1, round(block_time))])
            node.block_time = block_time
        if write_files:
            if protocol == "openzeppelin":
                from vvops.devnet.openzeppelin import write_openzeppelin_devnet_file

                write_openzeppelin_devnet_file(info)
            else:
                write_devnet_file(info)
            _write_pid(anvil_pid_file(), node.pid)
        activity = None
        if activity_interval and protocol != "openzeppelin":
            activity = ActivityThread(node.rpc_url, info, seed=seed, interval_s=activity_interval)
            activity.start()
    except BaseException:
        node.stop()
        if write_files:
            _remove(anvil_pid_file(), node.pid)
        raise
    return node, info, activity


def stop_devnet_background(node: AnvilProcess, activity: ActivityThread | None = None) -> None:
    """Stop the activity thread and anvil; remove anvil.pid if it is this node's."""
    pid = node.pid
    if activity is not None:
        activity.stop(timeout=3.0)
    node.stop()
    if pid is not None:
        _remove(anvil_pid_file(), pid)


def devnet_up(
    *,
    port: int = DEFAULT_PORT,
    block_time: float | None = DEFAULT_BLOCK_TIME,
    activity_interval: float | None = 2.0,
    foreground: bool = True,
    stop_event: threading.Event | None = None,
    timelock_delay: int = 3600,
    seed: int | None = None,
    out: Out = print,
    startup_timeout: float = 60.0,
    governance: str = "eoa",
    protocol: str = "veritasvault",
) -> DevnetInfo:
    """Start a devnet. Foreground: run until `stop_event` is set or SIGINT/SIGTERM arrives, then stop anvil and
    remove the pid files; returns the DevnetInfo. Background (foreground=False): spawn a detached supervisor
    process (`python -m vvops.devnet up`), wait until its devnet answers and return its DevnetInfo."""
    if not foreground:
        return _spawn_background(port=port, block_time=block_time, activity_interval=activity_interval,
                                 timelock_delay=timelock_delay, seed=seed, out=out, timeout=startup_timeout,
                                 governance=governance, protocol=protocol)
    stop_event = stop_event or threading.Event()
    restore = _install_signal_handlers(stop_event)
    node = activity = None
    try:
        node, info, activity = start_devnet_background(
            port=port, block_time=block_time, activity_interval=activity_interval,
            timelock_delay=timelock_delay, seed=seed, write_files=True, governance=governance, protocol=protocol)
        _write_pid(supervisor_pid_file(), os.getpid())
        mining = f"a block every {block_time:g} s" if block_time else "automine"
        out(info.summary())
        out(f"anvil pid {node.pid} ({mining}); log {node.log_path}")
        out(f"wrote {paths.devnet_file()}")
        out(f"synthetic activity every {activity_interval:g} s" if activity is not None else "no synthetic activity")
        out("running; stop with Ctrl-C or `vvops devnet down`")
        while not stop_event.wait(0.5):
            if not node.running:
                out(f"anvil exited unexpectedly; last output:\n{node.output_tail()}")
                break
        return info
    finally:
        if node is not None:
            out("stopping devnet ...")
            stop_devnet_background(node, activity)
            out("devnet stopped")
        _remove(supervisor_pid_file(), os.getpid())
        restore()


def _install_signal_handlers(stop_event: threading.Event) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}

    def handler(signum, frame):  # noqa: ARG001
        stop_event.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def _spawn_background(*, port: int, block_time: float | None, activity_interval: float | None,
                      timelock_delay: int, seed: int | None, out: Out, timeout: float,
                      governance: str = "eoa", protocol: str = "veritasvault") -> DevnetInfo:
    _check_can_start(port)
    cmd = [sys.executable, "-m", "vvops.devnet", "up", "--port", str(port), "--timelock-delay", str(timelock_delay),
           "--activity-interval", str(activity_interval or 0), "--governance", governance, "--protocol", protocol]
    cmd += ["--block-time", str(block_time or 0)]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    log_path = paths.state_dir() / "devnet.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with open(log_path, "ab") as log_fh:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_fh, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DevnetError(f"the devnet process exited with code {proc.returncode}; "
                              f"last output ({log_path}):\n{tail(log_path)}")
        if _read_pid(supervisor_pid_file()) == proc.pid and paths.devnet_file().exists() \
                and paths.devnet_file().stat().st_mtime >= started - 1:
            if protocol == "openzeppelin":
                info = json.loads(paths.devnet_file().read_text(encoding="utf-8"))
                out(f"OpenZeppelin protocol at {info['rpc_url']}: {', '.join(sorted(info['contracts']))}"
                    + (f"; Safe {info['safe']['address']} holds the timelock's proposer role" if info.get("safe")
                       else ""))
            else:
                info = load_devnet_file()
                out(info.summary())
            out(f"devnet running in the background (supervisor pid {proc.pid}); log {log_path}")
            return info
        time.sleep(0.1)
    proc.terminate()
    raise DevnetError(f"the devnet did not come up within {timeout:.0f} s; last output ({log_path}):\n"
                      f"{tail(log_path)}")


def devnet_down(*, timeout: float = 15.0, out: Out = print) -> dict:
    """Stop a devnet started by another process (via the pid files). Returns {"stopped", "message", "pid"}."""
    anvil_pid = _read_pid(anvil_pid_file())
    sup_pid = _read_pid(supervisor_pid_file())
    if not _alive(anvil_pid, "anvil"):
        _remove(anvil_pid_file())
        _remove(supervisor_pid_file())
        msg = f"no devnet is running (no live anvil pid in {anvil_pid_file()})"
        out(msg)
        return {"stopped": False, "message": msg, "pid": None}
    # Prefer asking the supervisor (it stops activity first and cleans up), if it really is anvil's parent.
    if _alive(sup_pid) and _parent_pid(anvil_pid) == sup_pid:
        _signal(sup_pid, signal.SIGTERM)
        if _wait_gone(anvil_pid, timeout):
            _wait_gone(sup_pid, timeout)
    if _alive(anvil_pid, "anvil"):
        _signal(anvil_pid, signal.SIGTERM)
        if not _wait_gone(anvil_pid, 5.0):
            _signal(anvil_pid, signal.SIGKILL)
            _wait_gone(anvil_pid, 5.0)
    _remove(anvil_pid_file())
    _remove(supervisor_pid_file())
    msg = f"devnet stopped (anvil pid {anvil_pid})"
    out(msg)
    return {"stopped": True, "message": msg, "pid": anvil_pid}


def _parent_pid(pid: int) -> int | None:
    try:
        return psutil.Process(pid).ppid()
    except psutil.Error:
        return None


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def devnet_status() -> dict:
    """{"running", "pid", "supervisor_pid", "rpc_url", "chain_id", "block_number", "devnet_file", "contracts",
    "message"} — `running` means the anvil from anvil.pid is alive and answers JSON-RPC."""
    status: dict = {"running": False, "pid": running_anvil_pid(), "supervisor_pid": None, "rpc_url": None,
                    "chain_id": None, "block_number": None, "devnet_file": str(paths.devnet_file()),
                    "contracts": None, "message": ""}
    sup = _read_pid(supervisor_pid_file())
    status["supervisor_pid"] = sup if _alive(sup) else None
    rpc_url = None
    try:
        data = json.loads(paths.devnet_file().read_text(encoding="utf-8"))
        rpc_url, status["rpc_url"], status["contracts"] = data["rpc_url"], data["rpc_url"], data["contracts"]
        status["protocol"] = data.get("protocol", "veritasvault")
    except FileNotFoundError:
        status["message"] = f"{paths.devnet_file()} does not exist: start a devnet with `vvops devnet up`"
    except (ValueError, KeyError, TypeError) as error:
        status["message"] = f"{paths.devnet_file()} is unreadable ({error}): run `vvops devnet up` again"
    if status["pid"] is None:
        status["message"] = status["message"] or "no devnet is running"
        return status
    if rpc_url is not None:
        try:
            with Chain(rpc_url, timeout=2.0) as chain:
                status["chain_id"] = chain.chain_id()
                status["block_number"] = chain.block_number()
            status["running"] = True
            status["message"] = f"devnet running at {rpc_url} (anvil pid {status['pid']})"
        except RpcError as error:
            status["message"] = f"anvil pid {status['pid']} is alive but {rpc_url} does not answer: {error}"
    else:
        status["message"] = f"anvil pid {status['pid']} is alive but {paths.devnet_file()} is missing"
    return status
