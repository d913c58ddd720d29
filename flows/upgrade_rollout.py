"""Protocol Upgrades / Upgrade Execution: checklist → rehearsal → go/no-go → staged deployment with checkpoints
→ post-deployment verification → stabilisation → retrospective.

- Pre-deployment checklist: bytecode (immutables masked) = approved artifact; storage layout compatible
  (incompatible = hard stop BEFORE any transaction); backup/state snapshot (state JSON + store backup, each a
  `backups` row; nothing is snapshotted on the chain); team readiness = an approval (procedure `upgrade_rollout`).
- Rehearsal on a throwaway anvil fork of the chain: upgrade as the impersonated timelock, smoke checks +
  invariants + version(); the fork is stopped, the chain never sees it. A failed rehearsal stops the rollout;
  where no fork can be made the go/no-go request says "NOT SIMULATED" plainly and the leads decide.
- Go/no-go: a second approval (`approval_policy("upgrade_rollout")`: quorum from config).
- Staged deployment: stages = chains in order (default: the environment). Each: timelock schedule → delay →
  execute `upgradeTo(new)` with keys `upgrade_rollout:<change_id>:<stage>:schedule|execute`, then a checkpoint
  (implementation slot, version(), invariants, state preserved, health checks). All stages run inside one Prefect
  `transaction()`; a failed checkpoint raises, and the `upgrade-stage` rollback hooks put every upgraded stage
  back on its previous implementation (reverse order), then an incident is opened and the run fails.
- `change_id` names the change: a rerun with the same id reuses the stored approvals and transactions (nothing is
  sent twice). Default: the flow run id. After a rollback, a new attempt needs a new change id (the old keys
  are spent: a rerun with them would find the upgrade and the rollback already done and change nothing).
- Stabilisation: the Prefect Variable `vv_stabilisation_until` ({env: {from, until, change_id, ...}}) and an
  `upgrade.stabilisation` audit entry; while it lasts the ops sweep runs the protocol-health checks every
  `upgrades.stabilisation_check_every_minutes` (`flows/stabilisation_checks.py`).
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.logging import get_run_logger
from prefect.transactions import transaction

from tasks.contract_slots import hold_contract_slots
from tasks.preflight import preflight
from tasks.reports import publish_markdown
from tasks.runtime import ops_config
from tasks.store import audit, current_flow_run_id, open_incident
from tasks.upgrades import (CheckpointFailed, approved_request, check_storage_layout, checkpoint,
                            current_implementation, pre_upgrade_snapshot, rehearse_upgrade, start_stabilisation,
                            upgrade_stage, verify_bytecode)
from vvops.config import devnet_address
from vvops.procedures.upgrades import rollout_stages


def _approve(*, kind: str, change_id: str, contract: str, address: str, proposer: str, environment: str,
             description_md: str, details: dict[str, Any], poll_interval: float,
             timelock_call: dict[str, Any] | None = None,
             proposer_proof: dict[str, Any] | None = None) -> dict[str, Any]:
    """`timelock_call` ({schedule_key, target, data}): where a Safe proposes on the timelock, the owners' Safe
    confirmations of that schedule are this approval (tasks/safe.py)."""
    from tasks.approvals import request_approval
    from tasks.safe import approve_timelock_call

    subject = f"upgrade {kind} {contract} -> {address} ({change_id})"
    existing = approved_request("upgrade_rollout", subject)
    if existing is not None:
        get_run_logger().info("%s already approved (request #%s): not asking again", subject, existing)
        return {"approved": True, "request_id": existing, "approvers": [], "reused": True}
    ask = (lambda **kw: approve_timelock_call(**timelock_call, **kw)) if timelock_call else request_approval
    outcome = ask(procedure="upgrade_rollout", subject=subject, risk="high", proposer=proposer,
                  description_md=description_md, environment=environment, details=details,
                  poll_interval=poll_interval, proposer_proof=proposer_proof)
    return {"approved": outcome.approved, "request_id": outcome.request_id, "approvers": outcome.approvers,
            "reason": outcome.reason, "reused": False}


def _stage_schedule(change_id: str, environment: str, contract: str, address: str, plan: list[str]
                    ) -> dict[str, Any] | None:
    """The schedule call of a single-stage rollout (what a Safe's owners confirm as the go/no-go)."""
    from tasks.upgrades import upgrade_call
    from vvops.procedures.upgrades import upgrade_key

    if plan != [environment]:
        return None
    call = upgrade_call(environment, contract, address)  # per proxy kind: the proxy, its ProxyAdmin or its beacon
    return {"schedule_key": upgrade_key(change_id, environment, "schedule"), "target": call["to"],
            "data": call["data"]}


def _checklist_md(contract: str, address: str, artifact: str, current: str | None, checklist: dict[str, bool],
                  problems: list[str], verdict: str) -> str:
    lines = "\n".join(f"- [{'x' if ok else ' '}] {item}" for item, ok in checklist.items())
    extra = "\n".join(f"  - {p}" for p in problems)
    return (f"# Pre-deployment checklist: {contract}\n\ncurrent implementation `{current}` → new `{address}` "
            f"({artifact})\n\n{lines}\n{extra}\n\n**{verdict}**\n")


def _rehearsal_md(rehearsal: dict[str, Any]) -> str:
    if not rehearsal["simulated"]:
        return (f"**⚠ Rehearsal NOT SIMULATED** — {rehearsal['not_simulated']}. No fork of the chain could be made: "
                "approving means upgrading without a rehearsal.")
    fork = rehearsal.get("fork") or {}
    return (f"Rehearsal on a fork of {fork.get('source')} at block {fork.get('block')}: "
            + ", ".join(f"{k}: {'✅' if v else '❌'}" for k, v in rehearsal["checks"].items()))


@flow(name="upgrade-rollout", log_prints=True)
def upgrade_rollout(
    proposer: str,
    new_implementation: str = "from-devnet:vault_v2_implementation",
    new_artifact: str = "VaultV2",
    contract: str | None = None,
    environment: str = "devnet",
    expected_version: str = "2.0.0",
    change_id: str | None = None,
    stages: list[str] | None = None,
    approval_poll_interval: float = 10,
    slot_wait_seconds: float | None = 3600,
    proposal_signature: str = "",
    proposal_expires: int = 0,
) -> dict:
    """Upgrade `contract` to `new_implementation` following the playbook; see the module docstring."""
    if (not_ready := preflight(environment)) is not None:
        return not_ready

    from tasks.approvals import prove_proposer

    proposer_proof = prove_proposer(procedure="upgrade_rollout", flow_fn=upgrade_rollout, values=locals(),
                                    proposer=proposer, environment=environment, signature=proposal_signature,
                                    expires=proposal_expires)
    logger = get_run_logger()
    change_id = change_id or current_flow_run_id() or "manual"
    contract = contract or ops_config(environment).contract_for("upgrade-target").name  # validates the config too
    address = devnet_address(new_implementation) if new_implementation.startswith("from-devnet:") else new_implementation
    plan = rollout_stages(environment, stages)

    # ---- pre-deployment checklist (no transaction before it passes)
    code = verify_bytecode(environment=environment, address=address, artifact=new_artifact)
    layout = check_storage_layout(environment=environment, contract=contract, new_artifact=new_artifact)
    live_implementation = current_implementation(environment, contract)
    checklist = {"bytecode matches the approved artifact": code["ok"], "storage layout compatible": layout["ok"]}
    base_details = {"change_id": change_id, "checklist": checklist, "layout_problems": layout["problems"],
                    "layout_safety_findings": layout.get("safety_findings", []),
                    "code_hash": code["code_hash"], "expected_code_hash": code["expected_code_hash"],
                    "current_implementation": live_implementation, "new_implementation": address, "stages": plan}
    if not all(checklist.values()):
        audit(actor=proposer, action="upgrade.checklist", subject=f"{contract} -> {address}", details=base_details)
        publish_markdown(key="upgrade-checklist", description=f"Upgrade of {contract} to {address}: NO-GO",
                         markdown=_checklist_md(contract, address, new_artifact, live_implementation, checklist,
                                                layout["problems"], "NO-GO: stopped before any transaction"))
        raise RuntimeError("upgrade stopped before any transaction: "
                           + ", ".join(k for k, ok in checklist.items() if not ok))

    # One change per contract at a time, on every stage: held from the snapshot until verified or rolled back
    with hold_contract_slots(contracts=[(stage, contract) for stage in plan], procedure="upgrade_rollout",
                             change_id=change_id, timeout_seconds=slot_wait_seconds):
        snap = pre_upgrade_snapshot(environment=environment, contract=contract, change_id=change_id)
        previous = snap["implementation"]  # from before this change's first transaction (a rerun reuses it)
        checklist["backup and state snapshot taken"] = snap["ok"]
        summary_md = (f"Upgrade `{contract}` on {', '.join(plan)} from `{previous}` to `{address}` ({new_artifact}, "
                      f"expected version {expected_version}).\n\nState snapshot sha256 `{snap['state_sha256'][:16]}…` "
                      f"(block {snap['block']}), store backup `{snap['store_backup_sha256'][:16]}…`.")
        readiness = _approve(kind="readiness", change_id=change_id, contract=contract, address=address,
                             proposer=proposer, environment=environment, poll_interval=approval_poll_interval,
                             proposer_proof=proposer_proof, description_md="Confirm the team is ready: on-call staffed, communication sent, "
                                            "monitoring prepared.\n\n" + summary_md, details=base_details)
        checklist["team readiness confirmed"] = readiness["approved"]
        audit(actor=proposer, action="upgrade.checklist", subject=f"{contract} -> {address}",
              details={**base_details, "checklist": checklist, "snapshot": {k: snap[k] for k in
                       ("block", "state_sha256", "store_backup_sha256")}})
        if not readiness["approved"]:
            raise RuntimeError(f"upgrade stopped: team readiness not confirmed ({readiness.get('reason')})")

        # ---- rehearsal on a throwaway fork
        rehearsal = rehearse_upgrade(environment=environment, contract=contract, new_implementation=address,
                                     expected_version=expected_version)
        audit(actor=proposer, action="upgrade.rehearsal", subject=f"{contract} -> {address}",
              details={"change_id": change_id, **rehearsal})
        if rehearsal["simulated"] and not rehearsal["ok"]:
            raise RuntimeError(f"upgrade stopped: rehearsal failed ({rehearsal.get('error') or rehearsal['checks']})")

        # ---- go/no-go
        go = _approve(kind="go/no-go", change_id=change_id, contract=contract, address=address, proposer=proposer,
                      environment=environment, poll_interval=approval_poll_interval,
                      timelock_call=_stage_schedule(change_id, environment, contract, address, plan),
                      proposer_proof=proposer_proof,
                      description_md=_rehearsal_md(rehearsal) + "\n\n" + summary_md,
                      details={**base_details, "rehearsal": rehearsal["checks"], "simulated": rehearsal["simulated"]})
        if not go["approved"]:
            audit(actor=proposer, action="upgrade.no_go", subject=f"{contract} -> {address}",
                  details={"change_id": change_id, "reason": go.get("reason")})
            raise RuntimeError(f"upgrade stopped: no-go ({go.get('reason')})")

        # ---- staged deployment with checkpoints; any failure rolls every upgraded stage back
        results: list[dict[str, Any]] = []
        failure: dict[str, Any] | None = None
        try:
            with transaction():
                for stage in plan:
                    before = snap["before"] if stage == environment else {}
                    prev = previous if stage == environment else current_implementation(stage, contract)
                    sent = upgrade_stage(stage=stage, contract=contract, new_implementation=address,
                                         previous_implementation=prev, change_id=change_id)
                    cp = checkpoint(stage=stage, contract=contract, new_implementation=address,
                                    expected_version=expected_version, before=before)
                    results.append({**sent, "checkpoint": cp})
                    audit(actor=proposer, action="upgrade.checkpoint", subject=f"{contract}@{stage}",
                          details={"change_id": change_id, **cp})
                    if not cp["ok"]:
                        failure = cp
                        raise CheckpointFailed(f"checkpoint failed on {stage}: {', '.join(cp['failed'])}")
        except CheckpointFailed as error:
            restored = {s: current_implementation(s, contract) for s in plan}
            ok = all((impl or "").lower() == (previous or "").lower() for impl in restored.values())
            key = open_incident(title=f"Upgrade of {contract} failed its checkpoint and was rolled back ({change_id})",
                                incident_type="technical", severity="P1", commander=None, opened_by="upgrade-rollout",
                                data={"change_id": change_id, "failure": failure, "restored": restored,
                                      "rollback_verified": ok})
            audit(actor=proposer, action="upgrade.failed", subject=f"{contract} -> {address}",
                  details={"change_id": change_id, "error": str(error), "restored": restored,
                           "rollback_verified": ok, "incident": key})
            publish_markdown(key="upgrade-retrospective", description=f"Upgrade of {contract} rolled back",
                             markdown=f"# Upgrade {change_id}: ROLLED BACK\n\n{error}\n\nImplementation now: "
                             + ", ".join(f"{s} `{i}`" for s, i in restored.items())
                             + f"\n\nRollback verified: {'yes' if ok else '**NO — act now**'}\n\nIncident {key}.\n")
            raise RuntimeError(f"{error}; rolled back to {previous} (verified: {ok}); incident {key}") from None

        # ---- post-deployment verification + stabilisation + retrospective
        final = checkpoint(stage=environment, contract=contract, new_implementation=address,
                           expected_version=expected_version, before=snap["before"])
        if not final["ok"]:
            logger.error("post-deployment verification failed after the checkpoints passed: %s", final["failed"])
        window = start_stabilisation(environment=environment, contract=contract, change_id=change_id,
                                     implementation=address)
        retro = {"change_id": change_id, "contract": contract, "from": previous, "to": address, "stages": results,
                 "checklist": checklist, "rehearsal": rehearsal["checks"], "verification": final["checks"],
                 "stabilisation": window, "approvals": {"readiness": readiness, "go": go}}
        audit(actor=proposer, action="upgrade.completed", subject=f"{contract} -> {address}", details=retro)
        stage_rows = "\n".join(f"| {r['stage']} | `{r['execute_tx']}` | {'✅' if r['checkpoint']['ok'] else '❌'} |"
                               for r in results)
        publish_markdown(key="upgrade-retrospective", description=f"Upgrade of {contract} to {address} completed",
                         markdown=_checklist_md(contract, address, new_artifact, previous, checklist, [], "GO")
                         + f"\n## Stages\n\n| stage | execute tx | checkpoint |\n| --- | --- | --- |\n{stage_rows}\n\n"
                         f"## Post-deployment verification\n\n"
                         + "\n".join(f"- [{'x' if v else ' '}] {k}" for k, v in final["checks"].items())
                         + f"\n\n## Stabilisation\n\nHeightened monitoring until {window['until']} "
                         "(Prefect Variable `vv_stabilisation_until`).\n\n## Retrospective\n\n"
                         "- What went well: \n- Issues: \n- Lessons learned: \n- Process improvements: \n")
        return {"status": "completed" if final["ok"] else "verification-failed", "change_id": change_id,
                "new_implementation": address, "previous_implementation": previous, "stages": results,
                "verification": final, "stabilisation": window, "code_hash": code["code_hash"]}
