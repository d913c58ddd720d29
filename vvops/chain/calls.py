"""Calls to our contracts by function: the function named from the calldata selector through the contract's ABI,
gas used from the receipt, and for a reverted call its decoded reason (a custom error of the ABI, Error(string)
or Panic(uint256)).

A mined transaction's revert data is not in its receipt. It is read with `debug_traceTransaction` (callTracer:
the top call's `output`), which anvil, geth and most archive providers answer; where the node refuses it, the
call is replayed with `eth_call` at the parent block (the state before the block: a revert that depended on an
earlier transaction of the same block may then read differently, and is said to be a replay). A revert with no
data is `(no reason)`; one no ABI knows is `<unknown 0x12345678>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vvops.chain.abi import Abi, decode_revert, selector
from vvops.chain.blocks import hex_int
from vvops.chain.rpc import RpcError, RpcUnavailable

#: at most this many reverted transactions per scan get their reason read (the rest count as "not decoded")
MAX_DECODED_REVERTS = 200
NO_REASON = "(no reason)"
NOT_DECODED = "(not decoded)"


def function_names(abi: Abi) -> dict[str, str]:
    """{"0x12345678": "withdraw"} for every function of the ABI (overloads share the name)."""
    return {"0x" + selector(items[0]).hex(): items[0]["name"]
            for key, items in abi.functions.items() if "(" in key}


def function_of(calldata: str | None, names: dict[str, str]) -> str:
    """The function a calldata calls: `receive` without calldata, `unknown` when the ABI lacks the selector."""
    data = (calldata or "0x").lower()
    if len(data) < 10:
        return "receive"
    return names.get(data[:10], "unknown")


def reason_text(data: bytes | str | None, abi: Abi | None) -> str:
    """One label per revert: `AboveWithdrawalLimit`, `Error: not enough`, `Panic 0x11`, `(no reason)`."""
    decoded = decode_revert(data, abi)
    if decoded.name == "":
        return NO_REASON
    if decoded.name == "Error":
        return f"Error: {str(decoded.args.get('message', ''))[:80]}"
    if decoded.name == "Panic":
        return f"Panic 0x{int(decoded.args.get('code', 0)):02x}"
    return decoded.name


def _revert_data_of_error(exc: RpcError) -> str | None:
    data = exc.data
    if isinstance(data, dict):  # some nodes nest it: {"data": "0x..."} or {"originalError": {"data": ...}}
        data = data.get("data") or (data.get("originalError") or {}).get("data")
    return data if isinstance(data, str) and data.startswith("0x") else None


def revert_data(rpc: Any, tx: dict[str, Any]) -> tuple[str | None, str]:
    """(revert data, how it was read: "trace" | "replay" | "unavailable") of a mined, reverted transaction."""
    try:
        trace = rpc.call("debug_traceTransaction", [tx["hash"], {"tracer": "callTracer"}])
        if isinstance(trace, dict):
            return trace.get("output") or "0x", "trace"
    except RpcError:
        pass  # the node has no debug namespace: replay
    call = {"from": tx.get("from"), "to": tx.get("to"), "data": tx.get("input") or tx.get("data") or "0x",
            "value": tx.get("value") or "0x0", "gas": tx.get("gas")}
    block = hex_int(tx["blockNumber"]) - 1
    try:
        rpc.call("eth_call", [{k: v for k, v in call.items() if v is not None}, hex(max(block, 0))])
    except RpcError as exc:
        return _revert_data_of_error(exc) or "0x", "replay"
    except RpcUnavailable:
        return None, "unavailable"
    return None, "unavailable"  # the replay succeeded: the revert depended on the block's earlier transactions


@dataclass
class FunctionStats:
    calls: int = 0
    failed: int = 0
    gas_used_ok: int = 0          # gas of successful calls (the cost of the function doing its work)
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def mean_gas(self) -> float | None:
        ok = self.calls - self.failed
        return self.gas_used_ok / ok if ok else None

    @property
    def error_rate_pct(self) -> float:
        return round(100.0 * self.failed / self.calls, 4) if self.calls else 0.0

    def as_dict(self) -> dict[str, Any]:
        mean = self.mean_gas
        return {"calls": self.calls, "failed": self.failed, "error_rate_pct": self.error_rate_pct,
                "mean_gas": None if mean is None else round(mean), "reasons": dict(self.reasons)}


def analyse_calls(rpc: Any, receipts: list[dict[str, Any]], *, by_address: dict[str, str],
                  abis: dict[str, Abi], chunk_size: int = 50,
                  max_decoded: int = MAX_DECODED_REVERTS) -> tuple[dict[tuple[str, str], FunctionStats], list[dict]]:
    """Per (contract, function): calls, failures, gas and decoded revert reasons of `receipts` (sent to
    `by_address` {address lower: contract name}). Returns the stats and the reverted calls (tx, function, reason)."""
    hashes = [r["transactionHash"] for r in receipts]
    txs = rpc.batch_chunked([("eth_getTransactionByHash", [h]) for h in hashes], chunk_size) if hashes else []
    names = {name: function_names(abi) for name, abi in abis.items()}
    stats: dict[tuple[str, str], FunctionStats] = {}
    reverted: list[dict[str, Any]] = []
    for receipt, tx in zip(receipts, txs):
        contract = by_address[(receipt.get("to") or "").lower()]
        function = function_of((tx or {}).get("input"), names.get(contract, {}))
        fs = stats.setdefault((contract, function), FunctionStats())
        fs.calls += 1
        gas = hex_int(receipt.get("gasUsed") or 0)
        if hex_int(receipt.get("status")) == 1:
            fs.gas_used_ok += gas
            continue
        fs.failed += 1
        if tx is None or len(reverted) >= max_decoded:
            reason, how = NOT_DECODED, "skipped"
        else:
            data, how = revert_data(rpc, {**tx, "blockNumber": receipt["blockNumber"]})
            reason = NOT_DECODED if data is None else reason_text(data, abis.get(contract))
        fs.reasons[reason] = fs.reasons.get(reason, 0) + 1
        reverted.append({"contract": contract, "function": function, "reason": reason, "read_by": how,
                         "tx": receipt["transactionHash"], "block": hex_int(receipt["blockNumber"])})
    return stats, reverted
