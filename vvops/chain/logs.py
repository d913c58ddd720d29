"""Event logs: `eth_getLogs` over adaptive block ranges, decoded with eth_abi directly.

Ranges start large and are halved when the node refuses one (range or result-count limits, which
providers phrase differently) or the request times out; after a success the range grows back. Never
block by block: on ~2,000 events that costs 5 s instead of 30 ms (field notes).

Decoding: an `EventDecoder` is built once per ABI; indexed static values are read from their topic and
the data words go through one eth_abi decode per log (no web3 contract layer, no `process_log`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable

from eth_abi import decode
from eth_utils import keccak, to_checksum_address

from vvops.chain.rpc import RpcClient, RpcError, RpcUnavailable

# Phrases nodes and providers use when a getLogs range or result set is too large.
_TOO_LARGE = ("range", "too large", "too many", "limit", "exceed", "more than", "10000", "timeout", "timed out",
              "response size", "query returned")


def is_range_error(exc: Exception) -> bool:
    """Whether an eth_getLogs failure means "ask for fewer blocks" rather than a broken request."""
    if isinstance(exc, RpcUnavailable):
        return "timeout" in str(exc)
    if isinstance(exc, RpcError):
        text = str(exc).lower()
        return any(phrase in text for phrase in _TOO_LARGE)
    return False


@dataclass
class LogFetchStats:
    requests: int = 0
    halvings: int = 0
    ranges: list[tuple[int, int]] = field(default_factory=list)


def fetch_logs(
    rpc: RpcClient,
    *,
    address: str | list[str],
    from_block: int,
    to_block: int,
    topics: list[Any] | None = None,
    initial_range: int = 10_000,
    max_range: int = 100_000,
    stats: LogFetchStats | None = None,
) -> list[dict[str, Any]]:
    """All logs of `address` in [from_block, to_block], in chain order, asking for adaptive block ranges."""
    stats = stats if stats is not None else LogFetchStats()
    logs: list[dict[str, Any]] = []
    span = max(1, initial_range)
    start = from_block
    while start <= to_block:
        end = min(to_block, start + span - 1)
        query: dict[str, Any] = {"address": address, "fromBlock": hex(start), "toBlock": hex(end)}
        if topics:
            query["topics"] = topics
        stats.requests += 1
        try:
            chunk = rpc.call("eth_getLogs", [query])
        except (RpcError, RpcUnavailable) as exc:
            if not is_range_error(exc) or end == start:
                raise
            span = max(1, (end - start + 1) // 2)
            stats.halvings += 1
            continue
        stats.ranges.append((start, end))
        logs.extend(chunk)
        start = end + 1
        span = min(max_range, span * 2)
    return logs


@lru_cache(maxsize=65536)
def _checksum(raw_hex: str) -> str:
    return to_checksum_address(raw_hex)


def _topic_value(typ: str, topic: str) -> Any:
    if typ == "address":
        return _checksum("0x" + topic[-40:])
    if typ.startswith("uint"):
        return int(topic, 16)
    if typ == "bool":
        return int(topic, 16) != 0
    if typ.startswith("int") or typ.startswith("bytes") and typ != "bytes":
        return decode([typ], bytes.fromhex(topic[2:]))[0]
    return topic  # dynamic indexed values (string, bytes, arrays, tuples) are stored as their hash


@dataclass(frozen=True)
class Event:
    """One decoded log (args by name) with where it happened."""

    name: str
    address: str
    args: dict[str, Any]
    block_number: int
    transaction_hash: str
    log_index: int


class EventDecoder:
    """Decode raw JSON-RPC logs of the events in an ABI (list of ABI dicts)."""

    def __init__(self, abi: Iterable[dict[str, Any]]):
        self._events: dict[str, tuple[str, list[tuple[str, str]], list[str], list[str]]] = {}
        for item in abi:
            if item.get("type") != "event" or item.get("anonymous"):
                continue
            types = [_type(p) for p in item["inputs"]]
            topic0 = "0x" + keccak(text=f"{item['name']}({','.join(types)})").hex()
            indexed = [(p["name"], t) for p, t in zip(item["inputs"], types) if p.get("indexed")]
            plain_names = [p["name"] for p in item["inputs"] if not p.get("indexed")]
            plain_types = [t for p, t in zip(item["inputs"], types) if not p.get("indexed")]
            self._events[topic0] = (item["name"], indexed, plain_names, plain_types)

    def topic(self, name: str) -> str:
        for topic0, (event_name, *_rest) in self._events.items():
            if event_name == name:
                return topic0
        raise KeyError(f"no event {name!r} in ABI")

    def decode(self, log: dict[str, Any]) -> Event | None:
        topics = log.get("topics") or []
        spec = self._events.get(topics[0].lower()) if topics else None
        if spec is None:
            return None
        name, indexed, plain_names, plain_types = spec
        args = {arg: _topic_value(typ, topic) for (arg, typ), topic in zip(indexed, topics[1:])}
        if plain_types:
            data = log.get("data") or "0x"
            values = decode(plain_types, bytes.fromhex(data[2:]))
            for arg, typ, value in zip(plain_names, plain_types, values):
                args[arg] = _checksum(value) if typ == "address" else value
        return Event(name, _checksum(log["address"]), args, int(log["blockNumber"], 16), log["transactionHash"],
                     int(log["logIndex"], 16))

    def decode_all(self, logs: Iterable[dict[str, Any]]) -> list[Event]:
        return [e for e in map(self.decode, logs) if e is not None]


def _type(param: dict[str, Any]) -> str:
    typ = param["type"]
    if typ.startswith("tuple"):
        return f"({','.join(_type(c) for c in param['components'])}){typ[len('tuple'):]}"
    return typ
