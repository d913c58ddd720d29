"""The EIP-712 typed data people sign: a decision on an approval request, a proposal that starts a procedure,
a CLI action (silence, slot release, checklist sign-off, drill record), a step of an incident (acknowledge,
resolve).

The JSON from `Statement.typed_data()` is what any EIP-712 signer takes (`cast wallet sign --data "$(cat f)"`,
a hardware wallet through its app, `eth_account`); `digest()` is the 32-byte hash that is signed. The domain is
`{name: "VeritasVault Ops", version: "1", chainId}`: a signature for one chain never counts on another.
Strings are kept readable on purpose (a wallet shows them); what will be executed is bound by its hash.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eth_utils import keccak

DOMAIN_NAME = "VeritasVault Ops"
DOMAIN_VERSION = "1"
DOMAIN_FIELDS = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                 {"name": "chainId", "type": "uint256"}]

FIELDS: dict[str, list[tuple[str, str]]] = {
    "Decision": [("requestId", "uint256"), ("procedure", "string"), ("subject", "string"), ("decision", "string"),
                 ("environment", "string"), ("chainId", "uint256"), ("executionHash", "bytes32"),
                 ("expires", "uint256")],
    "Proposal": [("procedure", "string"), ("proposer", "string"), ("parameters", "string"),
                 ("environment", "string"), ("chainId", "uint256"), ("expires", "uint256")],
    "Action": [("action", "string"), ("person", "string"), ("subject", "string"), ("details", "string"),
               ("environment", "string"), ("chainId", "uint256"), ("expires", "uint256")],
    "IncidentStep": [("incident", "string"), ("step", "string"), ("title", "string"), ("environment", "string"),
                     ("chainId", "uint256"), ("expires", "uint256")],
}

#: the human steps of the incident response a person proves (flows/incident_response.py)
INCIDENT_STEPS = ("acknowledge", "resolve")


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, non-JSON values as strings: the same bytes for the same content everywhere."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def content_hash(value: Any) -> str:
    """0x-keccak256 of the canonical JSON of `value` (what will be executed)."""
    return "0x" + keccak(text=canonical_json(value)).hex()


def unix(value: datetime | int | float) -> int:
    return int(value.timestamp()) if isinstance(value, datetime) else int(value)


@dataclass(frozen=True)
class Statement:
    """What a person proves they decided/proposed/did. `claimed`: the person the statement names (proposer,
    actor), who must be the one proven; None for decisions (the signer is whoever the proof shows)."""

    primary_type: str
    message: dict[str, Any]
    chain_id: int
    claimed: str | None = None
    summary: str = field(default="", compare=False)

    @property
    def expires(self) -> int:
        return int(self.message["expires"])

    def typed_data(self) -> dict[str, Any]:
        """The full EIP-712 JSON (types incl. EIP712Domain, primaryType, domain, message)."""
        return {"types": {"EIP712Domain": DOMAIN_FIELDS,
                          self.primary_type: [{"name": n, "type": t} for n, t in FIELDS[self.primary_type]]},
                "primaryType": self.primary_type,
                "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": self.chain_id},
                "message": dict(self.message)}

    def signable(self):
        from eth_account.messages import encode_typed_data

        return encode_typed_data(full_message=self.typed_data())

    def digest(self) -> str:
        """0x-hex of keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(message)): what the signature covers."""
        m = self.signable()
        return "0x" + keccak(b"\x19" + m.version + m.header + m.body).hex()

    def json(self) -> str:
        return json.dumps(self.typed_data(), indent=2)


def decision_statement(*, request_id: int, procedure: str, subject: str, decision: str, environment: str,
                       chain_id: int, execution_hash: str, expires: datetime | int) -> Statement:
    return Statement("Decision", {"requestId": int(request_id), "procedure": procedure, "subject": subject,
                                  "decision": decision, "environment": environment, "chainId": int(chain_id),
                                  "executionHash": execution_hash, "expires": unix(expires)},
                     int(chain_id), None, f"{decision} request #{request_id} ({subject})")


def proposal_statement(*, procedure: str, proposer: str, parameters: dict[str, Any], environment: str,
                       chain_id: int, expires: datetime | int) -> Statement:
    return Statement("Proposal", {"procedure": procedure, "proposer": proposer,
                                  "parameters": canonical_json(parameters), "environment": environment,
                                  "chainId": int(chain_id), "expires": unix(expires)},
                     int(chain_id), proposer, f"{proposer} proposes {procedure}")


def action_statement(*, action: str, person: str, subject: str, details: dict[str, Any], environment: str,
                     chain_id: int, expires: datetime | int) -> Statement:
    return Statement("Action", {"action": action, "person": person, "subject": subject,
                                "details": canonical_json(details), "environment": environment,
                                "chainId": int(chain_id), "expires": unix(expires)},
                     int(chain_id), person, f"{person}: {action} {subject}")


def incident_statement(*, incident: str, step: str, title: str, environment: str, chain_id: int,
                       expires: datetime | int) -> Statement:
    """A person acknowledges or resolves incident `incident`: bound to the incident key, the step, the
    environment and chain, and an expiry (the signer is whoever the proof shows, like a Decision)."""
    if step not in INCIDENT_STEPS:
        raise ValueError(f"unknown incident step {step!r}: one of {', '.join(INCIDENT_STEPS)}")
    return Statement("IncidentStep", {"incident": incident, "step": step, "title": title[:200],
                                      "environment": environment, "chainId": int(chain_id),
                                      "expires": unix(expires)},
                     int(chain_id), None, f"{step} incident {incident}")


# flow parameters that say how to run, not what to do: not part of a signed proposal
NOT_PROPOSED = frozenset({"environment", "proposer", "requested_by", "acknowledged_by", "proposal_signature",
                          "proposal_expires", "approval_poll_interval", "approval_deadline_seconds",
                          "slot_wait_seconds"})


def proposal_parameters(flow_fn: Any, values: dict[str, Any]) -> dict[str, Any]:
    """What a proposer signs: the flow's parameters that say what to do (defaults filled in, run options out)."""
    fn = getattr(flow_fn, "fn", flow_fn)
    out = {}
    for name, param in inspect.signature(fn).parameters.items():
        if name in NOT_PROPOSED:
            continue
        out[name] = values.get(name, None if param.default is inspect.Parameter.empty else param.default)
    return out


def flow_proposal(*, flow_fn: Any, values: dict[str, Any], procedure: str, proposer: str, environment: str,
                  chain_id: int, expires: int) -> Statement:
    """The Proposal a person signs to start `flow_fn` with `values` (what `vvops propose` signs)."""
    return proposal_statement(procedure=procedure, proposer=proposer, parameters=proposal_parameters(flow_fn, values),
                              environment=environment, chain_id=chain_id, expires=expires)
