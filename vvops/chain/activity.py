"""On-chain activity over a time window: vault events (adaptive getLogs + eth_abi) and transactions to our
contracts with their receipt status (failed / reverted ones), read through one failover RpcClient."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from vvops.chain.abi import Abi
from vvops.chain.blocks import block_receipts, first_block_at_or_after, hex_int
from vvops.chain.calls import FunctionStats, analyse_calls
from vvops.chain.logs import EventDecoder, LogFetchStats, fetch_logs
from vvops.chain.rpc import RpcClient


@dataclass(frozen=True)
class BlockWindow:
    from_block: int
    to_block: int
    from_timestamp: int
    to_timestamp: int
    truncated: bool = False
    """True when the window held more than `max_blocks` blocks and its start was moved forward."""

    @property
    def blocks(self) -> int:
        return self.to_block - self.from_block + 1

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "blocks": self.blocks}


def window_blocks(rpc: RpcClient, *, window_hours: float, max_blocks: int = 50_000,
                  end_timestamp: int | None = None) -> BlockWindow:
    """The blocks of the last `window_hours`, ending at the latest block.

    The window is measured on chain time (the latest block's timestamp, or `end_timestamp`), so a node whose
    clock was moved (devnet time travel) or that lags still gets a full window; block lag is its own check.
    """
    latest = rpc.call("eth_getBlockByNumber", ["latest", False])
    to_block, to_ts = hex_int(latest["number"]), hex_int(latest["timestamp"])
    start_ts = (end_timestamp if end_timestamp is not None else to_ts) - int(window_hours * 3600)
    low = max(0, to_block - max_blocks + 1)
    from_block = first_block_at_or_after(rpc, start_ts, low=low, high=to_block)
    truncated = False
    if from_block == low and low > 0:
        # the search never looked below `low`: the window may be longer than max_blocks
        truncated = True
    return BlockWindow(from_block, to_block, start_ts, to_ts, truncated)


@dataclass
class VaultActivity:
    contract: str
    deposits: int = 0
    withdrawals: int = 0
    deposits_volume: int = 0
    withdrawals_volume: int = 0
    fees: int = 0
    users: set[str] = field(default_factory=set)
    largest_withdrawals: list[dict[str, Any]] = field(default_factory=list)
    other_events: dict[str, int] = field(default_factory=dict)
    log_requests: int = 0
    log_halvings: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "deposits": self.deposits, "withdrawals": self.withdrawals,
            "deposits_volume": str(self.deposits_volume), "withdrawals_volume": str(self.withdrawals_volume),
            "fees": str(self.fees), "unique_users": len(self.users),
            "largest_withdrawals": self.largest_withdrawals, "other_events": self.other_events,
            "log_requests": self.log_requests, "log_range_halvings": self.log_halvings,
        }


#: When contracts.yaml maps no activity events: ERC-4626 (`Deposit(sender, owner, assets, shares)`,
#: `Withdraw(sender, receiver, owner, assets, shares)`) and ours (`Deposit(user, assets, shares)`) both match.
USER_FIELDS = ("owner", "user", "account", "receiver", "sender")
AMOUNT_FIELDS = ("assets", "amount", "value")
DEFAULT_EVENTS = {"deposit": ("Deposit", None, None), "withdraw": ("Withdraw", None, None)}


def _field(args: dict[str, Any], name: str | None, fallbacks: tuple[str, ...], event: str) -> Any:
    if name is not None:
        if name not in args:
            raise KeyError(f"event {event} has no field {name!r} (fields: {', '.join(args)}): fix the activity "
                           "mapping in contracts.yaml")
        return args[name]
    for candidate in fallbacks:
        if candidate in args:
            return args[candidate]
    raise KeyError(f"event {event} has none of the fields {', '.join(fallbacks)} (fields: {', '.join(args)}): map "
                   "it under the contract's `activity:` in contracts.yaml")


def vault_activity(rpc: RpcClient, *, contract: str, address: str, abi: list[dict[str, Any]], window: BlockWindow,
                   top: int = 5, initial_range: int = 10_000,
                   events: dict[str, tuple[str, str | None, str | None]] | None = None) -> VaultActivity:
    """Deposit/Withdraw counts, volumes, unique users and the `top` largest withdrawals in the window.

    `events`: {"deposit"|"withdraw": (event name, user field, amount field)} from contracts.yaml (None fields:
    the usual names, see USER_FIELDS/AMOUNT_FIELDS)."""
    mapping = {**DEFAULT_EVENTS, **(events or {})}
    kinds = {event: kind for kind, (event, _, _) in mapping.items()}
    decoder = EventDecoder(abi)
    stats = LogFetchStats()
    logs = fetch_logs(rpc, address=address, from_block=window.from_block, to_block=window.to_block,
                      initial_range=initial_range, stats=stats)
    activity = VaultActivity(contract, log_requests=stats.requests, log_halvings=stats.halvings)
    withdrawals = []
    for event in decoder.decode_all(logs):
        kind = kinds.get(event.name)
        if kind is None:
            activity.other_events[event.name] = activity.other_events.get(event.name, 0) + 1
            continue
        _, user_field, amount_field = mapping[kind]
        user = _field(event.args, user_field, USER_FIELDS, event.name)
        amount = int(_field(event.args, amount_field, AMOUNT_FIELDS, event.name))
        activity.users.add(user)
        if kind == "deposit":
            activity.deposits += 1
            activity.deposits_volume += amount
        else:
            activity.withdrawals += 1
            activity.withdrawals_volume += amount
            activity.fees += event.args.get("fee", 0)
            withdrawals.append((amount, user, event))
    withdrawals.sort(key=lambda w: w[0], reverse=True)
    activity.largest_withdrawals = [
        {"user": user, "assets": amount, "block": e.block_number, "tx": e.transaction_hash}
        for amount, user, e in withdrawals[:top]
    ]
    return activity


@dataclass
class TxStats:
    blocks_scanned: int = 0
    transactions: int = 0
    failed: int = 0
    by_contract: dict[str, dict[str, int]] = field(default_factory=dict)
    failed_txs: list[dict[str, Any]] = field(default_factory=list)
    scan_ms: float = 0.0
    by_function: dict[tuple[str, str], FunctionStats] = field(default_factory=dict)
    """(contract, function) -> calls, failures, gas and decoded revert reasons (when ABIs were given)."""

    @property
    def error_rate_pct(self) -> float:
        return round(100.0 * self.failed / self.transactions, 4) if self.transactions else 0.0

    def summary(self) -> dict[str, Any]:
        return {"blocks_scanned": self.blocks_scanned, "transactions": self.transactions, "failed": self.failed,
                "error_rate_pct": self.error_rate_pct, "by_contract": self.by_contract,
                "failed_txs": self.failed_txs[:20], "scan_ms": self.scan_ms,
                "revert_reasons": self.revert_reasons(),
                "by_function": [{"contract": c, "function": f, **fs.as_dict()}
                                for (c, f), fs in sorted(self.by_function.items())]}

    def revert_reasons(self) -> dict[str, int]:
        """Decoded revert reasons over every function, most frequent first."""
        total: dict[str, int] = {}
        for fs in self.by_function.values():
            for reason, n in fs.reasons.items():
                total[reason] = total.get(reason, 0) + n
        return dict(sorted(total.items(), key=lambda kv: -kv[1]))


def transactions_to(rpc: RpcClient, *, contracts: dict[str, str], window: BlockWindow,
                    chunk_size: int = 50, abis: dict[str, Abi] | None = None) -> TxStats:
    """Transactions sent to `contracts` ({name: address}) in the window, and those whose receipt has status 0.
    With `abis` ({name: Abi}) also per function: calls, gas and the decoded reason of every revert."""
    started = time.perf_counter()
    by_address = {address.lower(): name for name, address in contracts.items()}
    numbers = list(range(window.from_block, window.to_block + 1))
    receipts = block_receipts(rpc, numbers, to=set(by_address), chunk_size=chunk_size)
    stats = TxStats(blocks_scanned=len(numbers), by_contract={n: {"transactions": 0, "failed": 0} for n in contracts})
    for receipt in receipts:
        name = by_address[(receipt.get("to") or "").lower()]
        stats.transactions += 1
        stats.by_contract[name]["transactions"] += 1
        if hex_int(receipt.get("status")) == 0:
            stats.failed += 1
            stats.by_contract[name]["failed"] += 1
            stats.failed_txs.append({"contract": name, "tx": receipt["transactionHash"],
                                     "block": hex_int(receipt["blockNumber"]), "from": receipt.get("from")})
    if abis is not None:
        stats.by_function, reverted = analyse_calls(rpc, receipts, by_address=by_address, abis=abis,
                                                     chunk_size=chunk_size)
        reasons = {r["tx"]: r for r in reverted}
        for failed in stats.failed_txs:
            if failed["tx"] in reasons:
                failed.update(function=reasons[failed["tx"]]["function"], reason=reasons[failed["tx"]]["reason"])
    stats.scan_ms = round((time.perf_counter() - started) * 1000, 1)
    return stats
