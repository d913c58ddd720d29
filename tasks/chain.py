"""Tasks that read the chain: contract state in one Multicall3 batch, code hashes, parameter values."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.tasks import exponential_backoff

from tasks.runtime import ops_config, rpc_client
from vvops.chain.reader import ViewCall, read_implementation, read_views
from vvops.config import resolve_deployment
from vvops.devnet.abi import contract_abi, param_type, signature

NETWORK_RETRIES = dict(retries=2, retry_delay_seconds=exponential_backoff(0.5), retry_jitter_factor=0.5, timeout_seconds=60)


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


@task(name="read-contract-state", **NETWORK_RETRIES)
def read_contract_state(*, environment: str, contract: str) -> dict[str, Any]:
    """Every getter config names for a contract (roles, parameters, invariants, expectations) in one batch."""
    cfg = ops_config(environment)
    spec = cfg.contract(contract)
    deployment = resolve_deployment(cfg, contract)
    multicall = resolve_deployment(cfg, "multicall").address
    getters = list(dict.fromkeys([
        *spec.getters, *deployment.roles, *deployment.expect,
        *(p.getter for p in spec.parameters.values()),
        *(g for inv in spec.invariants for g in (inv.left, inv.right) if g),
    ]))
    with rpc_client(environment) as rpc:
        calls = _view_calls(contract, deployment.address, spec.artifact, getters)
        results = read_views(rpc, multicall=multicall, calls=calls)
        implementation = read_implementation(rpc, proxy=deployment.address) if deployment.approved_implementations else None
        return {
            "contract": contract,
            "address": deployment.address,
            "values": {k: r.value for k, r in results.items() if r.ok},
            "errors": {k: r.error for k, r in results.items() if not r.ok},
            "implementation": implementation,
            "served_by": rpc.served_by,
            "latency_ms": {a.label: a.latency_ms for a in rpc.attempts},
        }


@task(name="read-code", **NETWORK_RETRIES)
def read_code(*, environment: str, address: str) -> bytes:
    """The runtime bytecode deployed at an address (empty for an account without code)."""
    with rpc_client(environment) as rpc:
        return bytes.fromhex(rpc.call("eth_getCode", [address, "latest"])[2:])

