"""Protocol Upgrades as Prefect tasks: checklist items, the pre-upgrade snapshot, the rehearsal, the staged
upgrade through the timelock (with its rollback hook), checkpoints and the stabilisation window.

Exactly-once: every on-chain step goes through tasks/governance.py with the key
`upgrade_rollout:<change_id>:<stage>:schedule|execute` (rollback: `...:rollback-schedule|rollback-execute`), so a
rerun of the same change (same `change_id`) finds the stored transaction and waits for its receipt instead of
sending again. The rollback hook runs only in the live process (Prefect transactions); after a crash the rerun
re-checks the checkpoint and rolls back then if it fails.

Stabilisation: after a verified rollout the Prefect Variable `vv_stabilisation_until` holds
`{"<environment>": {"from", "until", "change_id", "contract", "implementation"}}`; the every-minute ops sweep
reads it (`stabilisation_active(environment)`, in `flows/stabilisation_checks.py`) and runs the protocol-health
checks every `upgrades.stabilisation_check_every_minutes` until `until` (config: upgrades.stabilisation_hours).
The same window is an audit entry (`upgrade.stabilisation`) in the store.
"""

from __future__ import annotations

import json
import os
import signal
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NONE as NO_CACHE
from prefect.logging import get_run_logger
from prefect.transactions import get_transaction
from sqlalchemy import select

from tasks.chain import contract_state_outcomes, read_code, read_contract_state
from tasks.runtime import ops_config, rpc_client, store_engine, store_url
from vvops import paths
from vvops.config import resolve_deployment
from vvops.chain.abi import contract_abi
from vvops.chain.artifacts import deployed_bytecode_of, load_artifact
from vvops.procedures.upgrade_safety import UpgradeSafetyUnavailable, validate_upgrade
from vvops.procedures.upgrades import (Checkpoint, evaluate_checkpoint, masked_code_hash, stabilisation_window,
                                       upgrade_key)
from vvops.store import append_audit, session_scope
from vvops.store.models import ApprovalRequest, Backup

STABILISATION_VARIABLE = "vv_stabilisation_until"
FAULT_ENV = "VVOPS_FAULT_INJECT"
NO_RETRY = dict(cache_policy=NO_CACHE)


def fault_point(name: str) -> None:
    """Test hook: `VVOPS_FAULT_INJECT=<name>` SIGKILLs this process here (simulates a worker dying). No-op otherwise."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _audit(actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
    from tasks.store import current_flow_run_id

    with session_scope(store_engine(), immediate=True) as session:
        append_audit(session, actor=actor, action=action, subject=subject, source="flow",
                     details={**details, "flow_run_id": current_flow_run_id()})


# --------------------------------------------------------------------------- pre-deployment checklist


@task(name="verify-bytecode", **NO_RETRY)
def verify_bytecode(*, environment: str, address: str, artifact: str) -> dict[str, Any]:
    """keccak of the deployed runtime code (immutables masked) vs the approved artifact."""
    immutables = load_artifact(artifact).get("immutableReferences", [])
    expected = masked_code_hash(deployed_bytecode_of(artifact), immutables)
    code = read_code.fn(environment=environment, address=address)
    actual = masked_code_hash(code, immutables) if code else None
    return {"ok": bool(code) and actual == expected, "expected_code_hash": expected, "code_hash": actual,
            "code_size": len(code)}


@task(name="check-storage-layout", **NO_RETRY)
def check_storage_layout(*, environment: str, contract: str, new_artifact: str) -> dict[str, Any]:
    """OpenZeppelin upgrades-core's verdict on the storage layout (vvops/procedures/upgrade_safety.py): one message
    per problem; a layout it could not validate is not ok (never an unchecked pass)."""
    current = _contract_name(ops_config(environment).contract(contract).artifact)
    proposed = _contract_name(new_artifact)
    base = {"current_artifact": current, "new_artifact": proposed, "validator": "@openzeppelin/upgrades-core"}
    try:
        report = validate_upgrade(current, proposed)
    except UpgradeSafetyUnavailable as exc:
        get_run_logger().error("storage layout of %s not validated: %s", proposed, exc)
        return {**base, "ok": False, "problems": [f"not validated: {exc}"], "safety_findings": []}
    for finding in report.safety_findings:
        get_run_logger().warning("upgrades-core on %s: %s", proposed, finding)
    return {**base, "ok": report.ok, "problems": report.storage_problems, "safety_findings": report.safety_findings}


def _contract_name(artifact: str) -> str:
    """The contract an artifact reference names: `VaultV1`, or the file stem of a path (`out/Vault.sol/Vault.json`)."""
    return Path(artifact).stem if artifact.endswith(".json") or "/" in artifact else artifact


@task(name="pre-upgrade-snapshot", **NO_RETRY)
def pre_upgrade_snapshot(*, environment: str, contract: str, change_id: str) -> dict[str, Any]:
    """Backup before any transaction: the contract state as JSON (sha256) and a store backup; each recorded as a
    `backups` row. Nothing is snapshotted on the chain itself (someone watches it; rehearsals run on a fork)."""
    from vvops.resilience.backup import backup_store, write_checksum_sidecar

    with session_scope(store_engine()) as session:
        taken = session.scalars(select(Backup).where(Backup.kind == "chain-state").order_by(Backup.id)).all()
        taken = [b for b in taken if (b.details or {}).get("change_id") == change_id
                 and (b.details or {}).get("environment") == environment]
        if taken:  # a rerun of the same change: the snapshot from before its first transaction is the reference
            doc = json.loads(Path(taken[0].path).read_text())
            store = session.scalars(select(Backup).where(Backup.kind == "store").order_by(Backup.id)).all()
            store = [b for b in store if (b.details or {}).get("change_id") == change_id]
            return {"ok": True, "block": doc["block"], "state_file": taken[0].path, "state_sha256": taken[0].checksum,
                    "store_backup": store[0].path if store else None,
                    "store_backup_sha256": store[0].checksum if store else "", "before": doc["state"],
                    "implementation": doc["implementation"], "reused": True}
    state = read_contract_state.fn(environment=environment, contract=contract)
    out_dir = paths.state_dir() / "backups" / "upgrades"
    out_dir.mkdir(parents=True, exist_ok=True)
    with rpc_client(environment) as rpc:
        block = int(rpc.call("eth_blockNumber"), 16)
    state_doc = {"change_id": change_id, "environment": environment, "contract": contract, "block": block,
                 "state": state["values"], "implementation": state["implementation"], "address": state["address"]}
    state_path = out_dir / f"{change_id}-{environment}-{contract}-state.json"
    state_path.write_text(json.dumps(state_doc, indent=2, sort_keys=True, default=str))
    import hashlib

    state_sha = hashlib.sha256(state_path.read_bytes()).hexdigest()
    stamp = f"{change_id}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S%f')}"
    store_backup = backup_store(url=store_url(), dest_dir=out_dir, stamp=stamp)
    write_checksum_sidecar(store_backup)
    with session_scope(store_engine(), immediate=True) as session:
        session.add(Backup(kind="chain-state", path=str(state_path), checksum=state_sha, size=state_path.stat().st_size,
                           details={"change_id": change_id, "block": block,
                                    "environment": environment, "contract": contract}))
        session.add(Backup(kind="store", path=str(store_backup.path), checksum=store_backup.sha256,
                           size=store_backup.size, details={"change_id": change_id, "purpose": "pre-upgrade"}))
    return {"ok": True, "block": block, "state_file": str(state_path),
            "state_sha256": state_sha, "store_backup": str(store_backup.path), "store_backup_sha256": store_backup.sha256,
            "before": state["values"], "implementation": state["implementation"]}


# --------------------------------------------------------------------------- approvals reused across reruns


def approved_request(procedure: str, subject: str) -> int | None:
    """An already-approved request with this subject (a rerun of the same change does not ask again)."""
    with session_scope(store_engine()) as session:
        return session.scalar(select(ApprovalRequest.id).where(ApprovalRequest.procedure == procedure,
                                                               ApprovalRequest.subject == subject,
                                                               ApprovalRequest.status == "approved")
                              .order_by(ApprovalRequest.id.desc()).limit(1))


# --------------------------------------------------------------------------- rehearsal


def upgrade_call(environment: str, contract: str, new_implementation: str, data: str | bytes = b"") -> dict[str, str]:
    """The upgrade of `contract` to `new_implementation` the way its proxy kind takes it (contracts.yaml `proxy`):
    {"to", "data", "kind"} — UUPS `upgradeToAndCall` on the proxy, transparent `upgradeAndCall` on the ProxyAdmin
    in the admin slot, beacon `upgradeTo` on the beacon in the beacon slot (vvops.chain.proxies)."""
    from vvops.chain.actions import data_hex
    from vvops.chain.proxies import read_proxy_slots, upgrade_call as proxy_upgrade_call

    cfg = ops_config(environment)
    spec = cfg.contract(contract)
    with rpc_client(environment) as rpc:
        slots = read_proxy_slots(rpc, resolve_deployment(cfg, contract).address, spec.proxy)
    raw = bytes.fromhex(data_hex(data)[2:]) if data else b""
    to, calldata = proxy_upgrade_call(slots, new_implementation, raw)
    return {"to": to, "data": "0x" + calldata.hex(), "kind": spec.proxy}


def health_problems(environment: str, state: dict[str, Any], *, expected_implementation: str | None = None) -> list[str]:
    """crit/error outcomes of the contract-state check, the implementation judged against the rollout instead of
    contracts.yaml's approved list (the new implementation is approved by this very procedure)."""
    outcomes = contract_state_outcomes(environment, state, open_incident=False)
    out = []
    for o in outcomes:
        if o.id.endswith(".implementation") and expected_implementation:
            continue
        if o.status in ("crit", "error"):
            out.append(f"{o.id}: {o.message}")
    return out


@task(name="rehearse-upgrade", **NO_RETRY)
def rehearse_upgrade(*, environment: str, contract: str, new_implementation: str, expected_version: str) -> dict[str, Any]:
    """On a throwaway fork of the chain (tasks/simulation.simulate_on_fork): upgrade as the impersonated owner (the
    timelock), read state, smoke checks and invariants, version(); the fork is then stopped. Nothing touches the
    chain itself. `simulated` False (with `not_simulated`, the reason) when no fork could be made."""
    from tasks.simulation import simulate_on_fork

    call = upgrade_call(environment, contract, new_implementation)
    sim = simulate_on_fork.fn(environment=environment, contract=contract,
                              calls=[{"to": call["to"], "data": call["data"]}])
    if not sim["simulated"]:
        return {"ok": False, "simulated": False, "not_simulated": sim["not_simulated"], "checks": {}, "error": None,
                "version_after": None, "implementation_after": None, "problems": [], "fork": None}
    after = sim.get("after") or {}
    before = sim.get("before") or {}
    problems = [f"{o['id']}: {o['message']}" for o in (sim.get("outcomes_after") or [])
                if o["status"] in ("crit", "error") and not o["id"].endswith(".implementation")]
    invariants_ok = not any(".invariant." in p for p in problems)
    cp = evaluate_checkpoint(stage=f"rehearsal:{environment}", expected_implementation=new_implementation,
                             implementation=after.get("implementation"), expected_version=expected_version,
                             version=after.get("version"), before=before, after=after, invariants_ok=invariants_ok,
                             health_problems=problems)
    ok = sim.get("error") is None and cp.ok
    return {"ok": bool(ok), "simulated": True, "not_simulated": None, "checks": cp.checks, "error": sim.get("error"),
            "version_after": after.get("version"), "implementation_after": after.get("implementation"),
            "problems": problems, "fork": sim.get("fork")}


# --------------------------------------------------------------------------- staged deployment


def _through_timelock(environment: str, key_prefix: str, target: str, data: str, description: str) -> dict[str, Any]:
    """schedule → wait → execute with plain calls (usable from a rollback hook, where no new task runs start)."""
    from tasks.governance import execute_on_timelock, schedule_on_timelock, timelock_call, wait_for_timelock_delay

    scheduled = schedule_on_timelock.fn(environment=environment, idempotency_key=f"{key_prefix}schedule",
                                        target=target, data=data, description=f"schedule: {description}")
    wait_for_timelock_delay.fn(environment=environment, operation_id=scheduled["operation_id"])
    executed = execute_on_timelock.fn(environment=environment, idempotency_key=f"{key_prefix}execute",
                                      description=f"execute: {description}", **timelock_call(scheduled))
    return {"schedule": scheduled, "execute": executed}


@task(name="upgrade-stage", **NO_RETRY)
def upgrade_stage(*, stage: str, contract: str, new_implementation: str, previous_implementation: str,
                  change_id: str) -> dict[str, Any]:
    """upgradeTo(new) through the stage's timelock: schedule (key …:schedule) → delay → execute (key …:execute).
    Registers what the rollback hook needs in the surrounding Prefect transaction."""
    from tasks.governance import execute_on_timelock, schedule_on_timelock, timelock_call, wait_for_timelock_delay

    txn = get_transaction()
    if txn is not None:
        txn.set("rollback", {"stage": stage, "contract": contract, "previous_implementation": previous_implementation,
                             "new_implementation": new_implementation, "change_id": change_id})
    call = upgrade_call(stage, contract, new_implementation)
    desc = f"upgrade {contract} on {stage} to {new_implementation} ({call['kind']} proxy; {change_id})"
    scheduled = schedule_on_timelock.fn(environment=stage, idempotency_key=upgrade_key(change_id, stage, "schedule"),
                                        target=call["to"], data=call["data"], description=f"schedule: {desc}")
    fault_point("upgrade_rollout:after-schedule")
    wait_for_timelock_delay.fn(environment=stage, operation_id=scheduled["operation_id"])
    executed = execute_on_timelock.fn(environment=stage, idempotency_key=upgrade_key(change_id, stage, "execute"),
                                      description=f"execute: {desc}", **timelock_call(scheduled))
    fault_point("upgrade_rollout:after-execute")
    return {"stage": stage, "operation_id": scheduled["operation_id"], "schedule_tx": scheduled.get("tx_hash"),
            "execute_tx": executed.get("tx_hash"), "execute_status": executed.get("status"),
            "sent_now": bool(scheduled.get("sent_now")) or bool(executed.get("sent_now"))}


@upgrade_stage.on_rollback
def _roll_back_stage(txn) -> None:
    """Failed checkpoint: upgradeTo(previous) through the same timelock path, exactly once per change and stage."""
    info = txn.get("rollback")
    stage, contract, change_id = info["stage"], info["contract"], info["change_id"]
    call = upgrade_call(stage, contract, info["previous_implementation"])
    result = _through_timelock(stage, upgrade_key(change_id, stage, "rollback-"), call["to"], call["data"],
                               f"roll back {contract} on {stage} to {info['previous_implementation']} ({change_id})")
    _audit("upgrade-rollout", "upgrade.rolled_back", f"{contract}@{stage}",
           {"change_id": change_id, "previous_implementation": info["previous_implementation"],
            "execute_tx": result["execute"].get("tx_hash")})


@task(name="upgrade-checkpoint", **NO_RETRY)
def checkpoint(*, stage: str, contract: str, new_implementation: str, expected_version: str,
               before: dict[str, Any]) -> dict[str, Any]:
    """Implementation slot, version(), invariants, state preserved and the contract health checks."""
    state = read_contract_state.fn(environment=stage, contract=contract)
    problems = health_problems(stage, state, expected_implementation=new_implementation)
    cp: Checkpoint = evaluate_checkpoint(
        stage=stage, expected_implementation=new_implementation, implementation=state["implementation"],
        expected_version=expected_version, version=state["values"].get("version"), before=before,
        after=state["values"], invariants_ok=not any(".invariant." in p for p in problems),
        health_problems=problems)
    return {"stage": stage, "ok": cp.ok, "checks": cp.checks, "failed": cp.failed, "details": cp.details}


class CheckpointFailed(RuntimeError):
    """A stage's checkpoint failed: the surrounding transaction rolls the upgrade back."""


def current_implementation(environment: str, contract: str) -> str | None:
    """The implementation behind `contract` from its ERC-1967 slots (behind a beacon: the beacon's)."""
    from vvops.chain.proxies import read_proxy_slots

    cfg = ops_config(environment)
    with rpc_client(environment) as rpc:
        return read_proxy_slots(rpc, resolve_deployment(cfg, contract).address, cfg.contract(contract).proxy).implementation


# --------------------------------------------------------------------------- stabilisation


@task(name="start-stabilisation", **NO_RETRY)
def start_stabilisation(*, environment: str, contract: str, change_id: str, implementation: str,
                        completed_at: datetime | None = None) -> dict[str, Any]:
    """Record the heightened-monitoring window (audit entry + Prefect Variable `vv_stabilisation_until`)."""
    from prefect.variables import Variable

    hours = ops_config(environment).procedures.upgrades.stabilisation_hours
    window = stabilisation_window(completed_at=completed_at or datetime.now(timezone.utc), hours=hours)
    entry = {**window, "change_id": change_id, "contract": contract, "implementation": implementation, "hours": hours}
    try:
        current = Variable.get(STABILISATION_VARIABLE, default=None) or {}
        if not isinstance(current, dict):
            current = {}
        Variable.set(STABILISATION_VARIABLE, {**current, environment: entry}, overwrite=True)
    except Exception as error:  # noqa: BLE001 - the audit entry below still records the window
        get_run_logger().warning("could not set the %s variable: %s", STABILISATION_VARIABLE, error)
    _audit("upgrade-rollout", "upgrade.stabilisation", f"{contract}@{environment}", entry)
    return entry


def stabilisation_active(environment: str, now: datetime | None = None) -> dict[str, Any] | None:
    """The stabilisation window in force for an environment (read by the stabilisation checks), or None."""
    from prefect.variables import Variable

    from vvops.procedures.upgrades import in_stabilisation

    try:
        entry = (Variable.get(STABILISATION_VARIABLE, default=None) or {}).get(environment)
    except Exception:  # noqa: BLE001 - no API: no heightened monitoring
        return None
    return entry if in_stabilisation(entry, now or datetime.now(timezone.utc)) else None
