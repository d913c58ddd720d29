"""Reading a Safe over JSON-RPC (eth_abi directly) and the ABIs it needs, from safe-eth-py's bundled 1.4.1 ABIs.

`SafeReader(rpc, address)` reads `nonce`, `getThreshold`, `getOwners`, `VERSION`, `approvedHashes`,
`getTransactionHash` and finds `ExecutionSuccess`/`ExecutionFailure` logs for a SafeTx hash (the hash is an
indexed topic from 1.4.0 on; for 1.3.0 it sits in the data and we filter after decoding).
`rpc` is anything with `call(method, params)` (vvops.chain.rpc.RpcClient) or `request(method, params)`
(the devnet `Chain`).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import eth_abi
from eth_utils import keccak, to_checksum_address

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
SENTINEL_OWNERS = "0x0000000000000000000000000000000000000001"
EXECUTION_SUCCESS_TOPIC = "0x" + keccak(text="ExecutionSuccess(bytes32,uint256)").hex()
EXECUTION_FAILURE_TOPIC = "0x" + keccak(text="ExecutionFailure(bytes32,uint256)").hex()
SUPPORTED_VERSIONS = ("1.3.0", "1.4.1")


class SafeReadError(RuntimeError):
    """The address does not answer like a Safe (no code, or an unexpected answer)."""


@functools.lru_cache(maxsize=None)
def safe_abi(name: str = "Safe_V1_4_1") -> list[dict[str, Any]]:
    """An ABI bundled with safe-eth-py (Safe_V1_4_1, MultiSend_V1_4_1, CompatibilityFallbackHandler_V1_4_1...)."""
    text = resources.files("safe_eth.eth.contracts").joinpath("abis", f"{name}.json").read_text(encoding="utf-8")
    data = json.loads(text)
    return data["abi"] if isinstance(data, dict) else data


def _selector(signature: str) -> str:
    return "0x" + keccak(text=signature)[:4].hex()


def rpc_call(rpc: Any, method: str, params: list | None = None) -> Any:
    if hasattr(rpc, "call") and hasattr(rpc, "urls"):
        return rpc.call(method, params or [])
    return rpc.request(method, params or [])


def encode_call(signature: str, types: list[str], args: list[Any]) -> str:
    return _selector(signature) + (eth_abi.encode(types, args).hex() if types else "")


EXEC_TRANSACTION = ("execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)",
                    ["address", "uint256", "bytes", "uint8", "uint256", "uint256", "uint256", "address", "address",
                     "bytes"])


@dataclass(frozen=True)
class ExecutionLog:
    success: bool
    tx_hash: str  # the Ethereum transaction that executed it
    block_number: int
    sender: str | None = None


class SafeReader:
    def __init__(self, rpc: Any, address: str):
        self.rpc = rpc
        self.address = to_checksum_address(address)

    def _call(self, signature: str, types: list[str], args: list[Any], out: list[str], block: str = "latest") -> Any:
        raw = rpc_call(self.rpc, "eth_call", [{"to": self.address, "data": encode_call(signature, types, args)}, block])
        data = bytes.fromhex(raw[2:]) if isinstance(raw, str) else bytes(raw)
        if not data:
            raise SafeReadError(f"{self.address} returned nothing for {signature.split('(')[0]}: is it a Safe?")
        values = eth_abi.decode(out, data)
        return values[0] if len(values) == 1 else values

    def nonce(self, block: str = "latest") -> int:
        return int(self._call("nonce()", [], [], ["uint256"], block))

    def threshold(self, block: str = "latest") -> int:
        return int(self._call("getThreshold()", [], [], ["uint256"], block))

    def owners(self, block: str = "latest") -> list[str]:
        return [to_checksum_address(o) for o in self._call("getOwners()", [], [], ["address[]"], block)]

    def version(self) -> str:
        return str(self._call("VERSION()", [], [], ["string"]))

    def approved_hash(self, owner: str, safe_tx_hash: str) -> bool:
        return int(self._call("approvedHashes(address,bytes32)", ["address", "bytes32"],
                              [to_checksum_address(owner), bytes.fromhex(safe_tx_hash[2:])], ["uint256"])) == 1

    def transaction_hash(self, *, to: str, value: int, data: bytes, operation: int, safe_tx_gas: int, base_gas: int,
                         gas_price: int, gas_token: str, refund_receiver: str, nonce: int) -> str:
        """The contract's own getTransactionHash (used by tests to prove our hash equals it)."""
        out = self._call("getTransactionHash(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,"
                         "uint256)", ["address", "uint256", "bytes", "uint8", "uint256", "uint256", "uint256",
                                      "address", "address", "uint256"],
                         [to_checksum_address(to), value, data, operation, safe_tx_gas, base_gas, gas_price,
                          to_checksum_address(gas_token), to_checksum_address(refund_receiver), nonce], ["bytes32"])
        return "0x" + bytes(out).hex()

    def is_contract(self, address: str) -> bool:
        code = rpc_call(self.rpc, "eth_getCode", [to_checksum_address(address), "latest"])
        return bool(code and code not in ("0x", "0x0"))

    def execution_of(self, safe_tx_hash: str, *, from_block: int = 0, to_block: int | str = "latest"
                     ) -> ExecutionLog | None:
        """The ExecutionSuccess/ExecutionFailure log of this SafeTx hash on this Safe, if it was executed."""
        flt = {"address": self.address, "fromBlock": hex(from_block),
               "toBlock": to_block if isinstance(to_block, str) else hex(to_block),
               "topics": [[EXECUTION_SUCCESS_TOPIC, EXECUTION_FAILURE_TOPIC]]}
        wanted = safe_tx_hash.lower()
        for log in rpc_call(self.rpc, "eth_getLogs", [flt]) or []:
            topics = [t.lower() for t in log.get("topics") or []]
            data = (log.get("data") or "0x").lower()
            indexed = len(topics) > 1 and topics[1] == wanted  # 1.4.x: txHash indexed
            in_data = len(topics) == 1 and data[2:66] == wanted[2:]  # 1.3.0: txHash in data
            if indexed or in_data:
                return ExecutionLog(success=topics[0] == EXECUTION_SUCCESS_TOPIC, tx_hash=log["transactionHash"],
                                    block_number=int(log["blockNumber"], 16))
        return None
