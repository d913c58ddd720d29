"""ABI encoding and decoding with eth_abi directly (fast; no web3 contract layer).

- `Abi(abi_list)`: function/event/error lookup by name, selector and topic; `encode_call`, `decode_output`,
  `decode_log`, `decode_error`.
- `decode_revert(data)`: turn revert bytes into a `DecodedError` using the errors of every artifact
  (plus the builtin Error(string) and Panic(uint256)); custom errors come back from the node as bare selectors.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import eth_abi
from eth_utils import keccak, to_checksum_address

ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")
PANIC_SELECTOR = bytes.fromhex("4e487b71")


def param_type(param: dict[str, Any]) -> str:
    """The canonical ABI type string of one input/output (expands tuples)."""
    typ = param["type"]
    if typ.startswith("tuple"):
        inner = ",".join(param_type(c) for c in param["components"])
        return f"({inner}){typ[len('tuple'):]}"
    return typ


def signature(item: dict[str, Any]) -> str:
    return f"{item['name']}({','.join(param_type(p) for p in item.get('inputs', []))})"


def selector(item_or_signature: dict[str, Any] | str) -> bytes:
    sig = item_or_signature if isinstance(item_or_signature, str) else signature(item_or_signature)
    return keccak(text=sig)[:4]


def event_topic(item_or_signature: dict[str, Any] | str) -> bytes:
    sig = item_or_signature if isinstance(item_or_signature, str) else signature(item_or_signature)
    return keccak(text=sig)


def _to_bytes(data: bytes | str | None) -> bytes:
    if data is None:
        return b""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    text = data[2:] if data.startswith(("0x", "0X")) else data
    return bytes.fromhex(text)


def _normalize(typ: str, value: Any) -> Any:
    """Checksum addresses (recursively through tuples and arrays)."""
    if typ.endswith("]"):
        base = typ[: typ.rindex("[")]
        return [_normalize(base, v) for v in value]
    if typ.startswith("("):
        inner = split_types(typ[1:-1])
        return tuple(_normalize(t, v) for t, v in zip(inner, value))
    if typ == "address":
        return to_checksum_address(value)
    return value


def split_types(inner: str) -> list[str]:
    """Split a comma-separated ABI type list at the top level only: "uint256,(address,bool)" → 2 types."""
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    if cur:
        parts.append(cur)
    return parts


@dataclass(frozen=True)
class DecodedError:
    """A revert decoded by selector. `name` is "Error" for require strings, "Panic" for panics,
    "<unknown 0x12345678>" when no ABI knows the selector, "" for an empty revert."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    selector: str = ""
    data: bytes = b""

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"{self.name}({inner})"


@dataclass(frozen=True)
class DecodedEvent:
    name: str
    args: dict[str, Any]
    address: str
    block_number: int | None = None
    transaction_hash: str | None = None
    log_index: int | None = None


class Abi:
    """Index of one contract ABI."""

    def __init__(self, abi: list[dict[str, Any]]):
        self.abi = abi
        self.functions: dict[str, list[dict[str, Any]]] = {}
        self.events_by_topic: dict[bytes, dict[str, Any]] = {}
        self.events_by_name: dict[str, dict[str, Any]] = {}
        self.errors_by_selector: dict[bytes, dict[str, Any]] = {}
        for item in abi:
            kind = item.get("type")
            if kind == "function":
                self.functions.setdefault(item["name"], []).append(item)
                self.functions.setdefault(signature(item), []).append(item)
            elif kind == "event":
                self.events_by_topic[event_topic(item)] = item
                self.events_by_name[item["name"]] = item
            elif kind == "error":
                self.errors_by_selector[selector(item)] = item

    def function(self, name: str) -> dict[str, Any]:
        """ABI item of function `name` (or full signature "name(types)" when overloaded)."""
        items = self.functions.get(name)
        if not items:
            raise KeyError(f"no function {name!r} in ABI")
        if len(items) > 1:
            raise KeyError(f"function {name!r} is overloaded: use its signature, e.g. {signature(items[0])!r}")
        return items[0]

    def encode_call(self, name: str, *args: Any) -> bytes:
        fn = self.function(name)
        types = [param_type(p) for p in fn.get("inputs", [])]
        if len(types) != len(args):
            raise TypeError(f"{signature(fn)} takes {len(types)} argument(s), got {len(args)}")
        return selector(fn) + eth_abi.encode(types, list(args))

    def decode_output(self, name: str, data: bytes | str) -> Any:
        """Decoded return value: a single value is unwrapped, several come back as a tuple."""
        fn = self.function(name)
        types = [param_type(p) for p in fn.get("outputs", [])]
        values = eth_abi.decode(types, _to_bytes(data))
        values = tuple(_normalize(t, v) for t, v in zip(types, values))
        return values[0] if len(values) == 1 else values

    def decode_log(self, log: dict[str, Any]) -> DecodedEvent | None:
        """Decode a JSON-RPC log dict (hex strings) if its topic0 is one of this ABI's events, else None."""
        topics = [_to_bytes(t) for t in log.get("topics", [])]
        if not topics or topics[0] not in self.events_by_topic:
            return None
        item = self.events_by_topic[topics[0]]
        indexed = [p for p in item["inputs"] if p.get("indexed")]
        plain = [p for p in item["inputs"] if not p.get("indexed")]
        args: dict[str, Any] = {}
        for p, topic in zip(indexed, topics[1:]):
            typ = param_type(p)
            if typ in ("string", "bytes") or typ.endswith("]") or typ.startswith("("):
                args[p["name"]] = topic  # dynamic indexed values are stored hashed
            else:
                args[p["name"]] = _normalize(typ, eth_abi.decode([typ], topic)[0])
        plain_types = [param_type(p) for p in plain]
        for p, typ, value in zip(plain, plain_types, eth_abi.decode(plain_types, _to_bytes(log.get("data")))):
            args[p["name"]] = _normalize(typ, value)
        return DecodedEvent(
            name=item["name"],
            args={p["name"]: args[p["name"]] for p in item["inputs"]},
            address=to_checksum_address(log["address"]),
            block_number=_maybe_int(log.get("blockNumber")),
            transaction_hash=log.get("transactionHash"),
            log_index=_maybe_int(log.get("logIndex")),
        )

    def decode_error(self, data: bytes | str) -> DecodedError | None:
        raw = _to_bytes(data)
        item = self.errors_by_selector.get(raw[:4])
        if item is None:
            return None
        types = [param_type(p) for p in item["inputs"]]
        values = eth_abi.decode(types, raw[4:])
        args = {p["name"]: _normalize(t, v) for p, t, v in zip(item["inputs"], types, values)}
        return DecodedError(name=item["name"], args=args, selector="0x" + raw[:4].hex(), data=raw)

    def event_topic(self, name: str) -> bytes:
        return event_topic(self.events_by_name[name])


def _maybe_int(value: Any) -> int | None:
    if value is None:
        return None
    return int(value, 16) if isinstance(value, str) else int(value)


class AbiSourceError(RuntimeError):
    """An ABI file is missing or is not an ABI; the message names the file."""


def is_abi_path(source: str) -> bool:
    """contracts.yaml `abi:` values are paths; `artifact:` values are names in contracts/artifacts/."""
    return "/" in source or "\\" in source or source.endswith(".json")


def resolve_abi_path(source: str) -> Path:
    """An absolute path as is; a relative one against the config folder, then the repo root (first that exists)."""
    from vvops import paths

    path = Path(source).expanduser()
    if path.is_absolute():
        return path
    candidates = [paths.config_dir() / path, paths.REPO_ROOT / path]
    return next((c for c in candidates if c.is_file()), candidates[-1])


def abi_list_of(document: Any, *, where: str = "ABI") -> list[dict[str, Any]]:
    """The ABI list in a JSON document: a plain ABI list, or `{"abi": [...]}` as Foundry (`out/X.sol/X.json`),
    Hardhat (`artifacts/.../X.json`), Truffle and our own artifacts write it."""
    abi = document.get("abi") if isinstance(document, dict) else document
    if isinstance(abi, str):  # some tools write the ABI as a JSON string
        abi = json.loads(abi)
    if not isinstance(abi, list) or not all(isinstance(item, dict) for item in abi):
        raise AbiSourceError(f"{where} holds no ABI (expected a JSON list, or an object with an \"abi\" list)")
    return abi


@functools.lru_cache(maxsize=64)
def _abi_file(path: str, mtime_ns: int) -> Abi:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise AbiSourceError(f"cannot read ABI file {path}: {type(error).__name__}") from None
    return Abi(abi_list_of(document, where=path))


def contract_abi(source: str) -> Abi:
    """The `Abi` index of an ABI source (cached): an artifact name (contracts/artifacts/<name>.json) or a path to
    any ABI file (see `abi_list_of`)."""
    if is_abi_path(source):
        path = resolve_abi_path(source)
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            raise AbiSourceError(f"ABI file {path} does not exist") from None
        return _abi_file(str(path), mtime)
    return _artifact_abi(source)


@functools.lru_cache(maxsize=64)
def _artifact_abi(name: str) -> Abi:
    from vvops.chain.artifacts import abi_of

    return Abi(abi_of(name))


@functools.lru_cache(maxsize=1)
def _all_errors() -> Abi:
    from vvops.chain.artifacts import abi_of, artifact_names

    items: list[dict[str, Any]] = []
    seen: set[bytes] = set()
    for name in artifact_names():
        for item in abi_of(name):
            if item.get("type") == "error" and selector(item) not in seen:
                seen.add(selector(item))
                items.append(item)
    return Abi(items)


def error_selector_map(abis: Iterable[list[dict[str, Any]]] | None = None) -> dict[str, str]:
    """{"0x12345678": "ErrorName(types)"} for the given ABIs (default: every artifact)."""
    index = _all_errors() if abis is None else Abi([i for a in abis for i in a if i.get("type") == "error"])
    return {"0x" + sel.hex(): signature(item) for sel, item in index.errors_by_selector.items()}


def decode_revert(data: bytes | str | None, abi: Abi | None = None) -> DecodedError:
    """Decode revert data using `abi` first, then every artifact's errors, then Error(string)/Panic(uint256)."""
    raw = _to_bytes(data)
    if not raw:
        return DecodedError(name="", data=raw)
    if raw[:4] == ERROR_STRING_SELECTOR:
        (message,) = eth_abi.decode(["string"], raw[4:])
        return DecodedError(name="Error", args={"message": message}, selector="0x08c379a0", data=raw)
    if raw[:4] == PANIC_SELECTOR:
        (code,) = eth_abi.decode(["uint256"], raw[4:])
        return DecodedError(name="Panic", args={"code": code}, selector="0x4e487b71", data=raw)
    for index in ([abi] if abi is not None else []) + [_all_errors()]:
        try:
            decoded = index.decode_error(raw)
        except Exception:  # noqa: BLE001 - malformed args: try the next ABI
            decoded = None
        if decoded is not None:
            return decoded
    return DecodedError(name=f"<unknown 0x{raw[:4].hex()}>", selector="0x" + raw[:4].hex(), data=raw)


def encode_param_name(name: str) -> bytes:
    """bytes32 of a parameter name as the vault writes it (`bytes32("feeBps")`: left-aligned, zero padded)."""
    raw = name.encode("ascii")
    if len(raw) > 32:
        raise ValueError(f"parameter name longer than 32 bytes: {name!r}")
    return raw.ljust(32, b"\0")


def decode_param_name(value: bytes) -> str:
    return bytes(value).rstrip(b"\0").decode("ascii", errors="replace")
