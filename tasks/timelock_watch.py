"""The ops sweep's timelock check: alert on pending operations we did not schedule or lost track of."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE
from sqlalchemy import select

from tasks.runtime import ops_config, rpc_client, store_engine
from vvops.alerting.rules import AlertInstance
from vvops.chain.logs import fetch_logs
from vvops.config import resolve_deployment
from vvops.procedures.timelock_ops import TIMELOCK_TOPICS, operations_from_logs, reconcile
from vvops.store import session_scope
from vvops.store.change_models import TimelockOperation

STALE_GRACE_S = 3600
"""An operation of ours ready for longer than this without being executed has lost its run."""


@task(name="reconcile-timelock-operations", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def reconcile_timelock(*, environment: str, grace_s: int = STALE_GRACE_S) -> dict[str, Any]:
    from tasks.alerts import _service, send_alert_notifications

    cfg = ops_config(environment)
    timelocks = [c for c in cfg.contracts.contracts if c.kind == "timelock" and c.deployment(environment)]
    findings: list[AlertInstance] = []
    summary: dict[str, Any] = {"timelocks": 0, "pending": 0, "unknown": [], "stale": [], "ended_elsewhere": []}
    with rpc_client(environment) as rpc:
        head = int(rpc.call("eth_blockNumber"), 16)
        chain_time = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        for contract in timelocks:
            address = resolve_deployment(cfg, contract.name).address
            start = contract.deployment(environment).deployed_block or 0
            logs = fetch_logs(rpc, address=address, from_block=start, to_block=head, topics=TIMELOCK_TOPICS)
            on_chain = operations_from_logs(logs)
            with session_scope(store_engine()) as session:
                rows = [r for r in session.scalars(select(TimelockOperation).where(
                    TimelockOperation.chain_id == cfg.env.chain_id)).all() if r.timelock.lower() == address.lower()]
                ours = {r.operation_id.lower(): {"status": r.status, "ready_at": r.ready_at,
                                                 "description": r.description, "key": r.idempotency_key}
                        for r in rows}
            result = reconcile(on_chain, ours, chain_time=chain_time, grace_s=grace_s, our_salts=_our_salts())
            summary["timelocks"] += 1
            summary["pending"] += result.pending_on_chain
            for op in result.unknown:
                summary["unknown"].append(op.operation_id)
                findings.append(_alert("timelock_operation_unknown", "P1", environment, contract.name, op.operation_id,
                                       f"{contract.name}: operation {op.operation_id[:18]}… pending on chain was not "
                                       f"scheduled by the ops system (block {op.scheduled_block}, tx "
                                       f"{op.scheduled_tx})"))
            for item in result.stale:
                summary["stale"].append(item["operation_id"])
                findings.append(_alert("timelock_operation_stale", "P2", environment, contract.name,
                                       item["operation_id"], f"{contract.name}: our operation "
                                       f"{item['operation_id'][:18]}… ({item['description'][:120]}) is ready since "
                                       f"{item['ready_at']} and nobody executed it: rerun its change to resume it"))
            if result.ended_elsewhere:
                _mark_ended(cfg.env.chain_id, address, result.ended_elsewhere)
                summary["ended_elsewhere"] += [i["operation_id"] for i in result.ended_elsewhere]
    if findings:
        messages = _service(environment).process_firing(findings, datetime.now(timezone.utc), environment=environment)
        send_alert_notifications(messages, environment)
        get_run_logger().warning("timelock: %s unknown, %s stale pending operation(s)", len(summary["unknown"]),
                                 len(summary["stale"]))
    return summary


def _our_salts() -> set[str]:
    """keccak of every idempotency key we sent a timelock schedule under (the salt schedule_on_timelock uses)."""
    from eth_utils import keccak

    from vvops.store.models import ChainAction

    with session_scope(store_engine()) as session:
        keys = session.scalars(select(ChainAction.idempotency_key).where(
            ChainAction.idempotency_key.like("%schedule"))).all()
    return {"0x" + keccak(text=k).hex() for k in keys}


def _alert(name: str, severity: str, environment: str, contract: str, op_id: str, summary: str) -> AlertInstance:
    return AlertInstance(rule=name, severity=severity,
                         labels={"alertname": name, "severity": severity, "environment": environment,
                                 "contract": contract, "operation_id": op_id},
                         annotations={"summary": summary})


def _mark_ended(chain_id: int, timelock: str, items: list[dict[str, Any]]) -> None:
    with session_scope(store_engine(), immediate=True) as session:
        for item in items:
            row = next((r for r in session.scalars(select(TimelockOperation).where(
                TimelockOperation.chain_id == chain_id, TimelockOperation.operation_id == item["operation_id"])).all()
                if r.timelock.lower() == timelock.lower()), None)
            if row is not None:
                row.status = item["ended"]
