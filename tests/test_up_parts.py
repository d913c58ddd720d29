"""The parts of `vvops up` that make it behave, each in seconds (tests/test_up.py runs the whole thing): the port
check that a TIME_WAIT socket does not fool, the console that shows only what `up` says while every process's
output goes to the log file, and `vvops status` naming the watcher and the block it has processed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from vvops.services import port_is_free


def _listener() -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


def test_a_listening_port_is_in_use_and_a_time_wait_leftover_is_not():
    server = _listener()
    port = server.getsockname()[1]
    assert not port_is_free(port)  # something listens: `up` must refuse it
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first, so its end of the connection stays in TIME_WAIT
    client.close()
    server.close()
    if not _time_wait_on(port):
        pytest.skip("the kernel left no TIME_WAIT socket on the port to test against")
    plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:  # what a plain bind (no SO_REUSEADDR) says about the same port: the check would refuse it
        plain.bind(("127.0.0.1", port))
        plain_refused = False
    except OSError:
        plain_refused = True
    finally:
        plain.close()
    assert plain_refused, "a plain bind accepted the port: the TIME_WAIT case is not exercised"
    assert port_is_free(port)  # nothing listens: `up` may start its server there at once


def _time_wait_on(port: int) -> bool:
    import psutil

    return any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_TIME_WAIT
               for c in psutil.net_connections(kind="tcp4"))


def test_the_console_shows_what_up_says_and_the_log_file_gets_every_process_output(tmp_path):
    log = tmp_path / "up.log"
    script = textwrap.dedent(f"""
        import subprocess, sys
        from pathlib import Path
        from vvops.console import ConsoleRedirect

        with ConsoleRedirect(Path({str(log)!r})) as console:
            console.say("ready in 1.0 s")
            print("a flow run's log line")
            print("a library warning", file=sys.stderr)
            subprocess.run([sys.executable, "-c", "print('a flow-run process prints')"], check=True)
            console.say("stopped in 0.5 s")
        print("after the redirect")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["ready in 1.0 s", "stopped in 0.5 s", "after the redirect"]
    assert done.stderr == ""
    assert log.read_text().splitlines() == ["a flow run's log line", "a library warning", "a flow-run process prints"]


def test_status_names_the_running_watcher_and_the_block_it_processed(tmp_path, monkeypatch, capsys):
    from vvops import cli
    from vvops.devnet import free_port
    from vvops.store import make_engine, migrate, session_scope
    from vvops.store.models import WatcherCheckpoint

    url = f"sqlite:///{tmp_path / 'ops.db'}"
    migrate(url)
    engine = make_engine(url)
    with session_scope(engine) as s:
        s.add(WatcherCheckpoint(chain_id=31337, watcher="devnet", last_block=42, last_block_hash="0x" + "ab" * 32,
                                genesis_hash="0x" + "cd" * 32))
    engine.dispose()
    monkeypatch.setenv("VVOPS_HOME", str(tmp_path))
    monkeypatch.setenv("VVOPS_STORE_URL", url)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    (tmp_path / "watcher-devnet.pid").write_text(f"{os.getpid()}\n")  # a live process stands for the watcher

    code = cli.main(["status", "--port", str(free_port())])
    report = json.loads(capsys.readouterr().out)
    assert code == 1  # no Prefect server answers on that port: status says so and exits 1
    assert report["prefect"]["healthy"] is False
    watcher = report["watcher"]
    assert watcher["running"] is True
    (chain,) = watcher["chains"]
    assert (chain["chain_id"], chain["processed_block"]) == (31337, 42)

    (tmp_path / "watcher-devnet.pid").write_text("999999999\n")  # no such process: not running
    cli.main(["status", "--port", str(free_port())])
    assert json.loads(capsys.readouterr().out)["watcher"]["running"] is False
