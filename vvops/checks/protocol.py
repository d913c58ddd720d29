"""Protocol Health Verification: pure rules turning what was read from the chain into check outcomes.

No I/O here: the tasks read (vvops.chain) and pass plain values and the configured thresholds in.
A threshold is anything with `.evaluate(value) -> "ok" | "warn" | "crit"` (vvops.config Threshold).
"""

from __future__ import annotations

import statistics
from typing import Any, Protocol

from vvops.checks.outcome import CheckOutcome, worst_status

AREA = "protocol"


class ThresholdLike(Protocol):
    warn: float | None
    crit: float | None

    def evaluate(self, value: float) -> str: ...


def _levels(threshold: ThresholdLike | None) -> dict[str, Any] | None:
    if threshold is None:
        return None
    return {"warn": threshold.warn, "crit": threshold.crit}


def _judge(threshold: ThresholdLike | None, value: float | None) -> str:
    if threshold is None or value is None:
        return "ok"
    return threshold.evaluate(value)


def evaluate_activity(*, contract: str, activity: dict[str, Any], tvl: int | None, decimals: int,
                      thresholds: dict[str, ThresholdLike], window: dict[str, Any]) -> list[CheckOutcome]:
    """Summary of the window's deposits/withdrawals plus the largest-withdrawal and net-outflow rules (% of TVL)."""
    prefix = f"protocol.onchain_activity.{contract}"
    unit = 10**decimals
    deposits_volume = int(activity["deposits_volume"])
    withdrawals_volume = int(activity["withdrawals_volume"])
    details = {**activity, "window": window, "tvl": str(tvl) if tvl is not None else None}
    outcomes = [CheckOutcome(
        f"{prefix}.summary", AREA, "ok",
        f"{activity['deposits']} deposits ({deposits_volume / unit:,.2f}), {activity['withdrawals']} withdrawals "
        f"({withdrawals_volume / unit:,.2f}), {activity['unique_users']} users over {window['blocks']} blocks",
        value=float(activity["deposits"] + activity["withdrawals"]), details=details,
    )]
    if not tvl:
        outcomes.append(CheckOutcome(f"{prefix}.large_withdrawal", AREA, "error", "TVL is zero or unknown: cannot "
                                     "relate withdrawals to it", hint="check the vault's totalAssets() read"))
        return outcomes

    largest = activity["largest_withdrawals"][0] if activity["largest_withdrawals"] else None
    largest_pct = round(100.0 * int(largest["assets"]) / tvl, 4) if largest else 0.0
    status = _judge(thresholds.get("large_withdrawal_pct_tvl"), largest_pct)
    message = (f"largest withdrawal {int(largest['assets']) / unit:,.2f} by {largest['user']} is {largest_pct:.2f} % of TVL"
               if largest else "no withdrawals in the window")
    outcomes.append(CheckOutcome(
        f"{prefix}.large_withdrawal", AREA, status, message, value=largest_pct,
        threshold=_levels(thresholds.get("large_withdrawal_pct_tvl")),
        hint=None if status == "ok" else "confirm the withdrawer and the tx; a run on the vault may precede an exploit",
        details={"largest": largest, "tvl": str(tvl)},
    ))

    net_outflow_pct = round(100.0 * (withdrawals_volume - deposits_volume) / tvl, 4)
    status = _judge(thresholds.get("net_outflow_pct_tvl"), net_outflow_pct)
    outcomes.append(CheckOutcome(
        f"{prefix}.net_outflow", AREA, status,
        f"net outflow {(withdrawals_volume - deposits_volume) / unit:,.2f} = {net_outflow_pct:.2f} % of TVL",
        value=net_outflow_pct, threshold=_levels(thresholds.get("net_outflow_pct_tvl")),
        hint=None if status == "ok" else "check liquidity and recent governance or market events",
    ))
    return outcomes


def evaluate_tx_errors(*, stats: dict[str, Any], threshold: ThresholdLike | None, min_transactions: int,
                       window: dict[str, Any]) -> CheckOutcome:
    """Failed (status 0) transactions to our contracts over all transactions to them in the window."""
    total, failed, rate = stats["transactions"], stats["failed"], stats["error_rate_pct"]
    status = _judge(threshold, rate) if total >= min_transactions else "ok"
    message = f"{failed} of {total} transactions to our contracts failed ({rate:.2f} %) over {window['blocks']} blocks"
    reasons = stats.get("revert_reasons") or {}
    if reasons:
        message += "; reverts: " + ", ".join(f"{r} ×{n}" for r, n in list(reasons.items())[:3])
    worst = max((f for f in stats.get("by_function") or [] if f["failed"]), key=lambda f: f["error_rate_pct"],
                default=None)
    if worst is not None:
        message += f"; worst function {worst['contract']}.{worst['function']} {worst['error_rate_pct']:.1f} %"
    if total < min_transactions and failed:
        message += f"; fewer than {min_transactions} transactions, not alerted"
    return CheckOutcome("protocol.tx_error_rate", AREA, status, message, value=rate, threshold=_levels(threshold),
                        hint=None if status == "ok" else "see the failed functions and their revert reasons in the "
                        "details (by_function, failed_txs) and check the front end / integrators",
                        details={**stats, "window": window, "min_transactions": min_transactions})


def evaluate_network(*, fees: dict[str, Any], timing: dict[str, Any], sync: dict[str, dict[str, Any]],
                     block_time_s: float, thresholds: dict[str, ThresholdLike]) -> list[CheckOutcome]:
    """Base fee, block lag, block-time drift versus the environment's block time, sync state of each RPC URL."""
    prefix = "protocol.network_conditions"
    outcomes = []
    base_fee = fees.get("base_fee_gwei")
    status = _judge(thresholds.get("base_fee_gwei"), base_fee)
    p = fees.get("priority_fee_gwei", {})
    outcomes.append(CheckOutcome(
        f"{prefix}.base_fee", AREA, status,
        f"base fee {base_fee} gwei; priority fee p10/p50/p90 {p.get('p10')}/{p.get('p50')}/{p.get('p90')} gwei",
        value=base_fee, threshold=_levels(thresholds.get("base_fee_gwei")), details=fees,
        hint=None if status == "ok" else "defer non-urgent governance transactions; raise fee caps for urgent ones",
    ))

    lag = timing["block_lag_s"]
    status = _judge(thresholds.get("block_lag_s"), lag)
    outcomes.append(CheckOutcome(
        f"{prefix}.block_lag", AREA, status, f"latest block {timing['latest_block']} is {lag:.0f} s old",
        value=lag, threshold=_levels(thresholds.get("block_lag_s")), details=timing,
        hint=None if status == "ok" else "the node or the chain has stalled: compare RPC providers and a block explorer",
    ))

    mean = timing.get("mean_block_time_s")
    drift = round(100.0 * (mean - block_time_s) / block_time_s, 2) if mean is not None else None
    status = _judge(thresholds.get("block_time_drift_pct"), abs(drift) if drift is not None else None)
    outcomes.append(CheckOutcome(
        f"{prefix}.block_time_drift", AREA, status,
        f"mean block time {mean} s over {timing.get('sampled_blocks')} blocks vs {block_time_s} s expected"
        + (f" ({drift:+.1f} %)" if drift is not None else ""),
        value=drift, threshold=_levels(thresholds.get("block_time_drift_pct")),
        details={"mean_block_time_s": mean, "expected_s": block_time_s},
        hint=None if status == "ok" else "missed slots or a halted sequencer: check the chain's status page",
    ))

    statuses = {}
    for label, info in sync.items():
        statuses[label] = "crit" if not info.get("reachable") else ("warn" if info.get("syncing") else "ok")
    heights = [info["block"] for info in sync.values() if info.get("reachable")]
    behind = {label: max(heights) - info["block"] for label, info in sync.items() if info.get("reachable")} if heights else {}
    reachable = [label for label, s in statuses.items() if s != "crit"]
    status = worst_status(list(statuses.values()))
    if status == "crit" and any(statuses[label] == "ok" for label in reachable):
        status = "warn"  # an unreachable URL while another is in sync: failover works, redundancy is degraded
    parts = [f"{label}: " + ("unreachable" if s == "crit" else "syncing" if s == "warn" else f"in sync at {sync[label]['block']}")
             for label, s in statuses.items()]
    outcomes.append(CheckOutcome(
        f"{prefix}.sync", AREA, status, "; ".join(parts), value=float(sum(s == "ok" for s in statuses.values())),
        details={"per_url": sync, "blocks_behind": behind},
        hint=None if status == "ok" else "a node that is down or syncing serves stale state: fix it or drop it from the chain block",
    ))
    return outcomes


def evaluate_rpc_latency(*, samples: dict[str, dict[str, Any]], thresholds: dict[str, ThresholdLike],
                         served_by: str | None) -> CheckOutcome:
    """Per RPC URL: availability (% of attempts answered) and median latency over the samples.

    The status is the worst URL's, except that a URL that fails while another is fully ok is `warn` at most:
    reads still succeed through failover, but redundancy is gone.
    """
    per_url = {}
    statuses = {}
    for label, s in samples.items():
        latencies = s.get("latencies_ms") or []
        available = round(100.0 * s["ok"] / s["attempts"], 2) if s["attempts"] else 0.0
        median = round(statistics.median(latencies), 2) if latencies else None
        status = worst_status([_judge(thresholds.get("available_pct"), available),
                               _judge(thresholds.get("latency_ms"), median)])
        statuses[label] = status
        per_url[label] = {"available_pct": available, "median_ms": median, "attempts": s["attempts"], "ok": s["ok"],
                          "max_ms": max(latencies) if latencies else None, "last_error": s.get("last_error"),
                          "status": status}
    status = worst_status(list(statuses.values()))
    if status == "crit" and "ok" in statuses.values():
        status = "warn"
    primary = next(iter(per_url.values()), {})
    served = per_url.get(served_by or "", primary)
    problems = [f"{label} {info['status']} ({info['available_pct']:.0f} % available, median {info['median_ms']} ms)"
                for label, info in per_url.items() if info["status"] != "ok"]
    message = (f"served by {served_by}, median {served.get('median_ms')} ms" if served_by else "no RPC URL answered")
    if problems:
        message += "; " + "; ".join(problems)
    if served_by is None:
        status = "crit"
    return CheckOutcome("infrastructure.rpc_latency", "infrastructure", status, message, value=served.get("median_ms"),
                        threshold={k: _levels(v) for k, v in thresholds.items()},
                        hint=None if status == "ok" else "check the failing RPC provider; failover keeps reads going meanwhile",
                        details={"per_url": per_url}, served_by=served_by)
