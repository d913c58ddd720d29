"""The human steps of the incident response (acknowledge, resolve), proven like approval decisions.

A person acknowledges or resolves an incident by signing its IncidentStep statement (EIP-712: the incident key,
the step, the environment and chain id, an expiry; vvops/identity/statements.py) with the address
config/team.yaml lists for them, or — only where the environment's `identity.proofs` lists `typed_name`
(the devnet) — by typing their roster id, which the form says plainly. The proof is checked by the same
verifiers as approvals (`vvops.identity.prove`). Nothing in the run input is believed: a refused answer
(bad signature, unknown signer, someone else's statement, a typed name where names are not trusted, a name off
the roster) is audited (`incident.<step>.refused`, with its reason) and the run pauses again with the refusal
shown: it keeps waiting. An accepted one is audited (`incident.<step>.proven`, with the proof).
"""

from __future__ import annotations

import math
import time
from typing import Any

from prefect import get_run_logger, pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from tasks.approvals import form_with_description
from tasks.incidents import add_event
from tasks.runtime import ops_config
from tasks.store import audit
from vvops.identity import Eip712Proof, IdentityContext, Proven, Refused, TypedNameProof, incident_statement, prove
from vvops.identity.proofs import NO_PROOF
from vvops.identity.statements import Statement

SIGNATURE_HELP = ("your EIP-712 signature (0x...) of the IncidentStep shown above, by the address config/team.yaml "
                  "lists for you (cast wallet sign --data, your wallet)")
TYPED_HELP = ("devnet only: your person id from config/team.yaml, trusted as typed because this environment's "
              "config allows it (identity.proofs: typed_name); every other environment needs the signature")


class AcknowledgeInput(RunInput):
    """Acknowledge the incident: you take it (every environment: signed)."""

    signature: str = Field(min_length=1, max_length=200, description=SIGNATURE_HELP)
    note: str = Field(default="", max_length=2000, description="first assessment (optional)")


class DevnetAcknowledgeInput(AcknowledgeInput):
    """Acknowledge where config allows typed names (the devnet): a signature, or your person id."""

    signature: str = Field(default="", max_length=200, description=SIGNATURE_HELP + "; or leave empty and type "
                                                                                    "your id below")
    person: str = Field(default="", max_length=64, description=TYPED_HELP)


class ResolutionInput(RunInput):
    """Close the incident: what happened, why, what we do about it, and your signature."""

    impact: str = Field(min_length=1, max_length=4000, description="who/what was affected, for how long, funds at risk")
    root_cause: str = Field(min_length=1, max_length=4000, description="the root cause")
    contributing_factors: str = Field(default="", max_length=4000, description="one per line (optional)")
    action_items: str = Field(default="", max_length=4000, description="one per line (optional)")
    signature: str = Field(min_length=1, max_length=200, description=SIGNATURE_HELP)


class DevnetResolutionInput(ResolutionInput):
    """Resolve where config allows typed names (the devnet): a signature, or your person id."""

    signature: str = Field(default="", max_length=200, description=SIGNATURE_HELP + "; or leave empty and type "
                                                                                    "your id below")
    person: str = Field(default="", max_length=64, description=TYPED_HELP)


FORMS = {("acknowledge", False): AcknowledgeInput, ("acknowledge", True): DevnetAcknowledgeInput,
         ("resolve", False): ResolutionInput, ("resolve", True): DevnetResolutionInput}


def step_statement(*, key: str, step: str, title: str, environment: str, expires: int) -> Statement:
    ctx = IdentityContext.from_config(ops_config(environment))
    return incident_statement(incident=key, step=step, title=title, environment=environment, chain_id=ctx.chain_id,
                              expires=expires)


def describe_step(*, statement: Statement, heading: str, context_md: str, refusal: str | None,
                  typed_names: bool) -> str:
    """The markdown above the form: the incident, what is signed, and (devnet) that a typed name is trusted."""
    lines = [heading, "", context_md]
    if refusal:
        lines += ["", f"> **Last answer refused:** {refusal}"]
    lines += ["", "### Sign it", "", "Sign this EIP-712 typed data with the key of the address config/team.yaml "
              "lists for you and paste the signature (Foundry: `cast wallet sign --data \"$(cat step.json)\"`).", "",
              f"digest `{statement.digest()}`", "", "```json", statement.json(), "```"]
    if typed_names:
        lines += ["", "> This environment's config trusts typed names (`identity.proofs: typed_name`, devnet only): "
                      "you may leave the signature empty and type your person id instead."]
    return "\n".join(lines)


def prove_step(*, key: str, step: str, statement: Statement, environment: str, signature: str = "",
               person: str = "", via: str) -> Proven | Refused:
    """Prove who takes `step` of incident `key`; audit both outcomes. A typed `person` with a signature is a claim
    the signer must match; without one it counts only where typed names are trusted."""
    ctx = IdentityContext.from_config(ops_config(environment))
    signature, person = (signature or "").strip(), (person or "").strip()
    if signature:
        outcome = prove(Eip712Proof(signature, claimed=person or None), statement, ctx)
    elif person:
        outcome = prove(TypedNameProof(person), statement, ctx)
    else:
        outcome = Refused(NO_PROOF, f"no proof of who you are: {environment} accepts {', '.join(ctx.proofs)}")
    details = {"step": step, "via": via, "digest": statement.digest(), "proof": outcome.kind, **outcome.evidence}
    if isinstance(outcome, Refused):
        audit(actor=(outcome.person or person or "(unknown)")[:200], action=f"incident.{step}.refused", subject=key,
              details={**details, "claimed": person[:64] or None, "refusal_reason": outcome.reason,
                       "message": outcome.message})
        add_event(key=key, kind=f"{step}_refused", actor="incident-response",
                  message=f"{outcome.reason}: {outcome.message}"[:500])
    else:
        audit(actor=outcome.person, action=f"incident.{step}.proven", subject=key, details=details)
    return outcome


def wait_for_step(*, key: str, step: str, title: str, environment: str, heading: str, context_md: str,
                  poll_interval: float, timeout_s: int) -> tuple[Proven, Any]:
    """Pause with the step's form until a proven person answers; returns (proof, the form's answer)."""
    logger = get_run_logger()
    ctx = IdentityContext.from_config(ops_config(environment))
    deadline = int(time.time()) + timeout_s
    statement = step_statement(key=key, step=step, title=title, environment=environment, expires=deadline)
    add_event(key=key, kind=f"awaiting_{step}", message=f"waiting for a proven {step}",
              data={"digest": statement.digest(), "expires": deadline, "typed_data": statement.typed_data()})
    refusal = None
    while True:
        form = form_with_description(FORMS[(step, ctx.typed_names)], describe_step(
            statement=statement, heading=heading, context_md=context_md, refusal=refusal, typed_names=ctx.typed_names))
        answer = pause_flow_run(wait_for_input=form, poll_interval=poll_interval,
                                timeout=max(1, math.ceil(deadline - time.time())))
        outcome = prove_step(key=key, step=step, statement=statement, environment=environment,
                             signature=answer.signature, person=getattr(answer, "person", ""), via="prefect-run-input")
        if isinstance(outcome, Proven):
            return outcome, answer
        refusal = f"{outcome.reason}: {outcome.message}"
        logger.warning("%s of %s refused (%s); still waiting", step, key, refusal)
