"""What a flow run needs from its surroundings: the validated config, the store, the chain connection.

Blocks registered by `vvops up` win (they are what an operator edits in the UI); without them the
same values come from config/, so a flow also runs under a bare test server.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import httpx

from prefect.logging import get_run_logger
from sqlalchemy.engine import Engine

from blocks.names import STORE_BLOCK, chain_block_name
from vvops.chain.rpc import RpcClient
from vvops.config import OpsConfig, load_config
from vvops.store.db import make_engine

@lru_cache(maxsize=8)
def ops_config(environment: str) -> OpsConfig:
    """The validated configuration for an environment (raises ConfigError with every problem)."""
    return load_config(environment=environment)


# Block documents read once per flow run (a run and each sub-flow), not once per task: 29 loads cost a daily-checks
# run ~2 s. A block edited in the UI applies from the next run; our own saves call `forget_blocks()`.
_BLOCKS: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
_BLOCKS_KEEP = 64
_HTTP: dict[float, httpx.Client] = {}
_HTTP_LOCK = threading.Lock()


def _current_run_id() -> str | None:
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return str(ctx.flow_run.id) if ctx is not None and ctx.flow_run is not None else None


def _load_block(block_type, name: str):
    run_id = _current_run_id()
    key = (run_id or "", block_type.__name__, name)
    if run_id is not None and key in _BLOCKS:
        return _BLOCKS[key]
    try:
        block = block_type.load(name, _sync=True)  # sync even when called under a running event loop (Playwright, Jupyter)
    except ValueError:  # Prefect raises ValueError when no block document has this name
        block = None
    if run_id is not None:
        _BLOCKS[key] = block
        while len(_BLOCKS) > _BLOCKS_KEEP:
            _BLOCKS.popitem(last=False)
    return block


def forget_blocks() -> None:
    """Drop the per-run block cache (after this process saved a block)."""
    _BLOCKS.clear()


def shared_http(timeout_s: float) -> httpx.Client:
    """One keep-alive HTTP connection pool per timeout for every RPC client of this process: a task's chain
    reads reuse connections instead of building a client (~20 ms) and a TCP connection each time."""
    with _HTTP_LOCK:
        client = _HTTP.get(timeout_s)
        if client is None:
            client = _HTTP[timeout_s] = httpx.Client(timeout=timeout_s, headers={"content-type": "application/json"})
        return client


def store_url() -> str:
    """The store block's URL when `vvops up` registered one, else config's store.url (VVOPS_STORE_URL wins)."""
    from blocks.store import OpsStore

    block = _load_block(OpsStore, STORE_BLOCK)
    if block is not None:
        return block.sqlalchemy_url()
    return load_config(environment=None).store.resolved_url().get_secret_value()


@lru_cache(maxsize=4)
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def store_engine() -> Engine:
    return _engine_for(store_url())


def rpc_urls_from_config(environment: str) -> list[str]:
    """The environment's RPC URLs in priority order with `from-devnet` and ${VAR} resolved."""
    return [u.get_secret_value() for u in ops_config(environment).env.resolve_rpc_urls(name=environment)]


# environment → RPC URL of the throwaway fork that reads of that environment go to (see `reading_from`)
_FORK_RPC: ContextVar[dict[str, str]] = ContextVar("vv_fork_rpc", default={})
FORK_READ_TIMEOUT_S = 30.0  # a read on a fork may fetch the state it touches from the forked chain


@contextmanager
def reading_from(environment: str, fork_rpc_url: str) -> Iterator[None]:
    """Inside the block, `rpc_client(environment)` talks to a throwaway fork of that environment's chain, so the
    tasks that read state and health (`read_contract_state.fn`, ...) read the simulated chain, unchanged."""
    token = _FORK_RPC.set({**_FORK_RPC.get(), environment: fork_rpc_url})
    try:
        yield
    finally:
        _FORK_RPC.reset(token)


def chain_rpc_urls(environment: str) -> tuple[list[str], float]:
    """The environment's RPC URLs in priority order (the chain block's, else config's) and the request timeout."""
    from blocks.chain import ChainConnection

    block = _load_block(ChainConnection, chain_block_name(environment))
    if block is not None:
        return block.urls(), block.request_timeout_s
    get_run_logger().info("no %s block registered: using RPC URLs from config", chain_block_name(environment))
    return rpc_urls_from_config(environment), ops_config(environment).env.rpc_timeout_s


def rpc_client(environment: str) -> RpcClient:
    """A failover JSON-RPC client for the environment's chain: the chain block's URLs, else config's; inside
    `reading_from(environment, ...)` the simulation fork's RPC instead. Clients share one keep-alive connection
    pool per timeout (`shared_http`)."""
    fork_url = _FORK_RPC.get().get(environment)
    if fork_url:
        return RpcClient([fork_url], timeout_s=FORK_READ_TIMEOUT_S, retries_per_url=0)
    urls, timeout_s = chain_rpc_urls(environment)
    return RpcClient(urls, timeout_s=timeout_s, shared_http=shared_http(float(timeout_s)))
