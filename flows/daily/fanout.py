"""Daily Operations / Protocol Health Verification, scaled out: contract-state checks for many contracts on
many chains, fanned out as Prefect tasks on a configurable task runner.

    from flows.daily.fanout import fanout_flow
    result = fanout_flow("thread")(targets=[...], chunk_size=50)                # ThreadPoolTaskRunner (default)
    result = fanout_flow("dask")(targets=[...])                                 # DaskTaskRunner, local cluster
    result = fanout_flow("dask", address="tcp://127.0.0.1:8786")(targets=...)  # an existing Dask cluster

A target is one chain: `{"chain": name, "rpc_urls": [...], "multicall": address, "contracts": [contract, ...]}`
where a contract is `{"name", "address", "roles": {getter: expected}, "approved_implementations": [...],
"expect": {getter: value}}`. Parameters, invariants and getters come from contracts.yaml's spec of
`contract_kind` (default the `vault` spec), so every vault is checked against the same bounds as the
single-vault daily check. One task reads `chunk_size` contracts of one chain: their getters in one Multicall3
`aggregate3` eth_call and their ERC-1967 implementation slots in one JSON-RPC batch, then evaluates them with
`vvops.checks.contract_state.evaluate_contract_state`. Tasks return summaries (status counts and the
non-ok outcomes), not every outcome, so results stay small when they cross process boundaries (Dask).

Which runner wins: see benchmarks/README.md ("Fan-out"). The work is I/O-bound JSON-RPC plus a little ABI
decoding; on a small machine the thread pool avoids the Dask cluster's process start-up and serialisation.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner

from vvops.chain.reader import IMPLEMENTATION_SLOT, ViewCall, read_views
from vvops.chain.rpc import RpcClient
from vvops.checks.contract_state import evaluate_contract_state

__all__ = ["fanout_flow", "contract_fanout", "check_contract_chunk", "contract_spec", "make_task_runner"]


def contract_spec(kind: str = "vault", environment: str = "devnet") -> dict[str, Any]:
    """What contracts.yaml says to read and compare for a contract kind: getters with their signatures and
    return types, parameter bounds and invariants (plain data, so it pickles to Dask workers)."""
    from vvops.config import load_config
    from vvops.chain.abi import contract_abi, param_type, signature

    cfg = load_config(environment=environment)
    spec = cfg.contract(kind)
    deployment = spec.deployments.get(environment) if hasattr(spec, "deployments") else None
    roles = list(getattr(deployment, "roles", {}) or {})
    expect = list(getattr(deployment, "expect", {}) or {})
    names = list(dict.fromkeys([
        *spec.getters, *roles, *expect, *(p.getter for p in spec.parameters.values()),
        *(g for inv in spec.invariants for g in (inv.left, inv.right) if g),
    ]))
    abi = contract_abi(spec.abi_source)
    getters = []
    for name in names:
        try:
            fn = abi.function(name)
        except KeyError:
            continue
        if fn.get("inputs"):
            continue
        getters.append((name, signature(fn), tuple(param_type(p) for p in fn.get("outputs", []))))
    return {
        "getters": getters,
        "parameters": {p.getter: (p.min, p.max) for p in spec.parameters.values()},
        "invariants": [(i.name, i.left, i.op, i.right, i.right_value) for i in spec.invariants],
    }


@task(name="check-contract-chunk", retries=2, retry_delay_seconds=0.5)
def check_contract_chunk(chain: str, rpc_urls: list[str], multicall: str, contracts: list[dict[str, Any]],
                         spec: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
    """Read and evaluate `contracts` (all on `chain`); returns status counts, non-ok outcomes and RPC counts."""
    started = time.perf_counter()
    with RpcClient(list(rpc_urls), timeout_s=timeout_s) as rpc:
        calls = [ViewCall(key=f"{i}:{name}", target=c["address"], signature=sig, returns=tuple(ret))
                 for i, c in enumerate(contracts) for name, sig, ret in spec["getters"]]
        results = read_views(rpc, multicall=multicall, calls=calls)
        needs_impl = [i for i, c in enumerate(contracts) if c.get("approved_implementations")]
        slots = rpc.batch([("eth_getStorageAt", [contracts[i]["address"], IMPLEMENTATION_SLOT, "latest"])
                           for i in needs_impl]) if needs_impl else []
        implementations = {i: "0x" + word[-40:] for i, word in zip(needs_impl, slots)}
        http_requests = len(rpc.attempts)
        jsonrpc_requests = 1 + len(needs_impl)
    statuses: Counter[str] = Counter()
    problems: list[dict[str, Any]] = []
    for i, c in enumerate(contracts):
        values, errors = {}, {}
        for name, _, _ in spec["getters"]:
            r = results[f"{i}:{name}"]
            if r.ok:
                values[name] = r.value
            else:
                errors[name] = r.error
        outcomes = evaluate_contract_state(
            contract=c["name"], values=values, errors=errors, roles=c.get("roles", {}),
            approved_implementations=tuple(c.get("approved_implementations", ())),
            implementation=implementations.get(i), parameters=spec["parameters"], invariants=spec["invariants"],
            expect=c.get("expect", {}),
        )
        for o in outcomes:
            statuses[o.status] += 1
            if o.status != "ok":
                problems.append({"chain": chain, "contract": c["name"], "check": o.id, "status": o.status,
                                 "message": o.message})
    return {"chain": chain, "contracts": len(contracts), "statuses": dict(statuses), "problems": problems,
            "http_requests": http_requests, "jsonrpc_requests": jsonrpc_requests, "eth_call_views": len(calls),
            "seconds": round(time.perf_counter() - started, 4)}


@flow(name="contract-fanout")
def contract_fanout(targets: list[dict[str, Any]], chunk_size: int = 50, contract_kind: str = "vault",
                    environment: str = "devnet") -> dict[str, Any]:
    """Contract-state checks for every contract of every target chain, `chunk_size` contracts per task."""
    spec = contract_spec(contract_kind, environment)
    futures = []
    for t in targets:
        contracts = list(t["contracts"])
        for start in range(0, len(contracts), max(1, chunk_size)):
            futures.append(check_contract_chunk.submit(t["chain"], list(t["rpc_urls"]), t["multicall"],
                                                       contracts[start:start + chunk_size], spec))
    results = [f.result() for f in futures]
    statuses: Counter[str] = Counter()
    for r in results:
        statuses.update(r["statuses"])
    return {
        "chains": len(targets), "contracts": sum(r["contracts"] for r in results), "tasks": len(results),
        "statuses": dict(statuses), "problems": [p for r in results for p in r["problems"]],
        "http_requests": sum(r["http_requests"] for r in results),
        "jsonrpc_requests": sum(r["jsonrpc_requests"] for r in results),
        "eth_call_views": sum(r["eth_call_views"] for r in results),
    }


def make_task_runner(kind: str = "thread", *, address: str | None = None, n_workers: int | None = None,
                     threads_per_worker: int | None = None, max_workers: int | None = None) -> Any:
    """`thread`: ThreadPoolTaskRunner(max_workers); `dask`: prefect_dask.DaskTaskRunner on `address` (an existing
    cluster) or on a new local cluster (processes; `n_workers` × `threads_per_worker`)."""
    if kind == "thread":
        return ThreadPoolTaskRunner(max_workers=max_workers) if max_workers else ThreadPoolTaskRunner()
    if kind == "dask":
        from prefect_dask import DaskTaskRunner

        if address:
            return DaskTaskRunner(address=address)
        kwargs: dict[str, Any] = {"processes": True, "host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}
        if n_workers:
            kwargs["n_workers"] = n_workers
        if threads_per_worker:
            kwargs["threads_per_worker"] = threads_per_worker
        return DaskTaskRunner(cluster_kwargs=kwargs)
    raise ValueError(f"unknown task runner {kind!r}: thread or dask")


def fanout_flow(kind: str = "thread", **runner_options: Any):
    """`contract_fanout` with the chosen task runner."""
    return contract_fanout.with_options(task_runner=make_task_runner(kind, **runner_options))
