"""Daily Operations / System Health Checks / Protocol Health Verification (operations playbook).

Smart contract state, on-chain activity, gas and network conditions, transaction throughput and error
rate, plus the RPC endpoints the reads go through. Every check runs as its own task concurrently; one that
fails becomes an `error` outcome with the reason and never stops the others. Metrics go to the store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow
from prefect.logging import get_run_logger

from tasks.chain import (
    check_contract_state,
    check_network_conditions,
    check_onchain_activity,
    check_rpc_latency,
    check_tx_error_rate,
    find_window,
)
from tasks.runtime import ops_config
from tasks.store import count_open_incidents, record_metrics
from vvops.checks.outcome import CheckOutcome
from vvops.metrics import stamped

_HINT = "the check could not run: see the task's log; a transient RPC problem clears on the next run"


def deployed_contracts(cfg, names, kinds: tuple[str, ...]) -> list[str]:
    """The configured contracts that are deployed in this environment; none of them: every deployed contract of
    `kinds` (a protocol described only in contracts.yaml is checked without editing checks.yaml)."""
    deployed = [n for n in names if cfg.contract(n).deployment(cfg.environment) is not None]
    return deployed or [c.name for c in cfg.contracts.deployed_in(cfg.environment) if c.kind in kinds]


def _error(check_id: str, area: str, exc: BaseException) -> CheckOutcome:
    reason = f"{type(exc).__name__}: {exc}"[:500]
    return CheckOutcome(check_id, area, "error", f"could not run: {reason}", hint=_HINT)


@flow(name="protocol-health")
def protocol_health(environment: str = "devnet", window_hours: float = 24, now: datetime | None = None) -> list[CheckOutcome]:
    """Protocol health checks on `environment` over the last `window_hours` of chain time; returns every outcome.
    `now` dates the recorded metrics (default: when they were measured)."""
    logger = get_run_logger()
    cfg = ops_config(environment)
    enabled = {c.id for c in cfg.enabled_checks()}

    try:
        open_incident = count_open_incidents() > 0
    except Exception as exc:  # noqa: BLE001 - an unreadable store must not stop the chain checks
        logger.warning("open incidents unknown (%s): a paused vault is judged as outside an incident", exc)
        open_incident = False

    pending: list[tuple[str, str, Any]] = []  # (check id used for an error, area, future)
    if "protocol.contract_state" in enabled:
        for contract in deployed_contracts(cfg, cfg.check("protocol.contract_state").typed_params().contracts,
                                           ("vault", "timelock")):
            pending.append((f"protocol.contract_state.{contract}", "protocol",
                            check_contract_state.submit(environment=environment, contract=contract,
                                                        open_incident=open_incident)))
    if enabled & {"protocol.onchain_activity", "protocol.tx_error_rate"}:
        window = find_window.submit(environment=environment, window_hours=window_hours)
        activity_contracts = deployed_contracts(cfg, cfg.check("protocol.onchain_activity").typed_params().contracts,
                                                ("vault",))
        if "protocol.onchain_activity" in enabled:
            for contract in activity_contracts:
                pending.append((f"protocol.onchain_activity.{contract}", "protocol",
                                check_onchain_activity.submit(environment=environment, contract=contract, window=window)))
        if "protocol.tx_error_rate" in enabled:
            watched = [c.name for c in cfg.contracts.deployed_in(environment) if c.kind in ("vault", "timelock")]
            pending.append(("protocol.tx_error_rate", "protocol",
                            check_tx_error_rate.submit(environment=environment, contracts=watched, window=window)))
    if "protocol.network_conditions" in enabled:
        pending.append(("protocol.network_conditions", "protocol", check_network_conditions.submit(environment=environment)))
    if "infrastructure.rpc_latency" in enabled:
        pending.append(("infrastructure.rpc_latency", "infrastructure", check_rpc_latency.submit(environment=environment)))

    outcomes: list[CheckOutcome] = []
    metrics = []
    for check_id, area, future in pending:
        try:
            result = future.result()
        except BaseException as exc:  # noqa: BLE001 - includes upstream failures (no window) and timeouts
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            logger.warning("%s could not run: %s", check_id, exc)
            outcomes.append(_error(check_id, area, exc))
            continue
        outcomes += result["outcomes"]
        metrics += result["metrics"]

    try:
        record_metrics(points=stamped(metrics, now))
    except Exception as exc:  # noqa: BLE001 - results still go back to the caller, who stores them
        logger.warning("metrics not recorded: %s", exc)
        outcomes.append(_error("protocol.metrics", "protocol", exc))
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ok", "unknown", "warn", "crit", "error")}
    logger.info("protocol health on %s: %s", environment, counts)
    return outcomes
