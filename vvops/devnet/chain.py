"""A small, fast JSON-RPC client for the devnet (httpx + eth_abi), and `make_web3` for code that prefers web3.

`Chain(rpc_url)`:
- `request(method, params)` / `batch([(method, params), ...])` — raw JSON-RPC (raises `RpcError`).
- `transact(sender=..., to=..., data=...)` — eth_sendTransaction from an unlocked (anvil) or impersonated account,
  waits for the receipt, raises `TxReverted` with the decoded custom error.
- `call(to, data)` — eth_call, raises `CallReverted` with the decoded custom error.
- `contract(name, address)` — a `BoundContract` (`.call(fn, *args)`, `.transact(sender, fn, *args)`,
  `.encode(fn, *args)`, `.events(receipt_or_logs)`, `.get_logs(...)`).
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Iterable

import httpx
from eth_utils import keccak, to_checksum_address

from vvops.chain.abi import Abi, DecodedError, DecodedEvent, contract_abi, decode_revert

DEFAULT_TIMEOUT = 10.0


class RpcError(RuntimeError):
    """A JSON-RPC error response (code, message, data) or a transport failure (code None)."""

    def __init__(self, method: str, code: int | None, message: str, data: Any = None):
        self.method, self.code, self.rpc_message, self.data = method, code, message, data
        super().__init__(f"{method}: {message}" + (f" (code {code})" if code is not None else ""))

    def revert_data(self) -> bytes | None:
        """Revert bytes carried by an 'execution reverted' error, if any."""
        data = self.data
        if isinstance(data, dict):  # some nodes nest it
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x"):
            return bytes.fromhex(data[2:])
        return None


class CallReverted(RuntimeError):
    """An eth_call / gas estimation reverted; `.error` is the decoded custom error."""

    def __init__(self, error: DecodedError, context: str = ""):
        self.error = error
        super().__init__(f"{context}reverted: {error}" if error.name else f"{context}reverted (no data)")


class TxReverted(CallReverted):
    """A transaction reverted (at estimation, or mined with status 0); `.receipt` is set when it was mined."""

    def __init__(self, error: DecodedError, context: str = "", receipt: dict | None = None):
        self.receipt = receipt
        super().__init__(error, context)


def _hex(value: int) -> str:
    return hex(int(value))


def _data_hex(data: bytes | str | None) -> str:
    if data is None:
        return "0x"
    if isinstance(data, str):
        return data if data.startswith("0x") else "0x" + data
    return "0x" + bytes(data).hex()


def create_address(sender: str, nonce: int) -> str:
    """The address a CREATE from `sender` at `nonce` deploys to (RLP([sender, nonce]) hashed)."""
    addr = bytes.fromhex(sender[2:])
    if nonce == 0:
        enc_nonce = b"\x80"
    elif nonce < 0x80:
        enc_nonce = bytes([nonce])
    else:
        raw = nonce.to_bytes((nonce.bit_length() + 7) // 8, "big")
        enc_nonce = bytes([0x80 + len(raw)]) + raw
    payload = b"\x94" + addr + enc_nonce
    return to_checksum_address(keccak(bytes([0xC0 + len(payload)]) + payload)[12:])


class Chain:
    """JSON-RPC client bound to one node. Thread-safe (one httpx connection pool)."""

    def __init__(self, rpc_url: str, *, timeout: float = DEFAULT_TIMEOUT):
        self.rpc_url = rpc_url
        self.timeout = timeout
        self._client = httpx.Client(timeout=timeout)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "Chain":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Chain({self.rpc_url!r})"

    # ------------------------------------------------------------------ raw JSON-RPC
    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def _post(self, payload: Any, method: str) -> Any:
        try:
            response = self._client.post(self.rpc_url, json=payload)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise RpcError(method, None, f"cannot reach {self.rpc_url}: {error}") from error

    def request(self, method: str, params: list | None = None) -> Any:
        body = self._post({"jsonrpc": "2.0", "id": self._next_id(), "method": method, "params": params or []}, method)
        if "error" in body:
            err = body["error"]
            raise RpcError(method, err.get("code"), err.get("message", ""), err.get("data"))
        return body.get("result")

    def batch(self, calls: Iterable[tuple[str, list]], *, raise_errors: bool = True) -> list[Any]:
        """One HTTP request for many calls; results in order. With raise_errors=False an error becomes an RpcError
        object in the result list instead of being raised."""
        calls = list(calls)
        if not calls:
            return []
        first = self._next_id()
        payload = [{"jsonrpc": "2.0", "id": first + i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        with self._lock:  # reserve the ids
            for _ in range(len(calls) - 1):
                next(self._ids)
        body = self._post(payload, f"batch of {len(calls)}")
        if isinstance(body, dict):  # whole-batch error
            err = body.get("error", {})
            raise RpcError("batch", err.get("code"), err.get("message", str(body)), err.get("data"))
        by_id = {item.get("id"): item for item in body}
        results: list[Any] = []
        for i, (method, _) in enumerate(calls):
            item = by_id.get(first + i, {"error": {"message": "missing response"}})
            if "error" in item:
                err = item["error"]
                exc = RpcError(method, err.get("code"), err.get("message", ""), err.get("data"))
                if raise_errors:
                    raise exc
                results.append(exc)
            else:
                results.append(item.get("result"))
        return results

    # ------------------------------------------------------------------ basics
    def chain_id(self) -> int:
        return int(self.request("eth_chainId"), 16)

    def block_number(self) -> int:
        return int(self.request("eth_blockNumber"), 16)

    def get_block(self, block: int | str = "latest") -> dict:
        tag = _hex(block) if isinstance(block, int) else block
        return self.request("eth_getBlockByNumber", [tag, False])

    def timestamp(self, block: int | str = "latest") -> int:
        """Timestamp of a block (default: the latest)."""
        return int(self.get_block(block)["timestamp"], 16)

    def balance(self, address: str) -> int:
        return int(self.request("eth_getBalance", [address, "latest"]), 16)

    def nonce(self, address: str, block: str = "pending") -> int:
        return int(self.request("eth_getTransactionCount", [address, block]), 16)

    def accounts(self) -> list[str]:
        return [to_checksum_address(a) for a in self.request("eth_accounts")]

    def get_code(self, address: str) -> bytes:
        return bytes.fromhex(self.request("eth_getCode", [address, "latest"])[2:])

    def get_storage_at(self, address: str, slot: int | bytes | str, block: str = "latest") -> bytes:
        return bytes.fromhex(self.request("eth_getStorageAt", [address, _slot_hex(slot), block])[2:]).rjust(32, b"\0")

    # ------------------------------------------------------------------ calls and transactions
    def call(self, to: str, data: bytes | str, *, sender: str | None = None, block: int | str = "latest",
             value: int = 0, abi: Abi | None = None) -> bytes:
        """eth_call; raises CallReverted (decoded with `abi`, then every artifact's errors)."""
        tx: dict[str, Any] = {"to": to, "data": _data_hex(data)}
        if sender:
            tx["from"] = sender
        if value:
            tx["value"] = _hex(value)
        tag = _hex(block) if isinstance(block, int) else block
        try:
            result = self.request("eth_call", [tx, tag])
        except RpcError as error:
            if error.code == 3 or "revert" in error.rpc_message.lower():
                raise CallReverted(decode_revert(error.revert_data(), abi)) from None
            raise
        return bytes.fromhex(result[2:])

    def send(self, *, sender: str, to: str | None = None, data: bytes | str | None = None, value: int = 0,
             gas: int | None = None, nonce: int | None = None, abi: Abi | None = None) -> str:
        """eth_sendTransaction from an account the node can sign for (anvil's own or impersonated).
        Returns the tx hash. When `gas` is None the node estimates it and a revert raises TxReverted here."""
        tx = self._tx(sender, to, data, value, gas, nonce)
        try:
            return self.request("eth_sendTransaction", [tx])
        except RpcError as error:
            if error.code == 3 or "revert" in error.rpc_message.lower():
                raise TxReverted(decode_revert(error.revert_data(), abi), f"{sender} -> {to}: ") from None
            raise

    @staticmethod
    def _tx(sender, to, data, value, gas, nonce) -> dict[str, Any]:
        tx: dict[str, Any] = {"from": sender, "data": _data_hex(data)}
        if to is not None:
            tx["to"] = to
        if value:
            tx["value"] = _hex(value)
        if gas is not None:
            tx["gas"] = _hex(gas)
        if nonce is not None:
            tx["nonce"] = _hex(nonce)
        return tx

    def send_many(self, txs: list[dict[str, Any]]) -> list[str]:
        """Send several transactions in one JSON-RPC batch. Each dict has the keyword arguments of `send`;
        give explicit `nonce` and `gas` (batched sends without nonces fail on anvil)."""
        calls = [("eth_sendTransaction", [self._tx(t["sender"], t.get("to"), t.get("data"), t.get("value", 0),
                                                   t.get("gas"), t.get("nonce"))]) for t in txs]
        return self.batch(calls)

    def wait_for_receipt(self, tx_hash: str, *, timeout: float = 30.0, poll: float = 0.05) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            receipt = self.request("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                return receipt
            if time.monotonic() > deadline:
                raise TimeoutError(f"no receipt for {tx_hash} after {timeout:.0f} s")
            time.sleep(poll)

    def wait_for_receipts(self, tx_hashes: list[str], *, timeout: float = 60.0, poll: float = 0.05) -> list[dict]:
        deadline = time.monotonic() + timeout
        receipts: dict[str, dict] = {}
        while True:
            missing = [h for h in tx_hashes if h not in receipts]
            if not missing:
                return [receipts[h] for h in tx_hashes]
            for h, r in zip(missing, self.batch([("eth_getTransactionReceipt", [h]) for h in missing])):
                if r is not None:
                    receipts[h] = r
            if len(receipts) < len(tx_hashes):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(tx_hashes) - len(receipts)} receipt(s) missing after {timeout:.0f} s")
                time.sleep(poll)

    def check_receipt(self, receipt: dict, *, abi: Abi | None = None, context: str = "") -> dict:
        """Raise TxReverted (decoded by replaying the tx with eth_call) if the receipt has status 0."""
        if int(receipt["status"], 16) == 1:
            return receipt
        tx = self.request("eth_getTransactionByHash", [receipt["transactionHash"]])
        error = DecodedError(name="")
        try:
            self.call(tx["to"], tx["input"], sender=tx["from"], value=int(tx.get("value", "0x0"), 16),
                      block=int(receipt["blockNumber"], 16) - 1, abi=abi)
        except CallReverted as replay:
            error = replay.error
        raise TxReverted(error, context or f"tx {receipt['transactionHash']}: ", receipt)

    def transact(self, *, sender: str, to: str | None = None, data: bytes | str | None = None, value: int = 0,
                 gas: int | None = None, nonce: int | None = None, abi: Abi | None = None,
                 timeout: float = 30.0) -> dict:
        """Send, wait for the receipt, raise TxReverted on failure. Returns the receipt."""
        tx_hash = self.send(sender=sender, to=to, data=data, value=value, gas=gas, nonce=nonce, abi=abi)
        return self.check_receipt(self.wait_for_receipt(tx_hash, timeout=timeout), abi=abi)

    def get_logs(self, *, address: str | list[str] | None = None, topics: list | None = None,
                 from_block: int | str = 0, to_block: int | str = "latest") -> list[dict]:
        flt: dict[str, Any] = {
            "fromBlock": _hex(from_block) if isinstance(from_block, int) else from_block,
            "toBlock": _hex(to_block) if isinstance(to_block, int) else to_block,
        }
        if address is not None:
            flt["address"] = address
        if topics is not None:
            flt["topics"] = topics
        return self.request("eth_getLogs", [flt])

    def contract(self, name: str, address: str) -> "BoundContract":
        return BoundContract(self, name, address)


def _slot_hex(slot: int | bytes | str) -> str:
    if isinstance(slot, int):
        return "0x" + slot.to_bytes(32, "big").hex()
    if isinstance(slot, (bytes, bytearray)):
        return "0x" + bytes(slot).rjust(32, b"\0").hex()
    return slot


class BoundContract:
    """An artifact's ABI bound to an address on a Chain."""

    def __init__(self, chain: Chain, name: str, address: str):
        self.chain = chain
        self.name = name
        self.address = to_checksum_address(address)
        self.abi = contract_abi(name)

    def __repr__(self) -> str:
        return f"<{self.name} at {self.address}>"

    def encode(self, fn: str, *args: Any) -> bytes:
        return self.abi.encode_call(fn, *args)

    def call(self, fn: str, *args: Any, sender: str | None = None, block: int | str = "latest") -> Any:
        raw = self.chain.call(self.address, self.encode(fn, *args), sender=sender, block=block, abi=self.abi)
        return self.abi.decode_output(fn, raw)

    def transact(self, sender: str, fn: str, *args: Any, value: int = 0, gas: int | None = None,
                 nonce: int | None = None, timeout: float = 30.0) -> dict:
        return self.chain.transact(sender=sender, to=self.address, data=self.encode(fn, *args), value=value,
                                   gas=gas, nonce=nonce, abi=self.abi, timeout=timeout)

    def events(self, receipt_or_logs: dict | list[dict], name: str | None = None) -> list[DecodedEvent]:
        """Decoded events this contract emitted in a receipt (or a list of logs), optionally only `name`."""
        logs = receipt_or_logs["logs"] if isinstance(receipt_or_logs, dict) else receipt_or_logs
        out = []
        for log in logs:
            if to_checksum_address(log["address"]) != self.address:
                continue
            ev = self.abi.decode_log(log)
            if ev is not None and (name is None or ev.name == name):
                out.append(ev)
        return out

    def get_logs(self, name: str | None = None, *, from_block: int | str = 0,
                 to_block: int | str = "latest") -> list[DecodedEvent]:
        topics = None if name is None else ["0x" + self.abi.event_topic(name).hex()]
        logs = self.chain.get_logs(address=self.address, topics=topics, from_block=from_block, to_block=to_block)
        return self.events(logs, name)


def make_web3(rpc_url: str, *, timeout: float = DEFAULT_TIMEOUT):
    """A web3 8 `Web3` for `rpc_url` with a request timeout and without the `validation` middleware
    (it sends eth_chainId twice per call)."""
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        w3.middleware_onion.remove("validation")
    except (ValueError, KeyError):
        pass
    return w3
