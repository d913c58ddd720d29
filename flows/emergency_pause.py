"""Emergency Response Plans / Contract Vulnerability Response: assess the pause state and record the request."""

from __future__ import annotations

from prefect import flow

from tasks.chain import read_contract_state
from tasks.store import audit


@flow(name="emergency-pause", log_prints=True)
def emergency_pause(reason: str, requested_by: str, contract: str = "vault", environment: str = "devnet") -> dict:
    """Circuit breaker: read whether the vault is paused and who its guardian is, and audit the request."""
    state = read_contract_state(environment=environment, contract=contract)
    paused = bool(state["values"].get("paused"))
    audit(actor=requested_by, action="emergency_pause.requested", subject=contract,
          details={"reason": reason, "already_paused": paused, "guardian": state["values"].get("guardian")})
    return {"contract": contract, "already_paused": paused, "guardian": state["values"].get("guardian")}
