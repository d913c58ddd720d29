"""How a contract's asset amounts are shown to people: its asset's symbol and decimals, read from the chain."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from tasks.policies import NETWORK_RETRIES
from tasks.runtime import ops_config, rpc_client
from vvops.chain.reader import ViewCall, read_views
from vvops.config import resolve_purpose
from vvops.procedures.amounts import amount_formatter, asset_amount_keys


@task(name="read-asset-display", **NETWORK_RETRIES)
def asset_display(*, environment: str, asset: str | None) -> dict[str, Any]:
    """{symbol, decimals} of the token at `asset` (empty symbol, decimals None when it cannot be read)."""
    if not asset:
        return {"symbol": "", "decimals": None}
    multicall = resolve_purpose(ops_config(environment), "multicall").address
    with rpc_client(environment) as rpc:
        got = read_views(rpc, multicall=multicall, calls=[ViewCall("symbol", asset, "symbol()", ("string",)),
                                                          ViewCall("decimals", asset, "decimals()", ("uint8",))])
    return {"symbol": got["symbol"].value if got["symbol"].ok else "",
            "decimals": got["decimals"].value if got["decimals"].ok else None}


def formatter_for(environment: str, contract: str, values: dict[str, Any]):
    """`(key, value) -> str` showing `contract`'s asset amounts in token units with their symbol."""
    spec = ops_config(environment).contract(contract)
    try:
        shown = asset_display(environment=environment, asset=values.get("asset"))
    except Exception as error:  # noqa: BLE001 - display only: never stop a procedure over a symbol
        get_run_logger().warning("asset symbol/decimals of %s not read (%s): amounts shown with config's decimals",
                                 contract, error)
        shown = {"symbol": "", "decimals": None}
    decimals = shown["decimals"]
    if decimals is None:  # fall back to what config says of the parameters
        decimals = next((p.decimals for p in spec.parameters.values() if getattr(p, "decimals", None)), None)
    return amount_formatter(decimals=decimals, symbol=shown["symbol"] or "tokens", amount_keys=asset_amount_keys(spec))
