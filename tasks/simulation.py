"""Simulations as a Prefect task: a change applied on a throwaway anvil fork of the environment's chain.

Public API:

- `simulate_on_fork(*, environment, contract, calls, sender=None) -> dict`
    Forks the environment's chain at its head (`vvops.chain.fork.anvil_fork`: anvil `--fork-url <RPC>
    --fork-block-number <head>`), reads the contract's state and health checks on the fork, applies `calls`
    ([{"to": contract name or 0x address, "data": calldata}]) as the impersonated governance account (`sender`,
    default the contract's `owner()`, else the `timelock` contract), reads again, and stops the fork. Nothing is
    sent to, snapshotted on or reverted on the environment's chain, in any environment (devnet included): its
    watcher never sees a simulated block.
    Returns {"simulated", "not_simulated", "before", "after", "outcomes_before", "outcomes_after", "error",
    "sender", "contract", "address", "fork"}:
      - simulated True: `error` is None when every call applied (then `after`/`outcomes_after` are set), else the
        decoded revert; `fork` = {"source" (endpoint label), "block", "chain_id", "timings_ms": {start, simulate,
        stop}}.
      - simulated False: no fork could be made (the RPC refuses, anvil missing, wrong chain id) and
        `not_simulated` says why in one secret-free line; the caller must say "not simulated" plainly.
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address
from prefect import task
from prefect.cache_policies import NONE as NO_CACHE
from prefect.logging import get_run_logger

from tasks.runtime import chain_rpc_urls, ops_config, reading_from
from vvops.chain.actions import data_hex
from vvops.chain.fork import Fork, ForkUnavailable, SimulatedTxFailed, anvil_fork
from vvops.chain.rpc import RpcError, RpcUnavailable
from vvops.config import resolve_deployment

__all__ = ["simulate_on_fork", "NOT_SIMULATED"]

NOT_SIMULATED = "not simulated"


def _address(environment: str, contract_or_address: str) -> str:
    if contract_or_address.startswith("0x"):
        return to_checksum_address(contract_or_address)
    return resolve_deployment(ops_config(environment), contract_or_address).address


def _state_and_outcomes(environment: str, contract: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from tasks.chain import contract_state_outcomes, read_contract_state

    state = read_contract_state.fn(environment=environment, contract=contract)
    outcomes = contract_state_outcomes(environment, state, open_incident=False)
    return state, [{"id": o.id, "status": o.status, "message": o.message,
                    "value": o.value if isinstance(o.value, (int, float, str, bool, type(None))) else str(o.value)}
                   for o in outcomes]


def _governance_account(environment: str, state: dict[str, Any], sender: str | None) -> str:
    """Who may make the change on chain: the explicit sender, else the contract's owner(), else the timelock."""
    if sender or state["values"].get("owner"):
        return to_checksum_address(sender or state["values"].get("owner"))
    from vvops.config import resolve_purpose  # the governance timelock, whatever contracts.yaml names it

    return resolve_purpose(ops_config(environment), "governance-timelock").address


def _revert_reason(exc: RpcError) -> str:
    from vvops.chain.actions import _revert_data, decode_revert

    decoded = decode_revert(_revert_data(exc))
    return str(decoded) if decoded.name else str(exc)


def _apply(fork: Fork, environment: str, sender: str, calls: list[dict[str, Any]]) -> str | None:
    """Send every call on the fork; the first failure as one line, or None."""
    for call in calls:
        to = _address(environment, call["to"])
        try:
            fork.send_as(sender, to, data_hex(call["data"]), int(call.get("value", 0)))
        except RpcError as exc:
            return f"simulated call to {call['to']} reverted: {_revert_reason(exc)}"
        except SimulatedTxFailed as exc:
            return str(exc)
    return None


@task(name="simulate-on-fork", cache_policy=NO_CACHE)
def simulate_on_fork(*, environment: str, contract: str, calls: list[dict[str, Any]],
                     sender: str | None = None) -> dict[str, Any]:
    """Apply `calls` on a throwaway fork of the environment's chain and read health before/after (see docstring)."""
    logger = get_run_logger()
    cfg = ops_config(environment)
    result: dict[str, Any] = {"simulated": False, "not_simulated": None, "before": None, "after": None,
                              "outcomes_before": None, "outcomes_after": None, "error": None, "sender": None,
                              "contract": contract, "address": _address(environment, contract), "fork": None}
    urls, _ = chain_rpc_urls(environment)
    fork: Fork | None = None
    try:
        with anvil_fork(urls, expected_chain_id=cfg.env.chain_id) as fork, reading_from(environment, fork.rpc_url):
            result["fork"] = {"source": fork.source, "block": fork.block_number, "chain_id": fork.chain_id}
            try:
                state_before, outcomes_before = _state_and_outcomes(environment, contract)
            except (RpcUnavailable, RpcError) as exc:
                raise ForkUnavailable(f"the fork could not read {contract}'s state from the chain: {exc}") from None
            result.update(before=state_before["values"], outcomes_before=outcomes_before, simulated=True)
            sender = _governance_account(environment, state_before, sender)
            result["sender"] = sender
            fork.impersonate(sender)
            result["error"] = _apply(fork, environment, sender, calls)
            if result["error"] is None:
                state_after, outcomes_after = _state_and_outcomes(environment, contract)
                result["after"], result["outcomes_after"] = state_after["values"], outcomes_after
    except ForkUnavailable as exc:
        result.update(simulated=False, not_simulated=str(exc), before=None, outcomes_before=None)
        logger.warning("%s: %s — %s", environment, NOT_SIMULATED, exc)
        return result
    result["fork"]["timings_ms"] = dict(fork.timings)
    logger.info("simulated on a fork of %s at block %s (%s): %s", environment, fork.block_number, fork.source,
                result["error"] or "every call applied")
    return result
