"""Proofs of who made a decision, a proposal or a CLI action, and the verifiers that check them.

`prove(proof, statement, ctx, now)` returns `Proven(person, kind, evidence)` or `Refused(reason, message)`;
callers store and audit both. A kind of proof is accepted only when the environment's config lists it
(`environments.<env>.identity.proofs`); each kind has a verifier in `VERIFIERS`, and a new kind (Safe owner
confirmations) registers its own with `register_verifier(kind, fn)`.

Kinds:
- `eip712`: a signature over the statement's typed data; the signer is recovered and must be the address the
  roster lists for an active person (and the person the statement names, if it names one). The roster's
  public devnet keys count only where `identity.devnet_keys` is true.
- `slack`: built only by the Slack endpoint after it verified the request's signing-secret signature; the
  Slack user id maps to the roster.
- `typed_name`: a name typed in a form or on the command line; proves nothing, so only the devnet allows it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, Union

from .keys import devnet_address
from .statements import Statement

# refusal reasons (stable strings, kept in the audit log)
NOT_ACCEPTED = "proof_not_accepted"
NO_PROOF = "no_proof"
BAD_SIGNATURE = "bad_signature"
EXPIRED = "signature_expired"
UNKNOWN_SIGNER = "unknown_signer"
WRONG_SIGNER = "wrong_signer"
DEVNET_KEY = "devnet_key_not_trusted"
UNKNOWN_PERSON = "unknown_person"
INACTIVE = "inactive_person"


@dataclass(frozen=True)
class Eip712Proof:
    signature: str
    claimed: str | None = None
    kind: str = "eip712"


@dataclass(frozen=True)
class SlackProof:
    slack_user_id: str
    evidence: dict[str, Any] = field(default_factory=dict, compare=False)
    kind: str = "slack"


@dataclass(frozen=True)
class SafeOwnerProof:
    """A Safe owner's confirmation (signature checked against the Safe's current owners by vvops.safe); proves
    the person whose team.yaml `safe_owner` for this environment is that owner."""

    person: str
    owner: str
    safe_tx_hash: str
    kind: str = "safe"


@dataclass(frozen=True)
class TypedNameProof:
    person: str
    kind: str = "typed_name"


Proof = Union[Eip712Proof, SlackProof, TypedNameProof, Any]


@dataclass(frozen=True)
class Proven:
    person: str
    kind: str
    evidence: dict[str, Any] = field(default_factory=dict)
    ok: bool = True


@dataclass(frozen=True)
class Refused:
    reason: str
    message: str
    kind: str = ""
    person: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    ok: bool = False


class RulesLike(Protocol):
    proofs: tuple[str, ...]
    devnet_keys: bool


@dataclass(frozen=True)
class IdentityContext:
    """Who is on the roster and what the environment trusts."""

    people: tuple[Any, ...]
    proofs: tuple[str, ...]
    devnet_keys: bool
    environment: str
    chain_id: int

    @classmethod
    def from_config(cls, cfg: Any) -> IdentityContext:
        rules = cfg.env.identity
        return cls(tuple(cfg.people), tuple(rules.proofs), bool(rules.devnet_keys), cfg.environment,
                   int(cfg.env.chain_id))

    def person(self, person_id: str | None):
        return next((p for p in self.people if p.id == person_id), None)

    def by_address(self, address: str):
        low = address.lower()
        return next((p for p in self.people if (getattr(p, "address", None) or "").lower() == low), None)

    @property
    def typed_names(self) -> bool:
        return "typed_name" in self.proofs


Verifier = Callable[[Any, Statement, IdentityContext, float], Union[Proven, Refused]]
VERIFIERS: dict[str, Verifier] = {}


def register_verifier(kind: str, verifier: Verifier) -> None:
    """Add a kind of proof (its config name must also be listed in `identity.proofs` to be accepted)."""
    VERIFIERS[kind] = verifier


def prove(proof: Any, statement: Statement, ctx: IdentityContext, now: float | None = None) -> Proven | Refused:
    at = time.time() if now is None else now
    kind = getattr(proof, "kind", None)
    if proof is None or kind is None:
        return Refused(NO_PROOF, f"no proof of who you are: {ctx.environment} accepts {', '.join(ctx.proofs)}")
    if kind not in ctx.proofs or kind not in VERIFIERS:
        return Refused(NOT_ACCEPTED, f"{ctx.environment} does not accept {kind} as proof "
                                     f"(accepted: {', '.join(ctx.proofs)})", kind)
    return VERIFIERS[kind](proof, statement, ctx, at)


def _claims(person: Any, statement: Statement, proof_claim: str | None, kind: str,
            evidence: dict[str, Any]) -> Proven | Refused:
    for claimed in (statement.claimed, proof_claim):
        if claimed and claimed != person.id:
            return Refused(WRONG_SIGNER, f"proven to be {person.id}, not {claimed}", kind, person.id, evidence)
    if not getattr(person, "active", True):
        return Refused(INACTIVE, f"{person.id} is not an active member of the team", kind, person.id, evidence)
    return Proven(person.id, kind, evidence)


def verify_eip712(proof: Eip712Proof, statement: Statement, ctx: IdentityContext, now: float) -> Proven | Refused:
    from eth_account import Account

    evidence = {"digest": statement.digest(), "signature": (proof.signature or "")[:140]}
    if statement.expires <= now:
        return Refused(EXPIRED, f"the signed statement expired at {statement.expires} (now {int(now)})",
                       "eip712", proof.claimed, evidence)
    try:
        sig = bytes.fromhex((proof.signature or "").strip().removeprefix("0x"))
        if len(sig) != 65:
            raise ValueError("length")
        signer = Account.recover_message(statement.signable(), signature=sig)
    except Exception:  # noqa: BLE001 - any malformed signature is the same refusal
        return Refused(BAD_SIGNATURE, "not a valid 65-byte EIP-712 signature of this statement", "eip712",
                       proof.claimed, evidence)
    evidence["signer"] = signer
    person = ctx.by_address(signer)
    if person is None:
        return Refused(UNKNOWN_SIGNER, f"{signer} is not an address on the roster (a signature of other "
                                       "data, or by someone else, recovers to an unknown address)",
                       "eip712", proof.claimed, evidence)
    if not ctx.devnet_keys and signer.lower() == devnet_address(person.id).lower():
        return Refused(DEVNET_KEY, f"{signer} is {person.id}'s public devnet key: {ctx.environment} does not "
                                   "trust devnet keys (list the person's own address in team.yaml)",
                       "eip712", person.id, evidence)
    return _claims(person, statement, proof.claimed, "eip712", evidence)


def verify_slack(proof: SlackProof, statement: Statement, ctx: IdentityContext, now: float) -> Proven | Refused:
    evidence = {"slack_user_id": proof.slack_user_id, **proof.evidence}
    person = next((p for p in ctx.people if p.slack_user_id == proof.slack_user_id), None)
    if person is None:
        return Refused(UNKNOWN_PERSON, f"Slack user {proof.slack_user_id or '?'} is not on the roster", "slack",
                       None, evidence)
    return _claims(person, statement, None, "slack", evidence)


def verify_typed_name(proof: TypedNameProof, statement: Statement, ctx: IdentityContext,
                      now: float) -> Proven | Refused:
    evidence = {"typed_name": proof.person, "trusted_because": f"{ctx.environment} allows typed names"}
    person = ctx.person(proof.person)
    if person is None:
        return Refused(UNKNOWN_PERSON, f"{proof.person!r} is not on the roster", "typed_name", proof.person,
                       evidence)
    return _claims(person, statement, None, "typed_name", evidence)


def verify_safe_owner(proof: SafeOwnerProof, statement: Statement, ctx: IdentityContext,
                      now: float) -> Proven | Refused:
    evidence = {"owner": proof.owner, "safe_tx_hash": proof.safe_tx_hash}
    person = ctx.person(proof.person)
    if person is None:
        return Refused(UNKNOWN_PERSON, f"{proof.person!r} is not on the roster", "safe", proof.person, evidence)
    listed = str((getattr(person, "safe_owner", None) or {}).get(ctx.environment) or "")
    if listed.lower() != proof.owner.lower():
        return Refused(WRONG_SIGNER, f"Safe owner {proof.owner} is not {person.id}'s safe_owner on {ctx.environment}",
                       "safe", person.id, evidence)
    return _claims(person, statement, None, "safe", evidence)


register_verifier("eip712", verify_eip712)
register_verifier("safe", verify_safe_owner)
register_verifier("slack", verify_slack)
register_verifier("typed_name", verify_typed_name)


def people_ids(people: Iterable[Any]) -> set[str]:
    return {p.id for p in people}
