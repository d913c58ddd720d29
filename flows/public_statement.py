"""Crisis Communication / External Communication: a public statement about an incident. Drafted from the
configured template with the incident's public facts only, edited by a person in the Prefect UI, approved
(support, plus security operations for security incidents) on its exact text, then published to the status page,
the webhooks and the partner and exchange contacts, with an X post drafted for a person to send."""

from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger, pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from tasks.approvals import request_approval
from tasks.communications import publish_statement, statement_facts
from tasks.preflight import preflight
from tasks.reports import publish_markdown
from tasks.runtime import ops_config
from tasks.store import audit
from vvops.communications.statements import draft, statement_digest


class StatementEdit(RunInput):
    """The statement as it will be published; edit it, then approvers approve exactly this text."""

    body: str = Field(min_length=10, max_length=4000, description="the public text")


def _approve(procedure: str, *, key: str, kind: str, text: str, requested_by: str, environment: str,
             poll_interval: float, proposer_proof: dict | None = None) -> tuple[bool, list[str], str]:
    outcome = request_approval(proposer_proof=proposer_proof,
        procedure=procedure, subject=f"{kind} statement for {key} (sha256 {statement_digest(text)[:12]})",
        risk="high", proposer=requested_by, environment=environment, poll_interval=poll_interval,
        description_md=f"**Public {kind.replace('_', ' ')} statement for {key}**\n\n> {text}\n\n"
                       f"sha256 `{statement_digest(text)}`: approving approves exactly this text.",
        details={"incident": key, "sha256": statement_digest(text)})
    return outcome.approved, list(outcome.approvers), outcome.reason


@flow(name="public-statement", log_prints=True)
def public_statement(incident_key: str, requested_by: str,
                     kind: Literal["initial", "update", "resolution", "post_incident"] = "update",
                     details: str = "", environment: str = "devnet", approval_poll_interval: float = 10,
                     proposal_signature: str = "", proposal_expires: int = 0) -> dict:
    """Draft, edit, approve, publish one public statement about an incident."""
    if (not_ready := preflight(environment)) is not None:
        return not_ready
    from tasks.approvals import prove_proposer

    # the drafter may not approve their own statement: who drafted it is proven first
    proposer_proof = prove_proposer(procedure="public_statement", flow_fn=public_statement, values=locals(),
                                    proposer=requested_by, environment=environment, signature=proposal_signature,
                                    expires=proposal_expires)
    comms = ops_config(environment).communications
    facts = statement_facts(environment, incident_key)
    text = draft(comms.templates[kind], facts, details=details,
                 next_update_minutes=comms.update_every_minutes[facts.severity])
    edited = pause_flow_run(wait_for_input=StatementEdit.with_initial_data(
        description=f"Edit the public statement for {incident_key}; it is approved and published as you leave it.",
        body=text), timeout=3600, poll_interval=approval_poll_interval)
    text = " ".join(edited.body.split())
    approvals = [("public_statement", "support")]
    if facts.incident_type == "security":
        approvals.append(("public_statement_security", "security"))
    approvers: list[str] = []
    for procedure, _ in approvals:
        ok, who, reason = _approve(procedure, key=incident_key, kind=kind, text=text, requested_by=requested_by,
                                   proposer_proof=proposer_proof,
                                   environment=environment, poll_interval=approval_poll_interval)
        if not ok:
            audit(actor=requested_by, action="statement.not_approved", subject=incident_key,
                  details={"kind": kind, "sha256": statement_digest(text), "policy": procedure, "reason": reason})
            get_run_logger().warning("statement for %s not published: %s (%s)", incident_key, reason, procedure)
            return {"incident": incident_key, "published": False, "reason": reason}
        approvers += who
    delivered = publish_statement(environment=environment, facts=facts, kind=kind, text=text,
                                  approved_by=approvers, requested_by=requested_by)
    if delivered.get("x_draft"):
        publish_markdown(key=f"x-draft-{incident_key.lower()}", markdown=f"> {delivered['x_draft']}",
                         description="X post draft: a person sends it (nothing is posted automatically)")
    return {"incident": incident_key, "published": True, "approved_by": approvers, "text": text, **delivered}
