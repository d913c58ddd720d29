"""Forked simulation cost: what impact analysis and upgrade rehearsal pay for never touching the watched chain.

    uv run python benchmarks/bench_fork_simulation.py [--reps 7]

Starts its own "watched" anvil (chain id 31338) with the VeritasVault devnet deployed. Each repetition runs,
interleaved so a noisy machine hits every path alike:
(a) parameter change (setFeeBps) on a throwaway fork — `vvops.chain.fork.anvil_fork` (head lookup + anvil
    `--fork-url --fork-block-number` ready), then the simulation (state + implementation read before, the
    impersonated timelock's transaction, the read after), then stop;
(b) upgrade rehearsal (upgradeTo(V2) as the timelock, version() read after) on a fork, same phases;
(c) the naive/old way for both: evm_snapshot, impersonate, send, read, evm_revert on the watched chain itself —
    cheaper, and exactly what raised a real P0 (the watcher saw the simulated block).
The reads are the ones the procedures make: every getter in one Multicall3 batch (`read_views`) plus the
ERC-1967 implementation slot. Prefect's own task overhead (~11 ms a task, field notes) is not included.
Local source chain: forking a remote RPC adds its latency to the start and to every first touch of an account
or slot during the simulation.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vvops.chain.abi import contract_abi, param_type, signature  # noqa: E402
from vvops.chain.anvil import AnvilProcess  # noqa: E402
from vvops.chain.fork import anvil_fork  # noqa: E402
from vvops.chain.reader import ViewCall, read_implementation, read_views  # noqa: E402
from vvops.chain.rpc import RpcClient  # noqa: E402
from vvops.devnet import deploy_devnet  # noqa: E402

CHAIN_ID = 31338
GETTERS = ["version", "paused", "owner", "guardian", "asset", "feeBps", "withdrawalLimit", "depositCap",
           "totalAssets", "totalLiabilities"]


def view_calls(vault: str) -> list[ViewCall]:
    abi = contract_abi("VaultV1")
    out = []
    for name in GETTERS:
        fn = abi.function(name)
        out.append(ViewCall(key=name, target=vault, signature=signature(fn),
                            returns=tuple(param_type(p) for p in fn.get("outputs", []))))
    return out


def read_state(rpc: RpcClient, info) -> dict:
    values = {k: r.value for k, r in read_views(rpc, multicall=info.contracts.multicall3,
                                                 calls=view_calls(info.contracts.vault)).items() if r.ok}
    values["implementation"] = read_implementation(rpc, proxy=info.contracts.vault)
    return values


def send_and_wait(rpc: RpcClient, sender: str, to: str, data: str) -> None:
    tx = rpc.call("eth_sendTransaction", [{"from": sender, "to": to, "data": data}])
    while rpc.call("eth_getTransactionReceipt", [tx]) is None:
        time.sleep(0.005)


def on_fork(source_url: str, info, data: str) -> dict:
    timelock = info.contracts.timelock
    with anvil_fork([source_url], expected_chain_id=CHAIN_ID) as fork:
        before = read_state(fork.rpc, info)
        fork.impersonate(timelock)
        fork.send_as(timelock, info.contracts.vault, data)
        after = read_state(fork.rpc, info)
    return {**fork.timings, "total": fork.timings["start"] + fork.timings["simulate"] + fork.timings["stop"],
            "before": before, "after": after}


def on_snapshot(rpc: RpcClient, info, data: str) -> dict:
    """The old way: evm_snapshot / evm_revert on the watched chain itself."""
    timelock = info.contracts.timelock
    started = time.perf_counter()
    before = read_state(rpc, info)
    snap = rpc.call("evm_snapshot")
    try:
        rpc.call("anvil_impersonateAccount", [timelock])
        rpc.call("anvil_setBalance", [timelock, hex(10**20)])
        send_and_wait(rpc, timelock, info.contracts.vault, data)
        after = read_state(rpc, info)
    finally:
        rpc.call("anvil_stopImpersonatingAccount", [timelock])
        assert rpc.call("evm_revert", [snap])
    return {"total": (time.perf_counter() - started) * 1000, "before": before, "after": after}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    abi = contract_abi("VaultV1")
    with AnvilProcess(None, chain_id=CHAIN_ID) as source:
        info = deploy_devnet(source.rpc_url, timelock_delay=3600)
        cases = {"parameter change (feeBps 30 → 50)": "0x" + abi.encode_call("setFeeBps", 50).hex(),
                 "upgrade rehearsal (upgradeTo V2)":
                     "0x" + abi.encode_call("upgradeTo", info.contracts.vault_v2_implementation).hex()}
        results: dict[str, dict[str, list[float]]] = {c: {"start": [], "simulate": [], "stop": [], "total": [],
                                                           "snapshot": []} for c in cases}
        with RpcClient([source.rpc_url], timeout_s=30) as rpc:
            head = int(rpc.call("eth_blockNumber"), 16)
            for _ in range(args.reps):
                for case, data in cases.items():
                    forked = on_fork(source.rpc_url, info, data)
                    naive = on_snapshot(rpc, info, data)
                    assert forked["after"] != forked["before"] and naive["after"] == forked["after"], case
                    for phase in ("start", "simulate", "stop", "total"):
                        results[case][phase].append(forked[phase])
                    results[case]["snapshot"].append(naive["total"])
            assert int(rpc.call("eth_blockNumber"), 16) == head  # the old way reverted; the fork never touched it
    print(f"forked simulation cost, median of {args.reps} (ms); watched chain: local anvil, chain id {CHAIN_ID}")
    print(f"{'case':38} {'start':>8} {'simulate':>9} {'stop':>7} {'total':>8} {'snapshot (old)':>15} {'ratio':>7}")
    for case, r in results.items():
        med = {k: statistics.median(v) for k, v in r.items()}
        print(f"{case:38} {med['start']:8.0f} {med['simulate']:9.0f} {med['stop']:7.0f} {med['total']:8.0f} "
              f"{med['snapshot']:15.0f} {med['total'] / med['snapshot']:6.1f}x")


if __name__ == "__main__":
    main()
