"""Safe transactions: the fields a Safe signs, their EIP-712 hash, MultiSend batches and execTransaction calldata.

- `SafeTxSpec` holds the ten signed fields plus the Safe, chain and version; `.safe_tx_hash` is computed by
  safe-eth-py's `SafeTx` without a node and equals the contract's `getTransactionHash` (tests prove it against
  a deployed Safe for many inputs); `.preimage` is what a 1.3/1.4 Safe hands an EIP-1271 owner.
- `batch(calls, multi_send=...)`: one call → itself; several → a DELEGATECALL to MultiSend (`multiSend(bytes)`
  with each call packed as operation|to|value|len|data, safe-eth-py's `MultiSendTx` encoding). MultiSendCallOnly
  refuses inner delegatecalls, so calls that need one use MultiSend.
- `exec_transaction_data(spec, signatures)`: the calldata of `execTransaction`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import eth_abi
from eth_utils import to_checksum_address
from hexbytes import HexBytes

from vvops.safe.contracts import EXEC_TRANSACTION, ZERO_ADDRESS, encode_call

CALL, DELEGATECALL = 0, 1


class SafeTxError(ValueError):
    """A Safe transaction cannot be built as asked (the message says which field)."""


def _data_bytes(data: bytes | str | None) -> bytes:
    if data is None:
        return b""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    text = data[2:] if data.startswith(("0x", "0X")) else data
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise SafeTxError("data is not hex") from None


@dataclass(frozen=True)
class SafeCall:
    """One call a Safe makes (inside a MultiSend batch or alone)."""

    to: str
    data: str = "0x"
    value: int = 0
    operation: int = CALL

    def __post_init__(self):
        object.__setattr__(self, "to", to_checksum_address(self.to))
        object.__setattr__(self, "data", "0x" + _data_bytes(self.data).hex())
        if self.operation not in (CALL, DELEGATECALL):
            raise SafeTxError(f"operation must be 0 (call) or 1 (delegatecall), got {self.operation}")
        if int(self.value) < 0:
            raise SafeTxError("value must not be negative")


@dataclass(frozen=True)
class SafeTxSpec:
    safe: str
    chain_id: int
    nonce: int
    to: str
    value: int = 0
    data: str = "0x"
    operation: int = CALL
    safe_tx_gas: int = 0
    base_gas: int = 0
    gas_price: int = 0
    gas_token: str = ZERO_ADDRESS
    refund_receiver: str = ZERO_ADDRESS
    version: str = "1.4.1"

    def __post_init__(self):
        for name in ("safe", "to", "gas_token", "refund_receiver"):
            object.__setattr__(self, name, to_checksum_address(getattr(self, name)))
        object.__setattr__(self, "data", "0x" + _data_bytes(self.data).hex())
        if self.operation not in (CALL, DELEGATECALL):
            raise SafeTxError(f"operation must be 0 (call) or 1 (delegatecall), got {self.operation}")
        for name in ("nonce", "value", "safe_tx_gas", "base_gas", "gas_price"):
            if int(getattr(self, name)) < 0:
                raise SafeTxError(f"{name} must not be negative")

    def _safe_tx(self):
        from safe_eth.safe.safe_tx import SafeTx

        return SafeTx(None, self.safe, self.to, int(self.value), _data_bytes(self.data), int(self.operation),
                      int(self.safe_tx_gas), int(self.base_gas), int(self.gas_price), self.gas_token,
                      self.refund_receiver, safe_nonce=int(self.nonce), safe_version=self.version,
                      chain_id=int(self.chain_id))

    @property
    def safe_tx_hash(self) -> str:
        return "0x" + bytes(self._safe_tx().safe_tx_hash).hex()

    @property
    def preimage(self) -> bytes:
        return bytes(self._safe_tx().safe_tx_hash_preimage)

    def eip712(self) -> dict[str, Any]:
        """The EIP-712 typed data (what a wallet shows the owner: `eth_signTypedData_v4`)."""
        data = self._safe_tx().eip712_structured_data
        return _jsonable(data)

    def with_nonce(self, nonce: int) -> SafeTxSpec:
        return replace(self, nonce=int(nonce))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["value"] = str(self.value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SafeTxSpec:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        for k in ("nonce", "value", "operation", "safe_tx_gas", "base_gas", "gas_price", "chain_id"):
            if k in fields:
                fields[k] = int(fields[k])
        return cls(**fields)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray, HexBytes)):
        return "0x" + bytes(value).hex()
    return value


def multi_send_data(calls: list[SafeCall]) -> str:
    """`multiSend(bytes transactions)` calldata for `calls` (safe-eth-py's packed encoding)."""
    from safe_eth.safe.multi_send import MultiSendOperation, MultiSendTx

    packed = b"".join(MultiSendTx(MultiSendOperation(c.operation), c.to, int(c.value), _data_bytes(c.data)).encoded_data
                      for c in calls)
    return encode_call("multiSend(bytes)", ["bytes"], [packed])


def decode_multi_send(data: str | bytes) -> list[SafeCall]:
    """The calls packed in a `multiSend(bytes)` calldata (what the owners are asked to sign, for display)."""
    from safe_eth.safe.multi_send import MultiSendTx

    raw = _data_bytes(data)
    if raw[:4].hex() != encode_call("multiSend(bytes)", [], [])[2:]:
        raise SafeTxError("not a multiSend(bytes) call")
    (packed,) = eth_abi.decode(["bytes"], raw[4:])
    calls, i = [], 0
    while i < len(packed):
        size = int.from_bytes(packed[i + 53:i + 85], "big")
        tx = MultiSendTx.from_bytes(packed[i:i + 85 + size])
        calls.append(SafeCall(to=tx.to, data="0x" + bytes(tx.data).hex(), value=tx.value, operation=tx.operation.value))
        i += 85 + size
    return calls


def batch(*, safe: str, chain_id: int, nonce: int, calls: list[SafeCall], multi_send: str | None,
          version: str = "1.4.1") -> SafeTxSpec:
    """One SafeTx for `calls`: the call itself, or a DELEGATECALL to MultiSend for several."""
    if not calls:
        raise SafeTxError("a Safe transaction needs at least one call")
    if len(calls) == 1:
        c = calls[0]
        return SafeTxSpec(safe=safe, chain_id=chain_id, nonce=nonce, to=c.to, value=c.value, data=c.data,
                          operation=c.operation, version=version)
    if not multi_send:
        raise SafeTxError("several calls need the MultiSend library address (safe.multi_send)")
    return SafeTxSpec(safe=safe, chain_id=chain_id, nonce=nonce, to=multi_send, value=0,
                      data=multi_send_data(calls), operation=DELEGATECALL, version=version)


def exec_transaction_data(spec: SafeTxSpec, signatures: bytes) -> str:
    sig, types = EXEC_TRANSACTION
    return encode_call(sig, types, [spec.to, int(spec.value), _data_bytes(spec.data), int(spec.operation),
                                    int(spec.safe_tx_gas), int(spec.base_gas), int(spec.gas_price), spec.gas_token,
                                    spec.refund_receiver, bytes(signatures)])
