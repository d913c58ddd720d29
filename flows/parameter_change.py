"""Protocol Operations / Parameter Change Process: validate a proposal against its bounds and record it."""

from __future__ import annotations

from prefect import flow

from tasks.chain import read_contract_state
from tasks.reports import publish_markdown
from tasks.runtime import ops_config
from tasks.store import audit
from vvops.procedures.parameters import ProposalRejected, validate_parameter_change


@flow(name="parameter-change", log_prints=True)
def parameter_change(
    parameter: str,
    new_value: int,
    proposer: str,
    justification: str = "",
    risk: str = "medium",
    contract: str = "vault",
    environment: str = "devnet",
) -> dict:
    """Change Preparation: bounds and type validation, the current on-chain value, an audited proposal."""
    cfg = ops_config(environment)
    try:
        proposal = validate_parameter_change(contract=cfg.contract(contract), parameter=parameter, new_value=new_value)
    except ProposalRejected as exc:
        audit(actor=proposer, action="parameter_change.rejected_invalid", subject=f"{contract}.{parameter}",
              details={"new_value": str(new_value), "reason": str(exc)})
        raise
    spec = cfg.contract(contract).parameters[parameter]
    state = read_contract_state(environment=environment, contract=contract)
    current = state["values"].get(spec.getter)
    audit(actor=proposer, action="parameter_change.proposed", subject=f"{contract}.{parameter}",
          details={"current_value": str(current), "new_value": str(proposal.new_value), "risk": risk,
                   "justification": justification, "environment": environment})
    publish_markdown(
        key="parameter-change-proposal",
        description=f"{contract}.{parameter}: {current} → {proposal.new_value}",
        markdown=f"# Parameter change proposal\n\n| | |\n| --- | --- |\n| contract | `{contract}` ({state['address']}) |\n"
        f"| parameter | `{parameter}` |\n| current | {current} |\n| proposed | {proposal.new_value} |\n"
        f"| bounds | [{proposal.minimum}, {proposal.maximum}] {spec.unit} |\n| risk | {risk} |\n| proposer | {proposer} |\n\n"
        f"{justification}\n",
    )
    return {"status": "validated", "contract": contract, "parameter": parameter,
            "current_value": current, "new_value": proposal.new_value}
