"""Governance actions on chain as Prefect tasks: exactly-once sends, the timelock path, the guardian pause.

Public API (keyword-only; stable — other procedures build on it):

- `send_action(*, environment, idempotency_key, signer_role, to, data, description, value=0) -> dict`
    One transaction through vvops.chain.actions (stored with its signed hash and nonce before broadcast; a
    rerun with the same key never sends again). Returns {"tx_hash", "status", "block_number", "nonce",
    "from_address", "idempotency_key", "sent_now", "gas_used", "error"}; status "mined" or
    "via": "safe" when a Safe holds the timelock role (tasks/safe.py executed the owners' approved proposal). Raises ActionReverted (decoded
    revert: at estimation nothing was sent), ActionReplaced, ActionStuck, IdempotencyConflict — never retried.
- `schedule_on_timelock(*, environment, idempotency_key, target, data, value=0, delay=None, salt=None,
    predecessor=None, signer_role="governance", description="") -> dict`
    Timelock.schedule(target, value, data, predecessor, salt, delay) — delay defaults to the on-chain minimum,
    salt to keccak(idempotency_key) so the operation id is fixed by the key. Returns the send result plus
    {"operation_id", "target", "value", "data", "predecessor", "salt", "delay", "ready_at"}: pass it on to
    `wait_for_timelock_delay` / `execute_on_timelock` (`**timelock_call(scheduled)`). An operation already
    scheduled by someone else is reported ("already_scheduled"), not re-sent.
- `wait_for_timelock_delay(*, environment, operation_id, max_wait_s=None, poll_interval_s=15) -> dict`
    Devnet (anvil): time travel (evm_increaseTime + evm_mine) to the ready time. Real chains: polls the
    timelock (sleeping in the flow's process) until ready, up to `max_wait_s` (default: the remaining delay +
    10 min); raises TimelockNotReady after that. For delays of days prefer running the execute half as a
    separate run (or `suspend_flow_run` in a deployment) — this blocking wait is fine for delays of hours.
- `execute_on_timelock(*, environment, idempotency_key, target, data, salt, value=0, predecessor=None,
    signer_role="governance", description="") -> dict`   Timelock.execute(...); "already_executed" when done.
- `run_through_timelock(*, environment, key_prefix, target, data, description, value=0) -> dict`
    plain helper for flows: schedule (`<prefix>:schedule`) → wait → execute (`<prefix>:execute`).
- `guardian_pause(*, environment, contract=None (the pause target), idempotency_key, signer_role="guardian") -> dict`
    The guardian calls pause() on the contract (exactly-once); verified by reading paused() afterwards.
    Returns the send result plus {"paused": True, "already_paused": bool}; "already_paused" sends nothing.
Simulations (impact analysis, upgrade rehearsal) are not here: they run on a throwaway fork, never on the
chain these actions go to (`tasks/simulation.py: simulate_on_fork`).

Signers come from vvops.chain.signing.signer_for_role (devnet keys from devnet.json; keystore or Safe
proposal files elsewhere); keys never reach task parameters, results, logs or artifacts.
"""

from __future__ import annotations

import time
from typing import Any

import eth_abi
from eth_utils import keccak, to_checksum_address
from prefect import task
from prefect.cache_policies import NONE as NO_CACHE
from prefect.logging import get_run_logger

from tasks.runtime import ops_config, rpc_client, store_engine
from vvops.chain.actions import (ActionError, ActionReplaced, ActionReverted, ActionStuck, ChainActions,
                                 IdempotencyConflict, data_hex)
from vvops.chain.signing import SigningError, signer_for_role
from vvops.config import resolve_deployment
from vvops.chain.abi import contract_abi
from vvops.store import append_audit, session_scope

ZERO32 = "0x" + "00" * 32
PERMANENT = (ActionReverted, ActionReplaced, ActionStuck, IdempotencyConflict, SigningError)

__all__ = ["send_action", "schedule_on_timelock", "wait_for_timelock_delay", "execute_on_timelock",
           "guardian_pause", "run_through_timelock", "timelock_call", "operation_id",
           "read_view", "governance_timelock", "TimelockNotReady", "ActionError", "ActionReverted",
           "ActionReplaced", "ActionStuck", "IdempotencyConflict"]


class TimelockNotReady(RuntimeError):
    """The timelock operation is not ready within the allowed wait (or is not scheduled at all)."""


def _retry_transient(task, task_run, state) -> bool:
    try:
        state.result()
    except PERMANENT:
        return False
    except Exception:  # noqa: BLE001 - network trouble: retrying is safe, the key makes it exactly-once
        return True
    return False


GOVERNANCE = dict(retries=2, retry_delay_seconds=[2, 5], retry_condition_fn=_retry_transient, cache_policy=NO_CACHE)


def _audit(actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
    from tasks.store import current_flow_run_id

    with session_scope(store_engine(), immediate=True) as session:
        append_audit(session, actor=actor, action=action, subject=subject, source="flow",
                     details={**details, "flow_run_id": current_flow_run_id()})


def _address(environment: str, contract_or_address: str) -> str:
    if contract_or_address.startswith("0x"):
        return to_checksum_address(contract_or_address)
    return resolve_deployment(ops_config(environment), contract_or_address).address


def governance_timelock(environment: str) -> tuple[str, str]:
    """(address, ABI source) of the environment's governance timelock: the contract contracts.yaml marks
    `governance-timelock` (by default the one of kind timelock), with its own ABI (ours or OpenZeppelin's
    TimelockController: schedule/execute/getTimestamp/getMinDelay/isOperationReady/isOperationDone)."""
    cfg = ops_config(environment)
    spec = cfg.contract_for("governance-timelock")
    return resolve_deployment(cfg, spec.name).address, spec.abi_source


def read_view(environment: str, address: str, artifact: str, fn: str, *args: Any, block: str = "latest") -> Any:
    """One eth_call decoded with the artifact's ABI (plain function: usable inside tasks and flows)."""
    abi = contract_abi(artifact)
    with rpc_client(environment) as rpc:
        raw = rpc.call("eth_call", [{"to": address, "data": data_hex(abi.encode_call(fn, *args))}, block])
    return abi.decode_output(fn, raw)


def _send(environment: str, idempotency_key: str, signer_role: str, to: str, data: Any, description: str,
          value: int = 0, timelock_role: str | None = None) -> dict[str, Any]:
    logger = get_run_logger()
    cfg = ops_config(environment)
    if timelock_role is not None:
        from tasks.safe import safe_for, safe_send

        gov = safe_for(environment)
        if gov is not None and gov.acts_for(timelock_role):  # the Safe holds this role: execute its approved proposal
            out = safe_send(environment=environment, idempotency_key=idempotency_key, to=to, data=data_hex(data),
                            value=value, description=description)
            _audit(f"safe:{gov.address}", "chain_action.sent" if out["sent_now"] else "chain_action.mined",
                   idempotency_key, {"to": to, "description": description, **out})
            logger.info("chain action %s through Safe %s: %s (executed by %s)", idempotency_key, gov.address,
                        out["tx_hash"], out["executed_by"])
            return out
    signer = signer_for_role(environment, signer_role, chain_id=cfg.env.chain_id)
    with rpc_client(environment) as rpc:
        actions = ChainActions(rpc, store_engine(), signer, chain_id=cfg.env.chain_id)
        try:
            result = actions.send(idempotency_key=idempotency_key, to=to, data=data, value=value,
                                  description=description)
        except ActionError as exc:
            stored = exc.result.as_dict() if exc.result else {}
            _audit(signer_role, "chain_action.failed", idempotency_key,
                   {"error": str(exc), "to": to, "description": description, **stored})
            logger.error("chain action %s failed: %s", idempotency_key, exc)
            raise
    out = result.as_dict()
    _audit(signer_role, "chain_action.sent" if result.sent_now else f"chain_action.{result.status}",
           idempotency_key, {"to": to, "description": description, "from": signer.address, **out})
    logger.info("chain action %s: %s %s (block %s)%s", idempotency_key, result.status, result.tx_hash,
                result.block_number, "" if result.sent_now else " — found, not sent again")
    return out


@task(name="send-action", **GOVERNANCE)
def send_action(*, environment: str, idempotency_key: str, signer_role: str, to: str, data: str | bytes,
                description: str, value: int = 0) -> dict[str, Any]:
    """Send one keyed transaction exactly once (see the module docstring)."""
    return _send(environment, idempotency_key, signer_role, _address(environment, to), data, description, value)


def operation_id(target: str, value: int, data: str | bytes, predecessor: str, salt: str) -> str:
    """Timelock.hashOperation computed locally."""
    encoded = eth_abi.encode(["address", "uint256", "bytes", "bytes32", "bytes32"],
                             [to_checksum_address(target), int(value), bytes.fromhex(data_hex(data)[2:]),
                              bytes.fromhex(predecessor[2:]), bytes.fromhex(salt[2:])])
    return "0x" + keccak(encoded).hex()


def timelock_call(scheduled: dict[str, Any]) -> dict[str, Any]:
    """The fields of a `schedule_on_timelock` result that `execute_on_timelock` takes."""
    return {k: scheduled[k] for k in ("target", "data", "salt", "value", "predecessor")}


@task(name="schedule-on-timelock", **GOVERNANCE)
def schedule_on_timelock(*, environment: str, idempotency_key: str, target: str, data: str | bytes, value: int = 0,
                         delay: int | None = None, salt: str | None = None, predecessor: str | None = None,
                         signer_role: str = "governance", description: str = "") -> dict[str, Any]:
    """Queue a call on the timelock (exactly once per key); returns the operation and the send result."""
    timelock, timelock_abi = governance_timelock(environment)
    target = _address(environment, target)
    data = data_hex(data)
    salt = salt or "0x" + keccak(text=idempotency_key).hex()
    predecessor = predecessor or ZERO32
    if delay is None:
        delay = int(read_view(environment, timelock, timelock_abi, "getMinDelay"))
    op = operation_id(target, value, data, predecessor, salt)
    call = _schedule_data(target, int(value), data, predecessor, salt, int(delay), timelock_abi)
    operation = {"operation_id": op, "target": target, "value": int(value), "data": data, "predecessor": predecessor,
                 "salt": salt, "delay": int(delay), "timelock": timelock}
    timestamp = int(read_view(environment, timelock, timelock_abi, "getTimestamp", bytes.fromhex(op[2:])))
    if timestamp != 0 and not _stored(idempotency_key):
        get_run_logger().warning("operation %s is already on the timelock: not scheduling again", op)
        record_timelock_operation(environment=environment, timelock=timelock, operation_id=op, key=idempotency_key,
                                  target=target, description=description, ready_at=timestamp, status="scheduled")
        return {**operation, "status": "already_scheduled", "tx_hash": None, "block_number": None,
                "ready_at": timestamp, "sent_now": False, "idempotency_key": idempotency_key}
    result = _send(environment, idempotency_key, signer_role, timelock, call,
                   description or f"timelock.schedule({target}, {data[:10]}…) delay {delay}s",
                   timelock_role="proposer")
    ready_at = int(read_view(environment, timelock, timelock_abi, "getTimestamp", bytes.fromhex(op[2:])))
    record_timelock_operation(environment=environment, timelock=timelock, operation_id=op, key=idempotency_key,
                              target=target, description=description, ready_at=ready_at, status="scheduled")
    return {**result, **operation, "ready_at": ready_at}


def _schedule_data(target: str, value: int, data: str, predecessor: str, salt: str, delay: int,
                   timelock_abi: str = "Timelock") -> str:
    return data_hex(contract_abi(timelock_abi).encode_call("schedule", target, int(value), bytes.fromhex(data[2:]),
                                                         bytes.fromhex(predecessor[2:]), bytes.fromhex(salt[2:]),
                                                         int(delay)))


def timelock_schedule_call(*, environment: str, idempotency_key: str, target: str, data: str | bytes,
                           value: int = 0) -> dict[str, Any]:
    """The exact {to, data, value} `schedule_on_timelock` sends for this key (default salt, predecessor and delay):
    what a Safe proposal must contain so that the owners' confirmations approve that very call."""
    timelock, timelock_abi = governance_timelock(environment)
    delay = int(read_view(environment, timelock, timelock_abi, "getMinDelay"))
    return {"to": timelock, "value": int(value),
            "data": _schedule_data(_address(environment, target), int(value), data_hex(data), ZERO32,
                                   "0x" + keccak(text=idempotency_key).hex(), delay, timelock_abi)}


def record_timelock_operation(*, environment: str, timelock: str, operation_id: str, key: str, target: str,
                              description: str, ready_at: int | None, status: str) -> None:
    """Remember an operation we scheduled (or its end), so the ops sweep can tell ours from anyone else's."""
    from sqlalchemy import select

    from vvops.store.change_models import TimelockOperation

    chain_id = ops_config(environment).env.chain_id
    with session_scope(store_engine(), immediate=True) as session:
        row = session.scalar(select(TimelockOperation).where(
            TimelockOperation.chain_id == chain_id, TimelockOperation.timelock == timelock,
            TimelockOperation.operation_id == operation_id))
        if row is None:
            session.add(TimelockOperation(environment=environment, chain_id=chain_id, timelock=timelock,
                                          operation_id=operation_id, idempotency_key=key[:200], target=target,
                                          description=description[:2000], ready_at=ready_at, status=status))
        else:
            row.status = status
            row.ready_at = ready_at if ready_at is not None else row.ready_at


def _stored(idempotency_key: str) -> bool:
    from sqlalchemy import select

    from vvops.store.models import ChainAction
    from vvops.store.safe_models import SafeTransaction

    with session_scope(store_engine()) as session:
        return (session.scalar(select(ChainAction.id).where(ChainAction.idempotency_key == idempotency_key)) is not None
                or session.scalar(select(SafeTransaction.id).where(
                    SafeTransaction.idempotency_key == idempotency_key)) is not None)


@task(name="wait-for-timelock-delay", cache_policy=NO_CACHE)
def wait_for_timelock_delay(*, environment: str, operation_id: str, max_wait_s: float | None = None,
                            poll_interval_s: float = 15) -> dict[str, Any]:
    """Until the operation is ready: time travel on the devnet, a polling wait elsewhere."""
    logger = get_run_logger()
    cfg = ops_config(environment)
    timelock, timelock_abi = governance_timelock(environment)
    op = bytes.fromhex(operation_id[2:])
    ready_at = int(read_view(environment, timelock, timelock_abi, "getTimestamp", op))
    if ready_at == 0:
        raise TimelockNotReady(f"operation {operation_id} is not scheduled on the timelock")
    if ready_at == 1:
        return {"operation_id": operation_id, "ready_at": ready_at, "waited_s": 0, "mode": "already-executed"}
    with rpc_client(environment) as rpc:
        now = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        if now >= ready_at:
            return {"operation_id": operation_id, "ready_at": ready_at, "waited_s": 0, "mode": "already-ready"}
        remaining = ready_at - now
        if cfg.env.uses_devnet:
            rpc.call("evm_increaseTime", [remaining])
            rpc.call("evm_mine", [])
            logger.info("devnet: travelled %s s forward to the timelock's ready time", remaining)
            _audit("ops", "timelock.time_travel", operation_id, {"seconds": remaining, "ready_at": ready_at})
            return {"operation_id": operation_id, "ready_at": ready_at, "waited_s": remaining, "mode": "time-travel"}
    limit = max_wait_s if max_wait_s is not None else remaining + 600
    started = time.monotonic()
    logger.info("waiting %s s for timelock operation %s (polling every %s s)", remaining, operation_id, poll_interval_s)
    while time.monotonic() - started < limit:
        time.sleep(min(poll_interval_s, max(1.0, limit - (time.monotonic() - started))))
        if read_view(environment, timelock, timelock_abi, "isOperationReady", op):
            return {"operation_id": operation_id, "ready_at": ready_at,
                    "waited_s": round(time.monotonic() - started), "mode": "waited"}
    raise TimelockNotReady(f"operation {operation_id} not ready after {limit:.0f} s (ready at {ready_at})")


@task(name="execute-on-timelock", **GOVERNANCE)
def execute_on_timelock(*, environment: str, idempotency_key: str, target: str, data: str | bytes, salt: str,
                        value: int = 0, predecessor: str | None = None, signer_role: str = "governance",
                        description: str = "") -> dict[str, Any]:
    """Execute a ready timelock operation (exactly once per key)."""
    timelock, timelock_abi = governance_timelock(environment)
    target = _address(environment, target)
    data = data_hex(data)
    predecessor = predecessor or ZERO32
    op = operation_id(target, value, data, predecessor, salt)
    done = bool(read_view(environment, timelock, timelock_abi, "isOperationDone", bytes.fromhex(op[2:])))
    if done and not _stored(idempotency_key):
        return {"operation_id": op, "status": "already_executed", "tx_hash": None, "block_number": None,
                "sent_now": False, "idempotency_key": idempotency_key}
    call = contract_abi(timelock_abi).encode_call("execute", target, int(value), bytes.fromhex(data[2:]),
                                                bytes.fromhex(predecessor[2:]), bytes.fromhex(salt[2:]))
    result = _send(environment, idempotency_key, signer_role, timelock, call,
                   description or f"timelock.execute({target}, {data[:10]}…)", timelock_role="executor")
    if result.get("status") == "mined":
        record_timelock_operation(environment=environment, timelock=timelock, operation_id=op, key=idempotency_key,
                                  target=target, description=description, ready_at=None,
                                  status="executed")
    return {**result, "operation_id": op}


def run_through_timelock(*, environment: str, key_prefix: str, target: str, data: str | bytes, description: str,
                         value: int = 0) -> dict[str, Any]:
    """schedule → wait for the delay → execute (call inside a flow; each step is its own task run)."""
    scheduled = schedule_on_timelock(environment=environment, idempotency_key=f"{key_prefix}:schedule",
                                     target=target, data=data, value=value, description=f"schedule: {description}")
    waited = wait_for_timelock_delay(environment=environment, operation_id=scheduled["operation_id"])
    executed = execute_on_timelock(environment=environment, idempotency_key=f"{key_prefix}:execute",
                                   description=f"execute: {description}", **timelock_call(scheduled))
    return {"schedule": scheduled, "wait": waited, "execute": executed}


def _already_paused(idempotency_key: str) -> dict[str, Any]:
    return {"status": "already_paused", "tx_hash": None, "block_number": None, "sent_now": False,
            "idempotency_key": idempotency_key, "paused": True, "already_paused": True}


@task(name="guardian-pause", **GOVERNANCE)
def guardian_pause(*, environment: str, contract: str | None = None, idempotency_key: str,
                   signer_role: str = "guardian") -> dict[str, Any]:
    """The guardian pauses `contract` (default: the environment's pause target) exactly once; returns the send
    result + the verified paused() value."""
    cfg = ops_config(environment)
    contract = contract or cfg.contract_for("pause-target").name
    address = _address(environment, contract)
    artifact = cfg.contract(contract).abi_source
    if bool(read_view(environment, address, artifact, "paused")) and not _stored(idempotency_key):
        get_run_logger().warning("%s is already paused: nothing sent", contract)
        return _already_paused(idempotency_key)
    try:
        result = _send(environment, idempotency_key, signer_role, address,
                       contract_abi(artifact).encode_call("pause"), f"guardian pause of {contract}")
    except ActionError:
        # Two containments racing (the watcher's fast path and a flow, or two approved pauses in one block): the
        # loser's pause() reverts because the contract is already paused. The goal is met; only a real failure
        # (still unpaused) is an error.
        if not bool(read_view(environment, address, artifact, "paused")):
            raise
        get_run_logger().warning("%s was paused by another action while ours was sent: nothing more to do", contract)
        return _already_paused(idempotency_key)
    paused = bool(read_view(environment, address, artifact, "paused"))
    if result["status"] == "mined" and not paused:
        raise ActionError(f"{contract}.pause() mined in block {result['block_number']} but paused() is false")
    return {**result, "paused": paused, "already_paused": False}


def procedure_update(*, environment: str, procedure: str, step: str, message: str, actor: str | None = None,
                     flow_run_id: str | None = None) -> bool:
    """A reply in the procedure's Slack thread (`procedure:<flow_run_id>`); never fails the procedure."""
    from tasks.store import current_flow_run_id

    run_id = flow_run_id or current_flow_run_id() or "local"
    try:
        from tasks.approvals import notify_safely

        return notify_safely(kind="incident_updated", channel_purpose="ops",
                             payload={"key": f"{procedure} {run_id[:8]}", "status": step, "message": message,
                                      "actor": actor},
                             idempotency_key=f"procedure:{run_id}:{step}", thread_key=f"procedure:{run_id}",
                             environment=environment)
    except Exception as exc:  # noqa: BLE001 - Slack is best effort for procedures
        get_run_logger().warning("procedure update %s/%s not queued: %s", procedure, step, exc)
        return False
