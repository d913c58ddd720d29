"""Tasks that read the chain: contract state in one Multicall3 batch, code hashes, parameter values."""

from __future__ import annotations

from typing import Any

from prefect import task

from tasks.policies import NETWORK_RETRIES
from tasks.runtime import ops_config, rpc_client
from vvops.chain.reader import ViewCall, read_implementation, read_views
from vvops.config import resolve_deployment, resolve_purpose
from vvops.chain.abi import contract_abi, param_type, signature



def _view_calls(contract_name: str, address: str, artifact: str, getters: list[str]) -> list[ViewCall]:
    abi = contract_abi(artifact)
    calls = []
    for getter in getters:
        try:
            fn = abi.function(getter)
        except KeyError:
            continue  # config check already verified getters against the ABI; skip unknown ones defensively
        if fn.get("inputs"):
            continue
        calls.append(ViewCall(key=getter, target=address, signature=signature(fn),
                              returns=tuple(param_type(p) for p in fn.get("outputs", []))))
    return calls


def _role_from_block(cfg, contract: str) -> int:
    """Where role events are replayed from: the deployment's `deployed_block`, else the devnet's deploy block."""
    dep = cfg.contract(contract).deployment(cfg.environment)
    if dep is not None and dep.deployed_block is not None:
        return dep.deployed_block
    if cfg.env.uses_devnet:
        from vvops.config import load_devnet_json

        return int(load_devnet_json().get("deployed_at_block") or 0)
    return 0


def _read_access_control(rpc, cfg, contract: str, deployment, multicall: str) -> dict[str, Any]:
    """hasRole for every expected holder + the replayed RoleGranted/RoleRevoked holders of the contract."""
    from vvops.chain.access import read_role_holders, role_id, role_names

    calls = [ViewCall(key=f"{role}|{holder}", target=deployment.address, signature="hasRole(bytes32,address)",
                      returns=("bool",), args=(role_id(role), holder))
             for role, holders in deployment.role_holders.items() for holder in holders]
    answers = read_views(rpc, multicall=multicall, calls=calls)
    has_role = {tuple(k.split("|")): (bool(r.value) if r.ok else None) for k, r in answers.items()}
    holders, error = None, None
    try:
        holders = read_role_holders(rpc, address=deployment.address,
                                    from_block=_role_from_block(cfg, contract))[deployment.address]
    except Exception as exc:  # noqa: BLE001 - reported as an `error` outcome, never hidden
        error = f"{type(exc).__name__}: {exc}"[:300]
    return {"expected": {r: list(h) for r, h in deployment.role_holders.items()},
            "has_role": [[r, h, v] for (r, h), v in has_role.items()],
            "holders": {r: sorted(h) for r, h in holders.items()} if holders is not None else None,
            "names": role_names(deployment.role_holders), "error": error}


@task(name="read-contract-state", **NETWORK_RETRIES)
def read_contract_state(*, environment: str, contract: str) -> dict[str, Any]:
    """Every getter config names for a contract (roles, parameters, invariants, expectations) in one batch; for a
    proxy the ERC-1967 implementation/admin/beacon slots; for access-control contracts hasRole + role events."""
    from vvops.chain.proxies import read_proxy_slots

    cfg = ops_config(environment)
    spec = cfg.contract(contract)
    deployment = resolve_deployment(cfg, contract)
    multicall = resolve_purpose(cfg, "multicall").address
    getters = list(dict.fromkeys([
        *spec.getters, *deployment.roles, *deployment.expect,
        *(p.getter for p in spec.parameters.values()),
        *(g for inv in spec.invariants for g in (inv.left, inv.right) if g),
    ]))
    with rpc_client(environment) as rpc:
        calls = _view_calls(contract, deployment.address, spec.abi_source, getters)
        results = read_views(rpc, multicall=multicall, calls=calls)
        values = {k: r.value for k, r in results.items() if r.ok}
        errors = {k: r.error for k, r in results.items() if not r.ok}
        implementation, proxy = None, None
        if spec.proxy != "none":
            slots = read_proxy_slots(rpc, deployment.address, spec.proxy)
            implementation = slots.implementation
            proxy = {"kind": spec.proxy, "implementation": slots.implementation, "admin": slots.admin,
                     "beacon": slots.beacon}
            # ERC-1967 is the truth: an `implementation()` getter (ours has one, standard proxies do not) never wins
            values["implementation"] = implementation
            errors.pop("implementation", None)
        elif deployment.approved_implementations:
            implementation = read_implementation(rpc, proxy=deployment.address)
        access = None
        if spec.access == "access-control" and deployment.role_holders:
            access = _read_access_control(rpc, cfg, contract, deployment, multicall)
        return {
            "contract": contract,
            "address": deployment.address,
            "values": values,
            "errors": errors,
            "implementation": implementation,
            "proxy": proxy,
            "access": access,
            "served_by": rpc.served_by,
            "latency_ms": {a.label: a.latency_ms for a in rpc.attempts},
            "rpc": rpc.latency_by_url(),
        }


@task(name="read-code", **NETWORK_RETRIES)
def read_code(*, environment: str, address: str) -> bytes:
    """The runtime bytecode deployed at an address (empty for an account without code)."""
    with rpc_client(environment) as rpc:
        return bytes.fromhex(rpc.call("eth_getCode", [address, "latest"])[2:])



# ---------------------------------------------------------------------------------------------------------
# Protocol Health Verification (daily): each task reads, evaluates and returns
# {"outcomes": [CheckOutcome...], "metrics": [MetricPoint...]}; the protocol-health sub-flow runs them
# concurrently and turns an exception into an `error` outcome.
# ---------------------------------------------------------------------------------------------------------

import statistics as _statistics  # noqa: E402
import time as _time  # noqa: E402
from dataclasses import replace as _replace  # noqa: E402

from vvops.chain.activity import BlockWindow, transactions_to, vault_activity, window_blocks  # noqa: E402
from vvops.chain.gas import block_timing, fee_summary, sync_status  # noqa: E402
from vvops.chain.rpc import RpcClient, endpoint_label  # noqa: E402
from vvops.checks.contract_state import evaluate_access_control, evaluate_contract_state  # noqa: E402
from vvops.checks.outcome import CheckOutcome  # noqa: E402
from vvops.checks.protocol import evaluate_activity, evaluate_network, evaluate_rpc_latency, evaluate_tx_errors  # noqa: E402
from vvops.metrics import MetricPoint  # noqa: E402




def _elapsed_ms(started: float) -> float:
    return round((_time.perf_counter() - started) * 1000, 1)


def contract_state_outcomes(environment: str, state: dict[str, Any], *, open_incident: bool) -> list[CheckOutcome]:
    """Evaluate one `read_contract_state` result against contracts.yaml (roles, implementation, pause, bounds, invariants)."""
    cfg = ops_config(environment)
    params = cfg.check("protocol.contract_state").typed_params()
    spec = cfg.contract(state["contract"])
    deployment = resolve_deployment(cfg, state["contract"])
    outcomes = evaluate_contract_state(
        contract=state["contract"], values=state["values"], errors=state["errors"],
        roles=deployment.roles if params.check_roles else {},
        approved_implementations=deployment.approved_implementations if params.check_implementation else (),
        implementation=state["implementation"],
        parameters={p.getter: (p.min, p.max) for p in spec.parameters.values()} if params.compare_parameters else {},
        invariants=[(i.name, i.left, i.op, i.right, i.right_value) for i in spec.invariants] if params.check_invariants else [],
        expect=deployment.expect if params.check_expected_values else {},
        open_incident=open_incident,
    )
    access = state.get("access")
    if access and params.check_roles:
        outcomes += evaluate_access_control(
            contract=state["contract"], expected={r: tuple(h) for r, h in access["expected"].items()},
            has_role={(r, h): v for r, h, v in access["has_role"]},
            holders={r: set(h) for r, h in access["holders"].items()} if access["holders"] is not None else None,
            names=access["names"], replay_error=access["error"])
    rpc_details = {"rpc": state.get("rpc", {})}
    return [_replace(o, served_by=state["served_by"], details={**o.details, **rpc_details}) for o in outcomes]


@task(name="check-contract-state", **NETWORK_RETRIES)
def check_contract_state(*, environment: str, contract: str, open_incident: bool = False) -> dict[str, Any]:
    """Read a contract's state in one Multicall batch and evaluate it; metrics: TVL and liabilities."""
    started = _time.perf_counter()
    state = read_contract_state.fn(environment=environment, contract=contract)
    outcomes = contract_state_outcomes(environment, state, open_incident=open_incident)
    outcomes = [_replace(o, duration_ms=_elapsed_ms(started)) for o in outcomes]
    labels = {"chain": environment, "contract": contract}
    metrics = [MetricPoint(f"protocol.{name}", float(state["values"][getter]), labels)
               for name, getter in (("tvl", "totalAssets"), ("liabilities", "totalLiabilities"))
               if getter in state["values"]]
    # The parameters in force, for the weekly protocol assessment (outcomes versus parameter values).
    parameters = ops_config(environment).contract(contract).parameters
    metrics += [MetricPoint("vault_param", float(state["values"][p.getter]), {**labels, "param": name})
                for name, p in parameters.items() if p.getter in state["values"]]
    return {"outcomes": outcomes, "metrics": metrics}


@task(name="find-window-blocks", **NETWORK_RETRIES)
def find_window(*, environment: str, window_hours: float) -> dict[str, Any]:
    """The block range of the last `window_hours` (chain time), capped at the activity check's max_blocks."""
    params = ops_config(environment).check("protocol.onchain_activity").typed_params()
    with rpc_client(environment) as rpc:
        return window_blocks(rpc, window_hours=window_hours, max_blocks=params.max_blocks).as_dict()


def _window(data: dict[str, Any]) -> BlockWindow:
    return BlockWindow(data["from_block"], data["to_block"], data["from_timestamp"], data["to_timestamp"], data["truncated"])


def _tvl_and_decimals(rpc: RpcClient, *, multicall: str, vault: str) -> tuple[int | None, int]:
    first = read_views(rpc, multicall=multicall, calls=[
        ViewCall("tvl", vault, "totalAssets()", ("uint256",)), ViewCall("asset", vault, "asset()", ("address",))])
    tvl = first["tvl"].value if first["tvl"].ok else None
    decimals = 18
    if first["asset"].ok:
        second = read_views(rpc, multicall=multicall, calls=[ViewCall("d", first["asset"].value, "decimals()", ("uint8",))])
        decimals = second["d"].value if second["d"].ok else 18
    return tvl, decimals


def activity_outcomes(rpc: RpcClient, *, environment: str, contract: str, window: BlockWindow,
                      thresholds: dict[str, Any], initial_log_range: int = 10_000) -> dict[str, Any]:
    """On-chain activity of one vault over `window` with an explicit RpcClient (the task wraps this)."""
    started = _time.perf_counter()
    cfg = ops_config(environment)
    spec = cfg.contract(contract)
    address = resolve_deployment(cfg, contract).address
    multicall = resolve_purpose(cfg, "multicall").address
    activity = vault_activity(rpc, contract=contract, address=address, abi=contract_abi(spec.abi_source).abi,
                              window=window, initial_range=initial_log_range, events=spec.activity_events)
    tvl, decimals = _tvl_and_decimals(rpc, multicall=multicall, vault=address)
    summary = activity.summary()
    summary["largest_withdrawals"] = [{**w, "assets": str(w["assets"])} for w in summary["largest_withdrawals"]]
    outcomes = evaluate_activity(contract=contract, activity=summary, tvl=tvl, decimals=decimals,
                                 thresholds=thresholds, window=window.as_dict())
    outcomes = [_replace(o, served_by=rpc.served_by, duration_ms=_elapsed_ms(started),
                         details={**o.details, "rpc": rpc.latency_by_url()}) for o in outcomes]
    unit = 10**decimals
    labels = {"chain": environment, "contract": contract}
    metrics = [
        MetricPoint("protocol.deposit_count", activity.deposits, labels),
        MetricPoint("protocol.withdraw_count", activity.withdrawals, labels),
        MetricPoint("protocol.deposits_volume", activity.deposits_volume / unit, labels),
        MetricPoint("protocol.withdrawals_volume", activity.withdrawals_volume / unit, labels),
        MetricPoint("protocol.unique_users", len(activity.users), labels),
        # The vault's asset is a USD stablecoin (vvUSD on the devnet, USDC on mainnet): asset units are dollars.
        MetricPoint("fees_collected_usd", activity.fees / unit, labels),
    ]
    if tvl is not None:  # in dollars, as capacity planning reads it (protocol.tvl is in the asset's base units)
        metrics.append(MetricPoint("vault_tvl_usd", tvl / unit, labels))
    largest = next((o for o in outcomes if o.id.endswith(".large_withdrawal")), None)
    if largest is not None and largest.value is not None:
        metrics.append(MetricPoint("protocol.largest_withdrawal_pct_tvl", largest.value, labels))
    return {"outcomes": outcomes, "metrics": metrics}


@task(name="check-onchain-activity", **NETWORK_RETRIES)
def check_onchain_activity(*, environment: str, contract: str, window: dict[str, Any]) -> dict[str, Any]:
    check = ops_config(environment).check("protocol.onchain_activity")
    with rpc_client(environment) as rpc:
        return activity_outcomes(rpc, environment=environment, contract=contract, window=_window(window),
                                 thresholds=dict(check.thresholds),
                                 initial_log_range=check.typed_params().initial_log_range)


def tx_error_outcomes(rpc: RpcClient, *, environment: str, contracts: list[str], window: BlockWindow) -> dict[str, Any]:
    """Throughput and failed transactions to our contracts over `window` with an explicit RpcClient."""
    started = _time.perf_counter()
    cfg = ops_config(environment)
    check = cfg.check("protocol.tx_error_rate")
    addresses = {name: resolve_deployment(cfg, name).address for name in contracts}
    abis = {name: contract_abi(cfg.contract(name).abi_source) for name in contracts if cfg.contract(name).abi_source}
    stats = transactions_to(rpc, contracts=addresses, window=window, abis=abis)
    outcome = evaluate_tx_errors(stats=stats.summary(), threshold=check.thresholds.get("error_rate_pct"),
                                 min_transactions=check.typed_params().min_transactions, window=window.as_dict())
    outcome = _replace(outcome, served_by=rpc.served_by, duration_ms=_elapsed_ms(started),
                       details={**outcome.details, "rpc": rpc.latency_by_url()})
    hours = max((window.to_timestamp - window.from_timestamp) / 3600, 1e-9)
    metrics = []
    for name, counts in stats.by_contract.items():
        labels = {"chain": environment, "contract": name}
        rate = 100.0 * counts["failed"] / counts["transactions"] if counts["transactions"] else 0.0
        metrics += [MetricPoint("protocol.tx_count", counts["transactions"], labels),
                    MetricPoint("protocol.tx_failed", counts["failed"], labels),
                    MetricPoint("protocol.tx_error_rate", rate, labels),
                    MetricPoint("protocol.tx_per_hour", counts["transactions"] / hours, labels)]
    metrics += function_metrics(stats, environment=environment,
                                limit_errors=set(check.typed_params().withdrawal_limit_errors))
    return {"outcomes": [outcome], "metrics": metrics}


def function_metrics(stats: Any, *, environment: str, limit_errors: set[str]) -> list[MetricPoint]:
    """Per function of the window: calls, reverts, error rate, mean gas of a successful call (`gas_per_call`),
    reverts by decoded reason, and the withdrawal-limit hits per contract (the weekly review reads these names)."""
    points: list[MetricPoint] = []
    hits: dict[str, int] = {}
    for (contract, function), fs in stats.by_function.items():
        labels = {"chain": environment, "contract": contract, "function": function}
        points += [MetricPoint("protocol.function_calls", fs.calls, labels),
                   MetricPoint("protocol.function_reverts", fs.failed, labels),
                   MetricPoint("protocol.function_error_rate_pct", fs.error_rate_pct, labels)]
        if fs.mean_gas is not None:
            points.append(MetricPoint("gas_per_call", fs.mean_gas, labels))
        for reason, n in fs.reasons.items():
            points.append(MetricPoint("protocol.reverts_by_reason", n, {**labels, "reason": reason}))
            if reason in limit_errors:
                hits[contract] = hits.get(contract, 0) + n
    vaults = {c for c, _ in stats.by_function} | set(stats.by_contract)
    for contract in sorted(vaults):
        if contract in hits or ops_config(environment).contract(contract).kind == "vault":
            points.append(MetricPoint("withdrawal_limit_hits", hits.get(contract, 0),
                                      {"chain": environment, "contract": contract}))
    return points


@task(name="check-tx-error-rate", **NETWORK_RETRIES)
def check_tx_error_rate(*, environment: str, contracts: list[str], window: dict[str, Any]) -> dict[str, Any]:
    with rpc_client(environment) as rpc:
        return tx_error_outcomes(rpc, environment=environment, contracts=contracts, window=_window(window))


def network_outcomes(rpc: RpcClient, *, environment: str, now: float | None = None) -> dict[str, Any]:
    """Fees, block lag, block-time drift and per-URL sync status with an explicit RpcClient."""
    started = _time.perf_counter()
    cfg = ops_config(environment)
    check = cfg.check("protocol.network_conditions")
    params = check.typed_params()
    fees = fee_summary(rpc, blocks=params.fee_history_blocks)
    timing = block_timing(rpc, sample_blocks=params.block_time_sample_blocks, now=now)
    sync = sync_status(rpc.urls, timeout_s=rpc.timeout_s)
    outcomes = evaluate_network(fees=fees, timing=timing, sync=sync, block_time_s=cfg.env.block_time_s,
                                thresholds=dict(check.thresholds))
    outcomes = [_replace(o, served_by=rpc.served_by, duration_ms=_elapsed_ms(started),
                         details={**o.details, "rpc": rpc.latency_by_url()}) for o in outcomes]
    labels = {"chain": environment}
    metrics = [MetricPoint("protocol.block_lag_s", timing["block_lag_s"], labels)]
    if fees.get("base_fee_gwei") is not None:
        metrics.append(MetricPoint("protocol.base_fee_gwei", fees["base_fee_gwei"], labels))
    if fees["priority_fee_gwei"].get("p50") is not None:
        metrics.append(MetricPoint("protocol.priority_fee_p50_gwei", fees["priority_fee_gwei"]["p50"], labels))
    if timing.get("mean_block_time_s") is not None:
        metrics.append(MetricPoint("protocol.block_time_s", timing["mean_block_time_s"], labels))
    return {"outcomes": outcomes, "metrics": metrics}


@task(name="check-network-conditions", **NETWORK_RETRIES)
def check_network_conditions(*, environment: str) -> dict[str, Any]:
    with rpc_client(environment) as rpc:
        return network_outcomes(rpc, environment=environment)


def rpc_latency_outcomes(urls: list[str], *, environment: str, timeout_s: float) -> dict[str, Any]:
    """Sample every RPC URL on its own (no retries: availability is per attempt), then one failover read."""
    started = _time.perf_counter()
    check = ops_config(environment).check("infrastructure.rpc_latency")
    params = check.typed_params()
    samples: dict[str, dict[str, Any]] = {}
    for url in urls:
        label = endpoint_label(url)
        with RpcClient([url], timeout_s=min(timeout_s, params.timeout_s), retries_per_url=0) as single:
            for _ in range(params.samples):
                try:
                    single.call(params.method)
                except Exception:  # noqa: BLE001 - counted as a failed attempt
                    pass
            summary = single.latency_by_url()[label]
            samples[label] = {**summary, "latencies_ms": [a.latency_ms for a in single.attempts if a.ok]}
    with RpcClient(urls, timeout_s=min(timeout_s, params.timeout_s)) as failover:
        try:
            failover.call(params.method)
        except Exception:  # noqa: BLE001 - every URL down: served_by stays None → crit
            pass
        served_by = failover.served_by
    outcome = evaluate_rpc_latency(samples=samples, thresholds=dict(check.thresholds), served_by=served_by)
    outcome = _replace(outcome, duration_ms=_elapsed_ms(started))
    metrics = []
    for label, info in outcome.details["per_url"].items():
        labels = {"chain": environment, "url": label}
        metrics.append(MetricPoint("infrastructure.rpc_available_pct", info["available_pct"], labels))
        if info["median_ms"] is not None:
            metrics.append(MetricPoint("infrastructure.rpc_latency_ms", info["median_ms"], labels))
    return {"outcomes": [outcome], "metrics": metrics}


@task(name="check-rpc-latency", retries=1, retry_delay_seconds=1)
def check_rpc_latency(*, environment: str) -> dict[str, Any]:
    with rpc_client(environment) as rpc:  # the chain block's URLs (or config's)
        urls, timeout_s = list(rpc.urls), rpc.timeout_s
    return rpc_latency_outcomes(urls, environment=environment, timeout_s=timeout_s)
