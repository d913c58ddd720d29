"""The multicall fast ABI path gives byte-for-byte what eth_abi gives, and steps aside for what it can't vouch for."""

from __future__ import annotations

import random

import pytest
from eth_abi import decode, encode
from eth_utils import to_checksum_address

from vvops.chain.abi_fast import (decode_aggregate3_result, decode_static, encode_aggregate3, encode_static,
                                  encode_static_args)
from vvops.chain.reader import decode_value, encode_call

rng = random.Random(20261127)


def _address() -> str:
    return "0x" + rng.randbytes(20).hex()


@pytest.mark.parametrize("count", [0, 1, 2, 7, 500])
def test_aggregate3_round_trips_like_eth_abi(count):
    calls = [(_address(), rng.random() < 0.5, rng.randbytes(rng.choice([0, 1, 4, 31, 32, 33, 68, 100])))
             for _ in range(count)]
    assert encode_aggregate3(calls) == encode(["(address,bool,bytes)[]"], [calls])
    answers = [(rng.random() < 0.8, rng.randbytes(rng.choice([0, 5, 32, 64, 65]))) for _ in range(count)]
    encoded = encode(["(bool,bytes)[]"], [answers])
    assert decode_aggregate3_result(encoded) == list(decode(["(bool,bytes)[]"], encoded)[0]) == answers


def test_malformed_results_are_left_to_eth_abi():
    good = encode(["(bool,bytes)[]"], [[(True, b"\x01" * 32)]])
    assert decode_aggregate3_result(good[:-40]) is None          # truncated
    assert decode_aggregate3_result(b"\x00" * 31 + b"\xff") is None  # offset beyond the data
    bad_flag = bytearray(good)
    bad_flag[4 * 32 - 1] = 2                                       # bool word of the first tuple = 2
    assert decode_aggregate3_result(bytes(bad_flag)) is None
    assert encode_aggregate3([("not-an-address", True, b"")]) is None


@pytest.mark.parametrize("abi_type,value", [
    ("address", "0x" + "ab" * 20), ("bool", True), ("bool", False), ("uint256", 0), ("uint256", 2**256 - 1),
    ("uint8", 255), ("int256", -1), ("int256", -(2**255)), ("int24", 2**23 - 1), ("uint64", 12345),
])
def test_static_values_encode_and_decode_like_eth_abi(abi_type, value):
    word = encode([abi_type], [value])
    assert encode_static(abi_type, value) == word
    expected = decode([abi_type], word)[0]
    assert decode_static((abi_type,), word) == ((to_checksum_address(expected) if abi_type == "address"
                                                 else expected),)


@pytest.mark.parametrize("abi_type,value", [("uint8", 256), ("uint256", -1), ("int8", 128), ("bool", 1),
                                            ("address", "0x1234"), ("string", "x"), ("uint256", True)])
def test_values_outside_the_fast_path_return_none(abi_type, value):
    assert encode_static(abi_type, value) is None


def test_call_data_and_values_match_the_generic_path():
    user = _address()
    assert encode_call("balanceOf(address)", (user,)) == bytes.fromhex("70a08231") + encode(["address"], [user])
    assert encode_call("transfer(address,uint256)", (user, 10**18)) == (
        bytes.fromhex("a9059cbb") + encode(["address", "uint256"], [user, 10**18]))
    assert encode_call("setName(string)", ("vault",))[4:] == encode(["string"], ["vault"])   # falls back
    assert encode_static_args(["uint256"], [1, 2]) is None
    packed = encode(["address", "uint256", "bool"], [user, 7, True])
    assert decode_value(("address", "uint256", "bool"), packed) == (to_checksum_address(user), 7, True)
    assert decode_value(("string",), encode(["string"], ["hi"])) == "hi"                      # falls back
    assert decode_static(("uint8",), encode(["uint256"], [300])) is None                     # out of range
