"""No orphaned timelock operations: which operations are pending on chain, and which of them are not ours.

Reads the timelock's own events — `CallScheduled(bytes32 indexed id, uint256 indexed index, ...)`,
`CallExecuted(bytes32 indexed id, uint256 indexed index, ...)`, `Cancelled(bytes32 indexed id)` — which our
Timelock and OpenZeppelin's TimelockController emit with the same signatures, so only topics are needed:
an operation is pending from its first CallScheduled until a CallExecuted or Cancelled with its id (a batch
emits one CallScheduled per call, all with the same id).

`reconcile` compares that with the operations the store says we scheduled:
- `unknown`: pending on chain, never scheduled by us (someone else holds the proposer role, or our record
  was lost) — P1;
- `stale`: ours, ready for longer than the grace period and still not executed (the run that scheduled it
  died and nobody resumed it) — P2;
- ended elsewhere: ours, executed or cancelled on chain by someone else (the store is updated, reported).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_utils import keccak

CALL_SCHEDULED = "0x" + keccak(text="CallScheduled(bytes32,uint256,address,uint256,bytes,bytes32,uint256)").hex()
CALL_EXECUTED = "0x" + keccak(text="CallExecuted(bytes32,uint256,address,uint256,bytes)").hex()
CANCELLED = "0x" + keccak(text="Cancelled(bytes32)").hex()
CALL_SALT = "0x" + keccak(text="CallSalt(bytes32,bytes32)").hex()
TIMELOCK_TOPICS = [[CALL_SCHEDULED, CALL_EXECUTED, CANCELLED, CALL_SALT]]


@dataclass
class OperationOnChain:
    operation_id: str
    scheduled_block: int
    scheduled_tx: str | None
    calls: int = 1
    salt: str | None = None
    """From CallSalt (emitted when the salt is not zero): ours are keccak(idempotency key)."""
    ended: str | None = None
    """None while pending; "executed" or "cancelled" once ended."""


def operations_from_logs(logs: list[dict[str, Any]]) -> dict[str, OperationOnChain]:
    """Every operation seen in the logs (chain order), with how it ended, if it did."""
    ops: dict[str, OperationOnChain] = {}
    for log in sorted(logs, key=lambda l: (_int(l.get("blockNumber")), _int(l.get("logIndex")))):
        topics = [t.lower() if isinstance(t, str) else "0x" + bytes(t).hex() for t in log.get("topics", [])]
        if len(topics) < 2:
            continue
        op_id = topics[1]
        if topics[0] == CALL_SCHEDULED:
            if op_id in ops and ops[op_id].ended is None:
                ops[op_id].calls += 1
            else:
                ops[op_id] = OperationOnChain(op_id, _int(log.get("blockNumber")), log.get("transactionHash"))
        elif topics[0] == CALL_SALT and op_id in ops:
            data = log.get("data") or "0x"
            ops[op_id].salt = ("0x" + (data[2:] if isinstance(data, str) else bytes(data).hex())[:64]).lower()
        elif topics[0] in (CALL_EXECUTED, CANCELLED) and op_id in ops:
            ops[op_id].ended = "executed" if topics[0] == CALL_EXECUTED else "cancelled"
    return ops


def _int(value: Any) -> int:
    if value is None:
        return 0
    return int(value, 16) if isinstance(value, str) else int(value)


@dataclass
class Reconciliation:
    unknown: list[OperationOnChain] = field(default_factory=list)
    stale: list[dict[str, Any]] = field(default_factory=list)
    ended_elsewhere: list[dict[str, Any]] = field(default_factory=list)
    pending_on_chain: int = 0


def reconcile(on_chain: dict[str, OperationOnChain], ours: dict[str, dict[str, Any]], *, chain_time: int,
              grace_s: int, our_salts: set[str] = frozenset()) -> Reconciliation:
    """`ours`: operation id → {"status", "ready_at", "description", ...} from the store; `our_salts`: salts of
    operations sent under one of our idempotency keys by another path (e.g. a Safe transaction)."""
    out = Reconciliation(pending_on_chain=sum(op.ended is None for op in on_chain.values()))
    for op_id, op in on_chain.items():
        mine = ours.get(op_id)
        if mine is None and op.salt and op.salt in our_salts:
            continue  # ours, scheduled through another path that keeps its own records
        if op.ended is None and mine is None:
            out.unknown.append(op)
        elif op.ended is None and mine is not None and mine.get("ready_at") and \
                chain_time > int(mine["ready_at"]) + grace_s:
            out.stale.append({"operation_id": op_id, **mine})
        elif op.ended is not None and mine is not None and mine.get("status") == "scheduled":
            out.ended_elsewhere.append({"operation_id": op_id, "ended": op.ended, **mine})
    return out
