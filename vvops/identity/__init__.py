"""Who did it, proven: EIP-712 statements (`statements`), proofs and their verifiers (`proofs`), the roles
for CLI actions (`actions`), local signing keys (`keys`). Prefect-free.

A decision, a proposal or a CLI action counts only with a proof of its person: an EIP-712 signature by the
address config/team.yaml lists for them, a Slack action on the signed endpoint (Slack user id -> roster), or —
only where the environment's `identity.proofs` allows it (the devnet) — a typed name. New kinds of proof (e.g.
Safe owner confirmations) register a verifier with `proofs.register_verifier`.
"""

from .proofs import (
    Eip712Proof,
    IdentityContext,
    Proof,
    Proven,
    Refused,
    SlackProof,
    TypedNameProof,
    prove,
    register_verifier,
)
from .statements import Statement, action_statement, decision_statement, incident_statement, proposal_statement

__all__ = ["Eip712Proof", "IdentityContext", "Proof", "Proven", "Refused", "SlackProof", "Statement",
           "TypedNameProof", "action_statement", "decision_statement", "incident_statement", "proposal_statement", "prove",
           "register_verifier"]
