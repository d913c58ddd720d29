"""Chain-read benchmarks: contract state reads and log ingest, ours versus web3's naive path and the node's floor.

    uv run python benchmarks/bench_chain_reads.py [--reps 5] [--reads 500] [--events 2100]

Starts its own anvil with the VeritasVault devnet deployed. Prints medians over --reps repetitions and ratios.
(a) --reads view calls: sequential web3 `contract.functions.x().call()` vs `vvops.chain.reader.read_views`
    (one Multicall3 aggregate3 eth_call, eth_abi encode/decode) vs one raw JSON-RPC batch of eth_call (httpx,
    no decoding: the node's floor).
(b) --events Deposit events: web3 `get_logs` + `process_log` vs `vvops.chain.logs.fetch_logs` +
    `EventDecoder` vs one raw eth_getLogs (the node's floor).
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx
from web3 import Web3

from vvops.chain.logs import EventDecoder, fetch_logs
from vvops.chain.reader import ViewCall, encode_call, read_views
from vvops.chain.rpc import RpcClient
from vvops.devnet import AnvilProcess, deploy_devnet, free_port
from vvops.chain.abi import contract_abi
from vvops.devnet.chain import Chain

UNIT = 10**18


def median_ms(fn, reps: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(reps):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def interleaved_ms(fns: list, reps: int) -> list[tuple[float, object]]:
    """Median ms of each function, repetitions interleaved so a noisy machine hits every path alike."""
    times: list[list[float]] = [[] for _ in fns]
    results: list[object] = [None] * len(fns)
    for _ in range(reps):
        for i, fn in enumerate(fns):
            started = time.perf_counter()
            results[i] = fn()
            times[i].append((time.perf_counter() - started) * 1000)
    return [(statistics.median(t), r) for t, r in zip(times, results)]


def view_plan(info, n: int) -> list[tuple[str, tuple, tuple[str, ...]]]:
    users = [u.address for u in info.accounts.users]
    simple = [("feeBps()", (), ("uint256",)), ("totalAssets()", (), ("uint256",)), ("paused()", (), ("bool",)),
              ("owner()", (), ("address",)), ("withdrawalLimit()", (), ("uint256",))]
    plan = []
    for i in range(n):
        if i % 2:
            plan.append(("balanceOf(address)", (users[i % len(users)],), ("uint256",)))
        else:
            plan.append(simple[(i // 2) % len(simple)])
    return plan


def bench_views(info, reps: int, n: int) -> list[tuple[str, float]]:
    vault, multicall = info.contracts.vault, info.contracts.multicall3
    plan = view_plan(info, n)
    w3 = Web3(Web3.HTTPProvider(info.rpc_url))
    contract = w3.eth.contract(address=vault, abi=contract_abi("VaultV1").abi)

    def naive():
        out = []
        for sig, args, _ in plan:
            out.append(getattr(contract.functions, sig[: sig.index("(")])(*args).call())
        return out

    rpc = RpcClient([info.rpc_url])
    calls = [ViewCall(str(i), vault, sig, returns, args) for i, (sig, args, returns) in enumerate(plan)]

    def ours():
        results = read_views(rpc, multicall=multicall, calls=calls)
        return [results[str(i)].value for i in range(n)]

    http = httpx.Client(timeout=30)
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_call",
              "params": [{"to": vault, "data": "0x" + encode_call(sig, args).hex()}, "latest"]}
             for i, (sig, args, _) in enumerate(plan)]

    def floor():
        return http.post(info.rpc_url, json=batch).json()

    (t_naive, naive_values), (t_ours, our_values), (t_floor, _) = interleaved_ms([naive, ours, floor], reps)
    assert [str(v) for v in naive_values] == [str(v) for v in our_values], "ours and web3 disagree"
    rpc.close()
    http.close()
    return [("web3 sequential .call()", t_naive), ("vvops read_views (aggregate3, fast ABI)", t_ours),
            ("node floor (raw JSON-RPC batch)", t_floor)]


def make_events(info, n: int) -> tuple[int, int]:
    chain = Chain(info.rpc_url, timeout=120)
    vault = chain.contract("VaultV1", info.contracts.vault)
    users = [u.address for u in info.accounts.users]
    nonces = {u: chain.nonce(u) for u in users}
    first = chain.block_number() + 1
    data = vault.encode("deposit", UNIT)
    txs = []
    for i in range(n):
        user = users[i % len(users)]
        txs.append({"sender": user, "to": info.contracts.vault, "data": data, "gas": 150_000, "nonce": nonces[user]})
        nonces[user] += 1
    # automine off while sending: anvil mining each tx on arrival slows down as the chain grows (field notes);
    # one block per 50 deposits instead
    chain.request("evm_setAutomine", [False])
    hashes = []
    for start in range(0, n, 50):
        hashes += chain.send_many(txs[start : start + 50])
        chain.request("evm_mine", [])
    chain.request("evm_setAutomine", [True])
    # anvil may hold a few nonce-ordered txs of a parallel batch in its pool until the next block: mine until
    # every receipt exists
    for _ in range(100):
        receipts = chain.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        if all(receipts):
            break
        chain.request("evm_mine", [])
    assert all(receipts) and all(int(r["status"], 16) == 1 for r in receipts)
    last = chain.block_number()
    chain.close()
    return first, last


def bench_logs(info, reps: int, first: int, last: int) -> tuple[list[tuple[str, float]], int]:
    vault = info.contracts.vault
    abi = contract_abi("VaultV1").abi
    w3 = Web3(Web3.HTTPProvider(info.rpc_url, request_kwargs={"timeout": 60}))
    contract = w3.eth.contract(address=vault, abi=abi)
    deposit = contract.events.Deposit()
    topic = "0x" + contract_abi("VaultV1").event_topic("Deposit").hex()

    def web3_path():
        logs = w3.eth.get_logs({"address": vault, "fromBlock": first, "toBlock": last, "topics": [topic]})
        return [deposit.process_log(log) for log in logs]

    rpc = RpcClient([info.rpc_url], timeout_s=60)
    decoder = EventDecoder(abi)

    def ours():
        return decoder.decode_all(fetch_logs(rpc, address=vault, from_block=first, to_block=last, topics=[topic]))

    http = httpx.Client(timeout=60)
    query = {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs",
             "params": [{"address": vault, "fromBlock": hex(first), "toBlock": hex(last), "topics": [topic]}]}

    def floor():
        return http.post(info.rpc_url, json=query).json()["result"]

    (t_web3, web3_events), (t_ours, our_events), (t_floor, raw) = interleaved_ms([web3_path, ours, floor], reps)
    assert len(web3_events) == len(our_events) == len(raw)
    assert [(e["args"]["user"], e["args"]["assets"]) for e in web3_events] == \
        [(e.args["user"], e.args["assets"]) for e in our_events]
    rpc.close()
    http.close()
    return [("web3 get_logs + process_log", t_web3), ("vvops fetch_logs + EventDecoder (eth_abi)", t_ours),
            ("node floor (raw eth_getLogs, no decode)", t_floor)], len(raw)


def table(title: str, rows: list[tuple[str, float]], ours_index: int = 1) -> None:
    ours = rows[ours_index][1]
    print(f"\n{title}")
    print(f"{'path':<45} {'median ms':>10} {'vs ours':>9}")
    for name, ms in rows:
        print(f"{name:<45} {ms:>10.1f} {ms / ours:>8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--events", type=int, default=2100)
    args = parser.parse_args()
    with AnvilProcess(free_port()) as node:
        info = deploy_devnet(node.rpc_url, timelock_delay=3600)
        rows = bench_views(info, args.reps, args.reads)
        table(f"(a) {args.reads} view reads, median of {args.reps}", rows)
        naive, ours, floor = (ms for _, ms in rows)
        print(f"ours is {naive / ours:.0f}x faster than naive web3 (target >= 80x); "
              f"{ours / floor:.2f}x the node floor (target <= 2.5x)")
        started = time.perf_counter()
        first, last = make_events(info, args.events)
        print(f"\n(generated {args.events} deposits in blocks {first}..{last} in {time.perf_counter() - started:.1f} s)")
        rows, count = bench_logs(info, args.reps, first, last)
        table(f"(b) ingest + decode of {count} Deposit events over {last - first + 1} blocks, median of {args.reps}", rows)
        web3_ms, ours_ms, floor_ms = (ms for _, ms in rows)
        print(f"ours is {web3_ms / ours_ms:.1f}x faster than web3 get_logs + process_log (target >= 10x); "
              f"{ours_ms / floor_ms:.2f}x the node floor")


if __name__ == "__main__":
    main()
