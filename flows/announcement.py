"""External Communication outside incidents: an announcement to partners, exchanges, integrators and the community
(planned maintenance, an upgrade, an API change or deprecation, a roadmap or specification, integration support,
educational content, a community update). A person writes it (the run's parameters in the Prefect UI), support
approves its exact text (config/procedures.yaml `public_statement`; the writer may not approve it), then it goes to
every contact list of the chosen kinds that subscribes to the topic (config/communications.yaml `topics`), one
message per address, and to the webhooks; who was told when is recorded per recipient. Nothing goes out unapproved."""

from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger

from tasks.approvals import prove_proposer, request_approval
from tasks.communications import publish_announcement
from tasks.preflight import preflight
from tasks.store import audit
from vvops.communications.statements import statement_digest

Topic = Literal["maintenance", "upgrade", "api_change", "roadmap", "specification", "integration", "education",
                "community_update"]
Audience = Literal["partner", "exchange", "integrator", "regulator", "auditor"]


@flow(name="announcement", log_prints=True)
def announcement(topic: Topic, title: str, body: str, requested_by: str,
                 audiences: list[Audience] = ["partner", "exchange", "integrator"],  # noqa: B006 (Prefect form default)
                 webhooks: bool = True, environment: str = "devnet", approval_poll_interval: float = 10,
                 proposal_signature: str = "", proposal_expires: int = 0) -> dict:
    """Approve, then send one announcement; see the module docstring."""
    if (not_ready := preflight(environment)) is not None:
        return not_ready
    proof = prove_proposer(procedure="public_statement", flow_fn=announcement, values=locals(), proposer=requested_by,
                           environment=environment, signature=proposal_signature, expires=proposal_expires)
    text = " ".join(body.split())
    digest = statement_digest(text)
    outcome = request_approval(
        procedure="public_statement", subject=f"{topic} announcement: {title[:80]} (sha256 {digest[:12]})",
        risk="medium", proposer=requested_by, environment=environment, poll_interval=approval_poll_interval,
        proposer_proof=proof, details={"topic": topic, "sha256": digest, "audiences": list(audiences)},
        description_md=f"**{title}** to {', '.join(audiences)} ({topic})\n\n> {text}\n\n"
                       f"sha256 `{digest}`: approving approves exactly this text.")
    if not outcome.approved:
        audit(actor=requested_by, action="announcement.not_approved", subject=f"announcement:{topic}",
              details={"title": title, "sha256": digest, "reason": outcome.reason})
        get_run_logger().warning("announcement %r not sent: %s", title, outcome.reason)
        return {"topic": topic, "published": False, "reason": outcome.reason}
    delivered = publish_announcement(environment=environment, topic=topic, title=title, text=text,
                                     audiences=list(audiences), webhooks=webhooks,
                                     approved_by=list(outcome.approvers), requested_by=requested_by)
    return {"topic": topic, "published": True, "approved_by": list(outcome.approvers), "text": text, **delivered}
