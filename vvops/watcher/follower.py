"""Block following for the watcher: new-head notifications (WebSocket `newHeads` where the node offers it),
HTTP JSON-RPC reads with failover (`vvops.chain.rpc.RpcClient`), and block fetching for a range:
headers (batched `eth_getBlockByNumber` with transactions), logs of the watched contracts (one `eth_getLogs`
per range, the range halved when the node refuses or times out and grown back after successes), receipts of
the transactions sent to watched contracts, and the TVL at the end of every block (one `totalAssets` call
at the range start, then Deposit/Withdraw deltas).

The WebSocket is only a wake-up signal: every read goes over HTTP, so a silent or dead WebSocket costs at most
one poll interval, and the RPC failover order is the same for both.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Callable

from eth_utils import to_checksum_address

from vvops.chain.rpc import RpcClient, RpcError, RpcUnavailable, endpoint_label
from vvops.chain.abi import Abi, contract_abi, selector
from vvops.watcher.conditions import BlockData, ChainLog, ChainTx

log = logging.getLogger(__name__)

# ERC-1967 proxy events that are not in every artifact's ABI
EXTRA_EVENTS: list[dict[str, Any]] = [
    {"type": "event", "name": "AdminChanged", "anonymous": False, "inputs": [
        {"name": "previousAdmin", "type": "address", "indexed": False},
        {"name": "newAdmin", "type": "address", "indexed": False}]},
    {"type": "event", "name": "BeaconUpgraded", "anonymous": False, "inputs": [
        {"name": "beacon", "type": "address", "indexed": True}]},
]
_EXTRA = Abi(EXTRA_EVENTS)

TOO_MANY_HINTS = ("too many", "limit", "range", "exceed", "query returned more", "timeout", "timed out", "response size")


def ws_url_for(http_url: str) -> str | None:
    if http_url.startswith("https://"):
        return "wss://" + http_url[len("https://"):]
    if http_url.startswith("http://"):
        return "ws://" + http_url[len("http://"):]
    if http_url.startswith(("ws://", "wss://")):
        return http_url
    return None


class HeadNotifier:
    """Subscribes to `newHeads` over WebSocket in a background thread (asyncio + web3 `AsyncWeb3(WebSocketProvider)`)
    and sets `event` on every head. Tries the URLs in failover order; a subscription silent for `stale_after_s`
    (or a dropped socket) moves to the next URL. `connected_url` is the label of the live subscription, or None."""

    def __init__(self, urls: list[str], *, stale_after_s: float = 5.0, connect_timeout_s: float = 2.0):
        self.urls = [u for u in (ws_url_for(x) for x in urls) if u]
        self.stale_after_s = stale_after_s
        self.connect_timeout_s = connect_timeout_s
        self.event = threading.Event()
        self.heads = 0
        self.connected_url: str | None = None
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "HeadNotifier":
        if self.urls and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vv-watcher-ws", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wait(self, timeout: float) -> bool:
        """Block until a head arrives (True) or `timeout` passes (False); clears the flag."""
        got = self.event.wait(timeout)
        self.event.clear()
        return got

    def _run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        i = 0
        while not self._stop.is_set():
            url = self.urls[i % len(self.urls)]
            try:
                await self._subscribe(url)
            except Exception as error:  # noqa: BLE001 - any socket problem: next URL
                self.failures += 1
                log.debug("newHeads on %s: %s", endpoint_label(url), error)
            self.connected_url = None
            i += 1
            if not self._stop.is_set():
                await asyncio.sleep(0.2 if i % len(self.urls) else 1.0)

    async def _subscribe(self, url: str) -> None:
        from web3 import AsyncWeb3, WebSocketProvider

        class _Provider(WebSocketProvider):
            # web3 installs SIGINT/SIGTERM handlers on connect: impossible off the main thread, and the
            # process (vvops up) owns its signals; the watcher disconnects through its stop event instead.
            def _set_signal_handlers(self) -> None:
                return None

        provider = _Provider(url, websocket_kwargs={"open_timeout": self.connect_timeout_s})
        w3 = await asyncio.wait_for(AsyncWeb3(provider), timeout=self.connect_timeout_s + 1)
        try:
            await asyncio.wait_for(w3.eth.subscribe("newHeads"), timeout=self.connect_timeout_s)
            self.connected_url = endpoint_label(url)
            stream = w3.socket.process_subscriptions().__aiter__()
            while not self._stop.is_set():
                try:
                    await asyncio.wait_for(stream.__anext__(), timeout=min(self.stale_after_s, 0.5))
                except asyncio.TimeoutError:
                    self._silent = getattr(self, "_silent", 0.0) + min(self.stale_after_s, 0.5)
                    if self._silent >= self.stale_after_s:
                        self._silent = 0.0
                        raise TimeoutError(f"no head for {self.stale_after_s:.0f} s") from None
                    continue
                self._silent = 0.0
                self.heads += 1
                self.event.set()
        finally:
            try:
                await asyncio.wait_for(w3.provider.disconnect(), timeout=1.0)
            except Exception:  # noqa: BLE001
                pass


def _int(v: Any) -> int:
    return int(v, 16) if isinstance(v, str) else int(v)


class BlockFetcher:
    """Reads blocks, logs, receipts and TVL of the watched contracts over HTTP with failover."""

    def __init__(self, rpc: RpcClient, contracts: dict[str, str], *, artifacts: dict[str, str] | None = None,
                 tvl_contract: str | None = "vault", max_log_range: int = 5000, header_batch: int = 500):
        self.rpc = rpc
        self.contracts = {name: to_checksum_address(addr) for name, addr in contracts.items()}
        self.by_address = {addr.lower(): name for name, addr in self.contracts.items()}
        artifacts = artifacts or {}
        self.abis: dict[str, Abi] = {}
        for name in self.contracts:
            art = artifacts.get(name) or {"vault": "VaultV1", "timelock": "Timelock"}.get(name)
            self.abis[name] = contract_abi(art) if art else Abi([])
        # calldata selector -> function name per contract, for the per-function metrics
        self.functions: dict[str, dict[str, str]] = {
            name: {"0x" + selector(items[0]).hex(): items[0]["name"] for key, items in abi.functions.items() if "(" in key}
            for name, abi in self.abis.items()}
        self.tvl_contract = tvl_contract if tvl_contract in self.contracts else None
        self.max_log_range = max_log_range
        self.log_range = max_log_range
        self.header_batch = header_batch
        self.stats = {"get_logs": 0, "log_range_shrinks": 0, "logs": 0, "blocks": 0}
        self._total_assets = contract_abi("VaultV1").encode_call("totalAssets")

    # ------------------------------------------------------------------ reads
    def head(self) -> int:
        return _int(self.rpc.call("eth_blockNumber"))

    def chain_id(self) -> int:
        return _int(self.rpc.call("eth_chainId"))

    def header(self, number: int) -> dict[str, Any] | None:
        return self.rpc.call("eth_getBlockByNumber", [hex(number), False])

    def headers(self, numbers: list[int]) -> list[dict[str, Any] | None]:
        return self.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])

    def tvl(self, block: int) -> int | None:
        if self.tvl_contract is None or block < 0:
            return None
        try:
            raw = self.rpc.call("eth_call", [{"to": self.contracts[self.tvl_contract],
                                              "data": "0x" + self._total_assets.hex()}, hex(block)])
        except RpcError:
            return None  # not deployed yet at that block
        return int(raw, 16) if raw and raw != "0x" else None

    def logs(self, start: int, end: int) -> list[dict[str, Any]]:
        """Every log of the watched contracts in [start, end], in as few `eth_getLogs` as the node allows."""
        out: list[dict[str, Any]] = []
        cur = start
        while cur <= end:
            hi = min(end, cur + self.log_range - 1)
            try:
                part = self.rpc.call("eth_getLogs", [{"fromBlock": hex(cur), "toBlock": hex(hi),
                                                      "address": list(self.contracts.values())}])
            except (RpcError, RpcUnavailable) as error:
                text = str(error).lower()
                if hi > cur and (isinstance(error, RpcUnavailable) or any(h in text for h in TOO_MANY_HINTS)):
                    self.log_range = max(1, (hi - cur + 1) // 2)
                    self.stats["log_range_shrinks"] += 1
                    continue
                raise
            self.stats["get_logs"] += 1
            out += part
            cur = hi + 1
            if self.log_range < self.max_log_range:
                self.log_range = min(self.max_log_range, self.log_range * 2)
        return out

    def fetch(self, start: int, end: int, *, on_progress: Callable[[int], None] | None = None) -> list[BlockData]:
        """BlockData for every block in [start, end] (inclusive), in order."""
        if end < start:
            return []
        numbers = list(range(start, end + 1))
        raw_blocks: list[dict[str, Any]] = []
        raw_logs: list[dict[str, Any]] | None = None
        tvl_before: int | None = None
        if len(numbers) <= min(self.header_batch, self.log_range):
            # live following: blocks, logs and the starting TVL in one round trip
            calls = [("eth_getBlockByNumber", [hex(n), True]) for n in numbers]
            calls.append(("eth_getLogs", [{"fromBlock": hex(start), "toBlock": hex(end),
                                            "address": list(self.contracts.values())}]))
            if self.tvl_contract and start > 0:
                calls.append(("eth_call", [{"to": self.contracts[self.tvl_contract],
                                            "data": "0x" + self._total_assets.hex()}, hex(start - 1)]))
            try:
                got = self.rpc.batch(calls)
            except RpcError:
                got = None  # e.g. TVL contract not deployed yet at start - 1: the range-by-range path below
            if got is not None:
                raw_blocks = got[:len(numbers)]
                raw_logs = got[len(numbers)]
                self.stats["get_logs"] += 1
                if self.tvl_contract and start > 0:
                    tvl_before = int(got[-1], 16) if got[-1] and got[-1] != "0x" else None
                if any(b is None for b in raw_blocks):
                    missing = next(n for n, b in zip(numbers, raw_blocks) if b is None)
                    raise RpcError("eth_getBlockByNumber", {"message": f"block {missing} not available yet"})
        if raw_logs is None:
            for i in range(0, len(numbers), self.header_batch):
                chunk = numbers[i:i + self.header_batch]
                got = self.rpc.batch([("eth_getBlockByNumber", [hex(n), True]) for n in chunk])
                if any(b is None for b in got):
                    missing = next(n for n, b in zip(chunk, got) if b is None)
                    raise RpcError("eth_getBlockByNumber", {"message": f"block {missing} not available yet"})
                raw_blocks += got
            raw_logs = self.logs(start, end)
        # transactions to watched contracts, and their receipts
        watched_txs = [(b, tx) for b in raw_blocks for tx in b.get("transactions", [])
                       if isinstance(tx, dict) and (tx.get("to") or "").lower() in self.by_address]
        statuses: dict[str, bool] = {}
        gas_used: dict[str, int] = {}
        for i in range(0, len(watched_txs), 200):
            chunk = watched_txs[i:i + 200]
            receipts = self.rpc.batch([("eth_getTransactionReceipt", [tx["hash"]]) for _, tx in chunk])
            for (_, tx), r in zip(chunk, receipts):
                statuses[tx["hash"]] = bool(r) and _int(r.get("status", "0x1")) == 1
                gas_used[tx["hash"]] = _int(r.get("gasUsed", 0)) if r else 0
        logs_by_block: dict[int, list[ChainLog]] = {}
        block_hash = {_int(b["number"]): b["hash"] for b in raw_blocks}
        for lg in raw_logs:
            if lg.get("removed"):
                continue
            n = _int(lg["blockNumber"])
            if block_hash.get(n) != lg.get("blockHash"):
                raise RpcError("eth_getLogs", {"message": f"log of block {n} has another hash (reorg in progress)"})
            name = self.by_address.get(lg["address"].lower())
            if name is None:
                continue
            decoded = self.abis[name].decode_log(lg) or _EXTRA.decode_log(lg)
            if decoded is None:
                continue
            logs_by_block.setdefault(n, []).append(ChainLog(
                contract=name, address=decoded.address, event=decoded.name, args=decoded.args,
                tx_hash=lg["transactionHash"], log_index=_int(lg["logIndex"])))
        tvl = tvl_before if tvl_before is not None else (self.tvl(start - 1) if self.tvl_contract else None)
        if tvl is None and self.tvl_contract:
            tvl = self.tvl(start)  # contract deployed within the range: start from its first state
            first = logs_by_block.get(start, [])
            if tvl is not None:
                tvl -= _delta(first, self.tvl_contract)
        blocks = []
        for b in raw_blocks:
            n = _int(b["number"])
            block_logs = tuple(sorted(logs_by_block.get(n, []), key=lambda l: l.log_index))
            if tvl is not None:
                tvl += _delta(block_logs, self.tvl_contract)
            txs = tuple(ChainTx(hash=tx["hash"], sender=to_checksum_address(tx["from"]), to=to_checksum_address(tx["to"]),
                                contract=self.by_address[tx["to"].lower()], ok=statuses.get(tx["hash"], True),
                                function=self._function(tx), gas_used=gas_used.get(tx["hash"], 0))
                        for bb, tx in watched_txs if bb is b)
            blocks.append(BlockData(number=n, hash=b["hash"], parent_hash=b["parentHash"], timestamp=_int(b["timestamp"]),
                                    logs=block_logs, txs=txs,
                                    tvl={self.tvl_contract: tvl} if tvl is not None else {}))
        self.stats["blocks"] += len(blocks)
        self.stats["logs"] += len(raw_logs)
        if on_progress:
            on_progress(end)
        return blocks


    def _function(self, tx: dict[str, Any]) -> str:
        data = tx.get("input") or tx.get("data") or "0x"
        if len(data) < 10:
            return "receive"   # plain transfer: no calldata
        return self.functions.get(self.by_address[tx["to"].lower()], {}).get(data[:10].lower(), "unknown")


def _delta(logs: Any, contract: str | None) -> int:
    total = 0
    for lg in logs:
        if lg.contract != contract:
            continue
        if lg.event == "Deposit":
            total += int(lg.args.get("assets", 0))
        elif lg.event == "Withdraw":
            total -= int(lg.args.get("assets", 0))
    return total
