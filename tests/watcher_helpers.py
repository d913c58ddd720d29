"""Helpers shared by the watcher tests: a block-time-1 devnet and a watcher running in a thread."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from sqlalchemy import select

from vvops.store import make_engine, session_scope
from vvops.store.models import Alert, ProcessedBlock, WatcherCheckpoint
from vvops.watcher import ListSink, load_watcher_config, run_watcher


def wait_until(pred: Callable[[], Any], timeout: float = 20.0, every: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class WatcherThread:
    """run_watcher in a daemon thread; `.stop()` sets the stop event and joins."""

    def __init__(self, store_url: str, rpc_urls: list[str], devnet: Any, *, sink: ListSink | None = None,
                 follower: dict[str, Any] | None = None, on_block: Callable | None = None, **kw: Any):
        self.store_url = store_url
        self.sink = sink or ListSink()
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.stats = None
        self.watcher = None
        wcfg = load_watcher_config(overrides={"follower": {"poll_interval_s": 0.2, "rpc_timeout_s": 1.0,
                                                           **(follower or {})}})
        self.kwargs = dict(environment="devnet", stop_event=self.stop_event, store_url=store_url, rpc_urls=rpc_urls,
                           contracts={"vault": devnet.contracts.vault, "timelock": devnet.contracts.timelock},
                           chain_id=devnet.chain_id, confirmations=kw.pop("confirmations", 1), watcher_config=wcfg,
                           sinks=[self.sink], emit_events=kw.pop("emit_events", False), on_block=on_block,
                           ready=lambda w: setattr(self, "watcher", w), **kw)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.stats = run_watcher(**self.kwargs)
        except BaseException as error:  # noqa: BLE001 - surfaced by the test
            self.error = error

    def start(self) -> "WatcherThread":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(15)
        assert not self.thread.is_alive(), "watcher did not stop"


class StoreView:
    def __init__(self, url: str, chain_id: int = 31337):
        self.engine = make_engine(url)
        self.chain_id = chain_id

    def alerts(self) -> list[Alert]:
        with session_scope(self.engine) as s:
            return list(s.scalars(select(Alert).order_by(Alert.id)))

    def processed(self) -> list[int]:
        with session_scope(self.engine) as s:
            return list(s.scalars(select(ProcessedBlock.number).where(ProcessedBlock.chain_id == self.chain_id)
                                  .order_by(ProcessedBlock.number)))

    def checkpoint(self) -> int | None:
        with session_scope(self.engine) as s:
            row = s.scalars(select(WatcherCheckpoint).where(WatcherCheckpoint.chain_id == self.chain_id)).first()
            return row.last_block if row else None
