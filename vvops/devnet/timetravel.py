"""anvil cheat codes: time travel, snapshots, impersonation, storage and balance writes.

Every function takes `target`: a `Chain`, a web3 `Web3`, or an RPC URL string.
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address

from vvops.devnet.chain import Chain, RpcError, _slot_hex

_CHAINS: dict[str, Chain] = {}


def _request(target: Any, method: str, params: list | None = None) -> Any:
    params = params or []
    if isinstance(target, Chain):
        return target.request(method, params)
    if isinstance(target, str):
        chain = _CHAINS.get(target)
        if chain is None:
            chain = _CHAINS[target] = Chain(target)
        return chain.request(method, params)
    provider = getattr(target, "provider", None)  # web3.Web3
    if provider is None:
        raise TypeError(f"expected a Chain, a Web3 or an RPC URL, got {type(target).__name__}")
    response = provider.make_request(method, params)
    if isinstance(response, dict) and response.get("error"):
        err = response["error"]
        raise RpcError(method, err.get("code"), err.get("message", ""), err.get("data"))
    return response["result"] if isinstance(response, dict) else response


def mine(target: Any, blocks: int = 1) -> None:
    """Mine `blocks` empty blocks now."""
    _request(target, "anvil_mine", [hex(blocks)])


def chain_time(target: Any) -> int:
    """Timestamp of the latest block."""
    return int(_request(target, "eth_getBlockByNumber", ["latest", False])["timestamp"], 16)


def increase_time(target: Any, seconds: int) -> int:
    """Move the chain clock forward by `seconds` and mine a block; returns the new block timestamp."""
    _request(target, "evm_increaseTime", [int(seconds)])
    _request(target, "evm_mine", [])
    return chain_time(target)


def set_next_block_timestamp(target: Any, timestamp: int) -> None:
    _request(target, "evm_setNextBlockTimestamp", [int(timestamp)])


def snapshot(target: Any) -> str:
    """Take an evm snapshot; returns its id. Each snapshot can be reverted to once."""
    return _request(target, "evm_snapshot", [])


def revert(target: Any, snapshot_id: str) -> bool:
    """Revert to `snapshot_id` (consumes it). Returns whether the node accepted it."""
    return bool(_request(target, "evm_revert", [snapshot_id]))


class _Impersonation:
    def __init__(self, target: Any, address: str):
        self.target = target
        self.address = to_checksum_address(address)
        _request(target, "anvil_impersonateAccount", [self.address])

    def stop(self) -> None:
        stop_impersonating(self.target, self.address)

    def __enter__(self) -> str:
        return self.address

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def impersonate(target: Any, address: str) -> _Impersonation:
    """Let eth_sendTransaction send from `address` without its key. Active immediately; also a context manager
    (`with impersonate(chain, addr) as sender: ...`) that stops impersonating on exit."""
    return _Impersonation(target, address)


def stop_impersonating(target: Any, address: str) -> None:
    _request(target, "anvil_stopImpersonatingAccount", [to_checksum_address(address)])


def set_balance(target: Any, address: str, wei: int) -> None:
    _request(target, "anvil_setBalance", [to_checksum_address(address), hex(wei)])


def set_storage_at(target: Any, address: str, slot: int | bytes | str, value: int | bytes) -> None:
    """Overwrite one 32-byte storage slot."""
    word = value.to_bytes(32, "big") if isinstance(value, int) else bytes(value).rjust(32, b"\0")
    _request(target, "anvil_setStorageAt", [to_checksum_address(address), _slot_hex(slot), "0x" + word.hex()])


def get_storage_at(target: Any, address: str, slot: int | bytes | str) -> bytes:
    result = _request(target, "eth_getStorageAt", [to_checksum_address(address), _slot_hex(slot), "latest"])
    return bytes.fromhex(result[2:]).rjust(32, b"\0")


def mapping_slot(key: str | int | bytes, base_slot: int) -> int:
    """Storage slot of `mapping[key]` for a mapping declared at `base_slot` (address/uint keys)."""
    from eth_utils import keccak

    if isinstance(key, str):
        key_word = bytes.fromhex(key[2:]).rjust(32, b"\0")
    elif isinstance(key, int):
        key_word = key.to_bytes(32, "big")
    else:
        key_word = bytes(key).rjust(32, b"\0")
    return int.from_bytes(keccak(key_word + base_slot.to_bytes(32, "big")), "big")
