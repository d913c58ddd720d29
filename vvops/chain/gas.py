"""Gas and network conditions: fee history, block lag and block-time drift, sync status per RPC URL."""

from __future__ import annotations

import statistics
import time
from typing import Any

from vvops.chain.blocks import block_timestamps, hex_int
from vvops.chain.rpc import RpcClient, endpoint_label

GWEI = 10**9


def fee_summary(rpc: RpcClient, *, blocks: int = 20, percentiles: tuple[int, ...] = (10, 50, 90)) -> dict[str, Any]:
    """Base fee of the next block and the median over `blocks` of each priority-fee percentile, in gwei."""
    history = rpc.call("eth_feeHistory", [hex(blocks), "latest", list(percentiles)])
    base_fees = [hex_int(b) for b in history.get("baseFeePerGas") or []]
    rewards = history.get("reward") or []
    priority = {}
    for i, pct in enumerate(percentiles):
        column = [hex_int(r[i]) for r in rewards if len(r) > i]
        priority[f"p{pct}"] = round(statistics.median(column) / GWEI, 4) if column else None
    return {
        "base_fee_gwei": round(base_fees[-1] / GWEI, 4) if base_fees else None,
        "base_fee_max_gwei": round(max(base_fees) / GWEI, 4) if base_fees else None,
        "priority_fee_gwei": priority,
        "gas_used_ratio_avg": round(statistics.fmean(history.get("gasUsedRatio") or [0]), 4),
        "oldest_block": hex_int(history.get("oldestBlock")),
        "blocks": len(rewards),
    }


def block_timing(rpc: RpcClient, *, sample_blocks: int = 100, now: float | None = None) -> dict[str, Any]:
    """Latest block, its lag behind the wall clock and the mean block time over the last `sample_blocks`."""
    latest = rpc.call("eth_getBlockByNumber", ["latest", False])
    number, ts = hex_int(latest["number"]), hex_int(latest["timestamp"])
    first = max(0, number - sample_blocks)
    mean_block_time = None
    if number > first:
        first_ts = block_timestamps(rpc, [first]).get(first, ts)
        mean_block_time = (ts - first_ts) / (number - first)
    now = time.time() if now is None else now
    return {"latest_block": number, "latest_timestamp": ts, "block_lag_s": round(max(0.0, now - ts), 1),
            "mean_block_time_s": round(mean_block_time, 3) if mean_block_time is not None else None,
            "sampled_blocks": number - first}


def sync_status(urls: list[str], *, timeout_s: float = 5.0) -> dict[str, dict[str, Any]]:
    """For each RPC URL on its own (no failover): eth_syncing and eth_blockNumber in one batch, and latency."""
    result: dict[str, dict[str, Any]] = {}
    for url in urls:
        label = endpoint_label(url)
        with RpcClient([url], timeout_s=timeout_s, retries_per_url=1) as rpc:
            started = time.perf_counter()
            try:
                syncing, block = rpc.batch([("eth_syncing", []), ("eth_blockNumber", [])])
            except Exception as exc:  # noqa: BLE001 - a down URL is a finding
                result[label] = {"reachable": False, "error": str(exc).split(": ", 1)[-1][:200]}
                continue
            result[label] = {
                "reachable": True,
                "syncing": bool(syncing),
                "sync_detail": {k: hex_int(v) for k, v in syncing.items() if isinstance(v, str) and v.startswith("0x")}
                if isinstance(syncing, dict) else None,
                "block": hex_int(block),
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            }
    return result
