"""Protocol Upgrades / Pre-deployment Checklist: the new implementation is the approved code and layout-safe."""

from __future__ import annotations

from prefect import flow

from tasks.chain import read_code, read_contract_state
from tasks.reports import publish_markdown
from tasks.runtime import ops_config
from tasks.store import audit
from vvops.config import devnet_address
from vvops.devnet.artifacts import deployed_bytecode_of, load_artifact, storage_layout_of
from vvops.procedures.upgrades import masked_code_hash, storage_layout_problems


@flow(name="upgrade-rollout", log_prints=True)
def upgrade_rollout(
    proposer: str,
    new_implementation: str = "from-devnet:vault_v2_implementation",
    new_artifact: str = "VaultV2",
    contract: str = "vault",
    environment: str = "devnet",
) -> dict:
    """Run the pre-deployment checklist; an unapproved bytecode or an incompatible layout stops the rollout."""
    cfg = ops_config(environment)
    address = devnet_address(new_implementation) if new_implementation.startswith("from-devnet:") else new_implementation
    immutables = load_artifact(new_artifact).get("immutableReferences", [])
    expected_hash = masked_code_hash(deployed_bytecode_of(new_artifact), immutables)
    actual_hash = masked_code_hash(read_code(environment=environment, address=address), immutables)
    layout_problems = storage_layout_problems(storage_layout_of(cfg.contract(contract).artifact), storage_layout_of(new_artifact))
    current = read_contract_state(environment=environment, contract=contract)
    checklist = {
        "bytecode matches the approved artifact": actual_hash == expected_hash,
        "storage layout compatible": not layout_problems,
    }
    go = all(checklist.values())
    audit(actor=proposer, action="upgrade.checklist", subject=f"{contract} -> {address}",
          details={"checklist": checklist, "layout_problems": layout_problems, "code_hash": actual_hash,
                   "expected_code_hash": expected_hash, "current_implementation": current["implementation"]})
    lines = "\n".join(f"- [{'x' if ok else ' '}] {item}" for item, ok in checklist.items())
    problems = "\n".join(f"  - {p}" for p in layout_problems)
    publish_markdown(key="upgrade-checklist", description=f"Upgrade of {contract} to {address}",
                     markdown=f"# Pre-deployment checklist: {contract}\n\ncurrent implementation `{current['implementation']}` "
                     f"→ new `{address}` ({new_artifact})\n\n{lines}\n{problems}\n\n**{'GO' if go else 'NO-GO'}**\n")
    if not go:
        raise RuntimeError(f"upgrade stopped before any transaction: {', '.join(k for k, ok in checklist.items() if not ok)}")
    return {"status": "checklist-passed", "new_implementation": address, "code_hash": actual_hash,
            "current_implementation": current["implementation"]}
