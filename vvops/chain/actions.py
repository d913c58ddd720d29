"""Exactly-once on-chain actions: every transaction is keyed, signed and STORED before it is broadcast.

`ChainActions(rpc, engine, signer, chain_id=...)`; `send(idempotency_key=, to=, data=, value=0,
description="") -> ActionResult`:

1. A row with this key exists → never sign again. Mined/failed/replaced → return what is stored (a
   reverted tx raises `ActionReverted` again). Pending/broadcast → `follow` it: receipt known → mined (or
   failed with the decoded revert); the node still knows the hash → wait; the node forgot it and the sender's
   nonce has not moved → rebroadcast the stored raw tx (same hash, never a new tx); the nonce was used by
   another transaction → `replaced` (`ActionReplaced`).
2. New key → estimate gas (a revert is decoded and raised as `ActionReverted`; nothing is stored, nothing
   sent), pick the nonce under the store's write lock: max(node's pending nonce, highest stored nonce of this
   sender + 1); EIP-1559 fees from eth_feeHistory + eth_maxPriorityFeePerGas; sign locally; COMMIT the row
   (key, nonce, hash, raw tx, status pending); only then broadcast (status broadcast) and wait for the
   receipt (status mined / failed).
3. Not mined after `stuck_after_blocks` new blocks → `ActionStuck` (the row keeps status broadcast and gets
   the error: it may still be mined; a rerun keeps following it, or an operator replaces it).

A crash anywhere after the commit is safe: the rerun finds the key. A crash between commit and broadcast
leaves a signed tx that the rerun broadcasts. (Rows an older version left "awaiting signatures" for a proposal
file still read back as `awaiting_signatures`; Safe proposals now live in vvops/safe.)

Plain Python (no Prefect): the Prefect tasks in tasks/governance.py wrap it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from eth_utils import to_checksum_address
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from vvops.chain.rpc import RpcClient, RpcError
from vvops.chain.signing import Signer
from vvops.chain.abi import decode_revert
from vvops.store import session_scope
from vvops.store.models import ChainAction, ChainActionStatus

PENDING, BROADCAST, MINED, FAILED, REPLACED = (s.value for s in ChainActionStatus)
AWAITING_SIGNATURES = "awaiting_signatures"


class ActionError(RuntimeError):
    """An action did not succeed; `.result` holds what is known (status, hash, nonce, error)."""

    def __init__(self, message: str, result: ActionResult | None = None):
        self.result = result
        super().__init__(message)


class ActionReverted(ActionError):
    """The transaction reverts (at estimation: nothing sent) or was mined with status 0."""


class ActionReplaced(ActionError):
    """The sender's nonce was consumed by another transaction: ours can never be mined."""


class ActionStuck(ActionError):
    """Broadcast but not mined after the configured number of blocks."""


class IdempotencyConflict(ActionError):
    """The key was already used for a different transaction (other sender, target or data)."""


@dataclass
class ActionResult:
    idempotency_key: str
    status: str
    tx_hash: str | None = None
    nonce: int | None = None
    from_address: str | None = None
    to_address: str | None = None
    block_number: int | None = None
    gas_used: int | None = None
    error: str | None = None
    sent_now: bool = False  # this call broadcast it (False: found stored/known)
    receipt: dict[str, Any] | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("receipt", None)
        return out


def data_hex(data: bytes | str | None) -> str:
    if data is None:
        return "0x"
    if isinstance(data, (bytes, bytearray)):
        return "0x" + bytes(data).hex()
    return data if data.startswith("0x") else "0x" + data


def data_hash(data: str) -> str:
    return "0x" + hashlib.sha256(bytes.fromhex(data[2:])).hexdigest()


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


@dataclass
class FeePolicy:
    gas_margin: float = 1.25  # estimate × margin
    base_fee_multiplier: int = 2  # maxFee = base × 2 + tip: survives ~6 full blocks of base-fee growth
    min_priority_fee_wei: int = 1_000_000  # 0.001 gwei
    max_fee_cap_wei: int | None = None  # refuse to sign above this (None: no cap)


class ChainActions:
    def __init__(self, rpc: RpcClient, engine: Engine, signer: Signer, *, chain_id: int | None = None,
                 fees: FeePolicy | None = None, stuck_after_blocks: int = 25, receipt_timeout_s: float = 120,
                 poll_interval_s: float = 0.2, clock: Callable[[], float] = time.monotonic):
        self.rpc = rpc
        self.engine = engine
        self.signer = signer
        self.chain_id = int(chain_id) if chain_id is not None else _int(rpc.call("eth_chainId"))
        self.fees = fees or FeePolicy()
        self.stuck_after_blocks = stuck_after_blocks
        self.receipt_timeout_s = receipt_timeout_s
        self.poll_interval_s = poll_interval_s
        self._clock = clock

    # ------------------------------------------------------------------ look-ups
    def lookup(self, idempotency_key: str) -> ActionResult | None:
        with session_scope(self.engine) as session:
            row = session.scalar(select(ChainAction).where(ChainAction.idempotency_key == idempotency_key))
            return self._result(row) if row is not None else None

    @staticmethod
    def _result(row: ChainAction, **extra: Any) -> ActionResult:
        status = row.status
        if status == PENDING and row.raw_tx is None and row.error and row.error.startswith(AWAITING_SIGNATURES):
            status = AWAITING_SIGNATURES
        return ActionResult(idempotency_key=row.idempotency_key, status=status, tx_hash=row.signed_tx_hash,
                            nonce=row.nonce, from_address=row.from_address, to_address=row.to_address,
                            block_number=row.block_number, error=row.error, **extra)

    def _update(self, key: str, **values: Any) -> ActionResult:
        with session_scope(self.engine, immediate=True) as session:
            row = session.scalar(select(ChainAction).where(ChainAction.idempotency_key == key))
            for name, value in values.items():
                setattr(row, name, value)
            session.flush()
            return self._result(row)

    # ------------------------------------------------------------------ send
    def send(self, *, idempotency_key: str, to: str, data: bytes | str, value: int = 0, description: str = "",
             wait: bool = True) -> ActionResult:
        to = to_checksum_address(to)
        data = data_hex(data)
        existing = self.lookup(idempotency_key)
        if existing is not None:
            self._check_same(idempotency_key, to, data)
            return self._resume(existing, wait=wait)

        tx = self._build(to=to, data=data, value=value)  # raises ActionReverted before anything is stored
        with session_scope(self.engine, immediate=True) as session:  # the write lock serialises nonce picks
            if session.scalar(select(ChainAction.id).where(ChainAction.idempotency_key == idempotency_key)):
                raise IdempotencyConflict(f"{idempotency_key}: stored concurrently by another run; rerun to follow it")
            tx["nonce"] = self._next_nonce(session)
            signed = self.signer.sign_transaction(tx)
            session.add(ChainAction(
                idempotency_key=idempotency_key, chain_id=self.chain_id, from_address=self.signer.address,
                to_address=to, nonce=signed.nonce, selector=data[:10] if len(data) >= 10 else None,
                data_hash=data_hash(data), description=description[:2000], signed_tx_hash=signed.tx_hash,
                raw_tx=signed.raw_tx, status=PENDING))
        # committed: from here on a crash is recovered by a rerun with the same key
        self._broadcast(idempotency_key, signed.raw_tx, signed.tx_hash)
        result = self._update(idempotency_key, status=BROADCAST)
        result.sent_now = True
        return self._wait(result) if wait else result

    # ------------------------------------------------------------------ pre-built sends (containment fast path)
    def prepare(self, *, to: str, data: bytes | str, value: int = 0) -> dict[str, Any]:
        """A transaction ready to sign: gas estimated (ActionReverted when it would revert), EIP-1559 fees and
        the sender's pending nonce from the node. Prepare it again every block; `send_prepared` sends it."""
        to, data = to_checksum_address(to), data_hex(data)
        tx = self._build(to=to, data=data, value=value)
        tx["nonce"] = _int(self.rpc.call("eth_getTransactionCount", [self.signer.address, "pending"]))
        return tx

    def send_prepared(self, *, idempotency_key: str, tx: dict[str, Any], description: str = "",
                      signed: Any = None) -> ActionResult:
        """Store then broadcast a prepared transaction with no node round trip before the broadcast.

        The nonce is max(the prepared one, this sender's highest in-flight stored nonce + 1), re-signed when it
        moved; `signed` is a pre-signed copy of `tx` used when the nonce did not move. Same guarantees as
        `send`: a stored key is never signed again (its stored result is returned, not followed)."""
        existing = self.lookup(idempotency_key)
        if existing is not None:
            self._check_same(idempotency_key, tx["to"], tx["data"])
            return existing
        data = data_hex(tx["data"])
        with session_scope(self.engine, immediate=True) as session:
            if session.scalar(select(ChainAction.id).where(ChainAction.idempotency_key == idempotency_key)):
                raise IdempotencyConflict(f"{idempotency_key}: stored concurrently by another run; rerun to follow it")
            stored = session.scalar(select(func.max(ChainAction.nonce)).where(
                ChainAction.chain_id == self.chain_id, ChainAction.from_address == self.signer.address,
                ChainAction.status.in_((PENDING, BROADCAST)), ChainAction.nonce >= tx["nonce"]))
            nonce = max(tx["nonce"], stored + 1 if stored is not None else 0)
            if signed is None or nonce != signed.nonce:
                signed = self.signer.sign_transaction({**tx, "nonce": nonce})
            session.add(ChainAction(
                idempotency_key=idempotency_key, chain_id=self.chain_id, from_address=self.signer.address,
                to_address=to_checksum_address(tx["to"]), nonce=signed.nonce,
                selector=data[:10] if len(data) >= 10 else None, data_hash=data_hash(data),
                description=description[:2000], signed_tx_hash=signed.tx_hash, raw_tx=signed.raw_tx, status=PENDING))
        self._broadcast(idempotency_key, signed.raw_tx, signed.tx_hash)
        result = self._update(idempotency_key, status=BROADCAST)
        result.sent_now = True
        return result

    def _check_same(self, key: str, to: str, data: str) -> None:
        with session_scope(self.engine) as session:
            row = session.scalar(select(ChainAction).where(ChainAction.idempotency_key == key))
            same = (row.chain_id == self.chain_id and row.to_address == to and row.data_hash == data_hash(data)
                    and row.from_address == self.signer.address)
        if not same:
            raise IdempotencyConflict(f"idempotency key {key!r} was already used for a different transaction "
                                      "(sender, target, data or chain differ): use a new key")

    def _next_nonce(self, session) -> int:
        """max(node's pending nonce, highest in-flight stored nonce + 1).

        In-flight = stored pending/broadcast rows whose nonce the chain has not consumed yet: a row signed and
        committed but not broadcast (crash) keeps its nonce reserved until its key is rerun; mined/failed/
        replaced rows are already counted by the node."""
        chain_pending, chain_latest = (_int(n) for n in self.rpc.batch([
            ("eth_getTransactionCount", [self.signer.address, "pending"]),
            ("eth_getTransactionCount", [self.signer.address, "latest"])]))
        stored = session.scalar(select(func.max(ChainAction.nonce)).where(
            ChainAction.chain_id == self.chain_id, ChainAction.from_address == self.signer.address,
            ChainAction.status.in_((PENDING, BROADCAST)), ChainAction.nonce >= chain_latest))
        return max(chain_pending, (stored + 1) if stored is not None else 0)

    def _build(self, *, to: str, data: str, value: int) -> dict[str, Any]:
        call = {"from": self.signer.address, "to": to, "data": data, "value": hex(value)}
        try:
            gas = _int(self.rpc.call("eth_estimateGas", [call]))
        except RpcError as exc:
            reason = decode_revert(_revert_data(exc))
            raise ActionReverted(f"would revert: {reason}" if reason.name else f"would revert: {exc}") from None
        base_fee, tip = self._fees()
        max_fee = base_fee * self.fees.base_fee_multiplier + tip
        if self.fees.max_fee_cap_wei is not None and max_fee > self.fees.max_fee_cap_wei:
            raise ActionError(f"max fee {max_fee} wei exceeds the cap {self.fees.max_fee_cap_wei} wei: not signing")
        return {"type": 2, "chainId": self.chain_id, "to": to, "data": data, "value": value,
                "gas": int(gas * self.fees.gas_margin) + 1, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}

    def _fees(self) -> tuple[int, int]:
        history = self.rpc.call("eth_feeHistory", [hex(5), "latest", [50]])
        base_fees = [_int(b) for b in history.get("baseFeePerGas") or []]
        base_fee = base_fees[-1] if base_fees else _int(self.rpc.call("eth_gasPrice"))
        try:
            tip = _int(self.rpc.call("eth_maxPriorityFeePerGas"))
        except RpcError:
            rewards = [_int(r[0]) for r in history.get("reward") or [] if r]
            tip = sorted(rewards)[len(rewards) // 2] if rewards else 0
        return base_fee, max(tip, self.fees.min_priority_fee_wei)

    def _broadcast(self, key: str, raw_tx: str, tx_hash: str) -> None:
        try:
            answer = self.rpc.call("eth_sendRawTransaction", [raw_tx])
        except RpcError as exc:
            text = str(exc).lower()
            if "already known" in text or "already imported" in text or "known transaction" in text:
                return
            if "nonce too low" in text or "nonce is too low" in text:
                return  # follow() decides: mined (ours) or replaced (another tx took the nonce)
            self._update(key, error=f"broadcast refused: {exc}")
            raise ActionError(f"{key}: the node refused the transaction: {exc}") from None
        if answer and answer.lower() != tx_hash.lower():
            raise ActionError(f"{key}: node returned hash {answer}, expected {tx_hash}")

    # ------------------------------------------------------------------ follow
    def _resume(self, result: ActionResult, *, wait: bool) -> ActionResult:
        if result.status == MINED:
            return self._with_receipt(result)
        if result.status == FAILED:
            raise ActionReverted(f"{result.idempotency_key}: {result.error}", result)
        if result.status == REPLACED:
            raise ActionReplaced(f"{result.idempotency_key}: {result.error}", result)
        if result.status == AWAITING_SIGNATURES:
            return result
        return self.follow(result.idempotency_key, wait=wait)

    def _with_receipt(self, result: ActionResult) -> ActionResult:
        receipt = self.rpc.call("eth_getTransactionReceipt", [result.tx_hash]) if result.tx_hash else None
        result.receipt = receipt
        if receipt:
            result.gas_used = _int(receipt["gasUsed"])
        return result

    def follow(self, idempotency_key: str, *, wait: bool = True) -> ActionResult:
        """Bring a stored pending/broadcast action to its outcome without ever signing a new transaction."""
        with session_scope(self.engine) as session:
            row = session.scalar(select(ChainAction).where(ChainAction.idempotency_key == idempotency_key))
            raw_tx, tx_hash, nonce, sender = row.raw_tx, row.signed_tx_hash, row.nonce, row.from_address
            result = self._result(row)
        if raw_tx is None:
            return result
        receipt = self.rpc.call("eth_getTransactionReceipt", [tx_hash])
        if receipt:
            return self._settle(result, receipt)
        known = self.rpc.call("eth_getTransactionByHash", [tx_hash])
        if not known:
            mined_nonce = _int(self.rpc.call("eth_getTransactionCount", [sender, "latest"]))
            if mined_nonce > nonce:
                receipt = self.rpc.call("eth_getTransactionReceipt", [tx_hash])  # mined meanwhile?
                if receipt:
                    return self._settle(result, receipt)
                return self._replaced(result, mined_nonce)
            self._broadcast(idempotency_key, raw_tx, tx_hash)  # the node dropped it: same bytes, same hash
            result = self._update(idempotency_key, status=BROADCAST)
        elif result.status == PENDING:
            result = self._update(idempotency_key, status=BROADCAST)
        return self._wait(result) if wait else result

    def _wait(self, result: ActionResult) -> ActionResult:
        start_block = _int(self.rpc.call("eth_blockNumber"))
        deadline = self._clock() + self.receipt_timeout_s
        while True:
            receipt = self.rpc.call("eth_getTransactionReceipt", [result.tx_hash])
            if receipt:
                return self._settle(result, receipt)
            block = _int(self.rpc.call("eth_blockNumber"))
            if not self.rpc.call("eth_getTransactionByHash", [result.tx_hash]):
                mined_nonce = _int(self.rpc.call("eth_getTransactionCount", [result.from_address, "latest"]))
                if mined_nonce > result.nonce:
                    receipt = self.rpc.call("eth_getTransactionReceipt", [result.tx_hash])
                    if receipt:
                        return self._settle(result, receipt)
                    return self._replaced(result, mined_nonce)
            if block - start_block >= self.stuck_after_blocks or self._clock() > deadline:
                message = (f"stuck: {result.tx_hash} (nonce {result.nonce}) not mined after {block - start_block} "
                           f"block(s) / {self.receipt_timeout_s:.0f} s; still pending — rerun to keep following it "
                           "or replace it (same nonce, higher fee) by hand")
                stored = self._update(result.idempotency_key, error=message)
                raise ActionStuck(f"{result.idempotency_key}: {message}", stored)
            time.sleep(self.poll_interval_s)

    def _replaced(self, result: ActionResult, mined_nonce: int) -> ActionResult:
        message = (f"replaced: nonce {result.nonce} of {result.from_address} was used by another transaction "
                   f"(account nonce now {mined_nonce}); {result.tx_hash} can never be mined")
        stored = self._update(result.idempotency_key, status=REPLACED, error=message)
        raise ActionReplaced(f"{result.idempotency_key}: {message}", stored)

    def _settle(self, result: ActionResult, receipt: dict[str, Any]) -> ActionResult:
        block = _int(receipt["blockNumber"])
        if _int(receipt.get("status", "0x1")) == 1:
            stored = self._update(result.idempotency_key, status=MINED, block_number=block, error=None)
            stored.sent_now, stored.receipt, stored.gas_used = result.sent_now, receipt, _int(receipt["gasUsed"])
            return stored
        reason = self._revert_reason(receipt, block)
        stored = self._update(result.idempotency_key, status=FAILED, block_number=block,
                              error=f"reverted in block {block}: {reason}")
        stored.sent_now, stored.receipt = result.sent_now, receipt
        raise ActionReverted(f"{result.idempotency_key}: reverted in block {block}: {reason}", stored)

    def _revert_reason(self, receipt: dict[str, Any], block: int) -> str:
        """Replay the call at the parent block (approximation: earlier txs of the block are not replayed)."""
        try:
            tx = self.rpc.call("eth_getTransactionByHash", [receipt["transactionHash"]])
            self.rpc.call("eth_call", [{"from": tx["from"], "to": tx["to"], "data": tx["input"],
                                        "value": tx.get("value", "0x0")}, hex(max(block - 1, 0))])
        except RpcError as exc:
            decoded = decode_revert(_revert_data(exc))
            return str(decoded) if decoded.name else str(exc)
        except Exception as exc:  # noqa: BLE001 - best effort
            return f"unknown ({type(exc).__name__})"
        return "unknown (the replay did not revert)"


def _revert_data(exc: RpcError) -> bytes | None:
    data = exc.data
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None
