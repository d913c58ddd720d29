"""ABI encoding for the shapes a multicall read uses, without eth_abi's generic machinery.

eth_abi spends ~19 ms of pure Python on one 500-call `aggregate3` read (encode the calls, the array, decode the
array, decode each value): more than the node takes to answer. These functions cover exactly the shapes we
send and receive: `(address,bool,bytes)[]` in, `(bool,bytes)[]` out, static argument and return types
(address, bool, uintN, intN, bytesN). Anything else, or any input they cannot vouch for, returns None and the
caller falls back to eth_abi, which also produces the error messages for malformed data.
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address

WORD = 32
_UINT256_LIMIT = 1 << 256


def _word(n: int) -> bytes:
    return n.to_bytes(WORD, "big")


def _address_bytes(value: Any) -> bytes | None:
    if isinstance(value, str) and len(value) == 42 and value[:2] in ("0x", "0X"):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            return None
    if isinstance(value, (bytes, bytearray)) and len(value) == 20:
        return bytes(value)
    return None


def encode_static(abi_type: str, value: Any) -> bytes | None:
    """One static value as its 32-byte word, or None for a type or value this fast path does not handle."""
    if abi_type == "address":
        raw = _address_bytes(value)
        return None if raw is None else b"\0" * 12 + raw
    if abi_type == "bool":
        return _word(1 if value else 0) if isinstance(value, bool) else None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    if abi_type.startswith("uint"):
        bits = int(abi_type[4:] or 256)
        return _word(value) if 0 <= value < (1 << bits) else None
    if abi_type.startswith("int"):
        bits = int(abi_type[3:] or 256)
        if -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
            return (value % _UINT256_LIMIT).to_bytes(WORD, "big")
    return None


def encode_static_args(types: list[str], args: list[Any]) -> bytes | None:
    """The ABI encoding of static arguments, or None when any of them is not handled here."""
    if len(types) != len(args):
        return None
    words = [encode_static(t, a) for t, a in zip(types, args)]
    return None if any(w is None for w in words) else b"".join(words)  # type: ignore[arg-type]


def decode_static(returns: tuple[str, ...], data: bytes) -> tuple[Any, ...] | None:
    """Decode static return values (addresses checksummed), or None to let eth_abi decide."""
    if len(data) < WORD * len(returns):
        return None
    out: list[Any] = []
    for i, abi_type in enumerate(returns):
        word = data[i * WORD:(i + 1) * WORD]
        if abi_type == "address":
            if any(word[:12]):
                return None
            out.append(to_checksum_address("0x" + word[12:].hex()))
        elif abi_type == "bool":
            if any(word[:31]) or word[31] > 1:
                return None
            out.append(word[31] == 1)
        elif abi_type.startswith("uint"):
            value = int.from_bytes(word, "big")
            if value >= 1 << int(abi_type[4:] or 256):
                return None
            out.append(value)
        elif abi_type.startswith("int"):
            bits = int(abi_type[3:] or 256)
            value = int.from_bytes(word, "big", signed=True)
            if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
                return None
            out.append(value)
        elif abi_type.startswith("bytes") and abi_type[5:].isdigit():
            size = int(abi_type[5:])
            if not 1 <= size <= 32 or any(word[size:]):
                return None
            out.append(word[:size])
        else:
            return None
    return tuple(out)


def encode_aggregate3(calls: list[tuple[str, bool, bytes]]) -> bytes | None:
    """`abi.encode((address,bool,bytes)[])` of Multicall3 calls, or None if a target is not an address."""
    heads: list[bytes] = []
    bodies: list[bytes] = []
    offset = WORD * len(calls)
    for target, allow_failure, data in calls:
        address = _address_bytes(target)
        if address is None:
            return None
        padded = data + b"\0" * (-len(data) % WORD)
        body = b"".join((b"\0" * 12 + address, _word(1 if allow_failure else 0), _word(3 * WORD), _word(len(data)),
                         padded))
        heads.append(_word(offset))
        bodies.append(body)
        offset += len(body)
    return _word(WORD) + _word(len(calls)) + b"".join(heads) + b"".join(bodies)


def decode_aggregate3_result(data: bytes) -> list[tuple[bool, bytes]] | None:
    """Decode `(bool,bytes)[]` as Multicall3 returns it, or None if anything is out of shape."""
    try:
        start = int.from_bytes(data[0:WORD], "big")
        if start + WORD > len(data):
            return None
        count = int.from_bytes(data[start:start + WORD], "big")
        base = start + WORD
        if base + count * WORD > len(data):
            return None
        out: list[tuple[bool, bytes]] = []
        for i in range(count):
            at = base + int.from_bytes(data[base + i * WORD:base + (i + 1) * WORD], "big")
            flag = data[at:at + WORD]
            if len(flag) < WORD or any(flag[:31]) or flag[31] > 1:
                return None
            ref = at + int.from_bytes(data[at + WORD:at + 2 * WORD], "big")
            size = int.from_bytes(data[ref:ref + WORD], "big")
            if ref + WORD + size > len(data):
                return None
            out.append((flag[31] == 1, bytes(data[ref + WORD:ref + WORD + size])))
        return out
    except (IndexError, ValueError, OverflowError):
        return None
