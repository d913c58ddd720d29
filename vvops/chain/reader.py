"""Batched contract reads: many view calls in one `eth_call` to Multicall3's `aggregate3`.

Encoding and decoding go straight through eth_abi: web3's contract layer costs ~5x more per read
(field notes), and a daily check reads hundreds of values.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address

from vvops.chain.abi_fast import decode_aggregate3_result, decode_static, encode_aggregate3, encode_static_args
from vvops.chain.rpc import RpcClient
from vvops.chain.abi import split_types

AGGREGATE3 = "aggregate3((address,bool,bytes)[])"
IMPLEMENTATION_SLOT = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc"


@lru_cache(maxsize=4096)
def selector(signature: str) -> bytes:
    """The 4-byte function selector of a canonical signature such as `balanceOf(address)`."""
    return keccak(text=signature)[:4]


@lru_cache(maxsize=4096)
def _arg_types(signature: str) -> tuple[str, ...]:
    inner = signature[signature.index("(") + 1 : signature.rindex(")")]
    return tuple(split_types(inner)) if inner else ()


def encode_call(signature: str, args: tuple[Any, ...] = ()) -> bytes:
    """Calldata for a function call: selector followed by the ABI-encoded arguments."""
    if not args:
        return selector(signature)
    types = list(_arg_types(signature))
    fast = encode_static_args(types, list(args))
    return selector(signature) + (fast if fast is not None else encode(types, list(args)))


@dataclass(frozen=True)
class ViewCall:
    """One view function to read: target contract, signature, return types and a key to find it again."""

    key: str
    target: str
    signature: str
    returns: tuple[str, ...]
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class ViewResult:
    key: str
    ok: bool
    value: Any
    error: str | None = None


def decode_value(returns: tuple[str, ...], data: bytes) -> Any:
    values = decode_static(returns, data)
    if values is None:
        values = decode(list(returns), data)
        values = tuple(to_checksum_address(v) if t == "address" else v for t, v in zip(returns, values))
    return values[0] if len(values) == 1 else values


def read_views(rpc: RpcClient, *, multicall: str, calls: list[ViewCall], block: str = "latest") -> dict[str, ViewResult]:
    """Read every call in one aggregate3 eth_call; a failing call is reported, never raised."""
    if not calls:
        return {}
    items = [(call.target, True, encode_call(call.signature, call.args)) for call in calls]
    payload = encode_aggregate3(items)
    if payload is None:
        payload = encode(["(address,bool,bytes)[]"], [items])
    raw = rpc.call("eth_call", [{"to": multicall, "data": "0x" + (selector(AGGREGATE3) + payload).hex()}, block])
    returned = bytes.fromhex(raw[2:])
    answers = decode_aggregate3_result(returned)
    if answers is None:
        (answers,) = decode(["(bool,bytes)[]"], returned)
    results: dict[str, ViewResult] = {}
    for call, (success, data) in zip(calls, answers):
        if not success:
            results[call.key] = ViewResult(call.key, False, None, f"{call.signature} reverted")
            continue
        try:
            results[call.key] = ViewResult(call.key, True, decode_value(call.returns, data))
        except Exception as exc:  # a contract that returns the wrong shape is a finding, not a crash
            results[call.key] = ViewResult(call.key, False, None, f"{call.signature}: cannot decode ({exc})")
    return results


def read_implementation(rpc: RpcClient, *, proxy: str, block: str = "latest") -> str:
    """The ERC-1967 implementation address stored in a proxy."""
    word = rpc.call("eth_getStorageAt", [proxy, IMPLEMENTATION_SLOT, block])
    return to_checksum_address("0x" + word[-40:])
