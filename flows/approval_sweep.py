"""Approval escalation sweep: nudges the escalation target of approvals nobody answered in time.

A paused run cannot escalate by itself (a pause that times out ends the run Failed in Prefect 3.9), so this
flow runs on a schedule beside the paused runs:
- pending requests past `escalate_after_minutes` are escalated once: the escalation policy's first step
  targets are notified (outbox idempotency key `approval-escalation-<id>`, in the request's thread) and the
  request is marked `escalated` (a conditional update: a second sweep, or a concurrent one, does nothing);
- open requests past their total deadline (their run died or timed out) are failed closed:
  rejected, reason "expired".
Give `now` to replay a sweep at a chosen time (tests); by default it is the current time.
"""

from __future__ import annotations

from datetime import datetime, timezone

from prefect import flow, get_run_logger

from tasks.approvals import notify_outcome, notify_safely
from tasks.runtime import ops_config, store_engine
from vvops.approvals import service
from vvops.config import who_is_on_call


RISK_SEVERITY = {"critical": "P1", "high": "P2", "medium": "P3", "low": "P3"}


def _ui_url() -> str:
    from prefect.settings import PREFECT_UI_URL

    return (PREFECT_UI_URL.value() or "http://127.0.0.1:4200").rstrip("/")


def escalation_targets(cfg, policy_name: str | None, at: datetime) -> list[str]:
    """Person ids named by the first step of an escalation policy (rotations resolved at `at`)."""
    if not policy_name:
        return [p.id for p in cfg.people_with_role("ops_lead")]
    out: list[str] = []
    for target in cfg.escalation_policy(policy_name).steps[0].notify:
        kind, _, rest = target.partition(":")
        if kind == "person":
            ids = [rest]
        elif kind == "role":
            ids = [p.id for p in cfg.people_with_role(rest)]
        else:  # rotation:<name>[:secondary]
            name, _, slot = rest.partition(":")
            on_call = who_is_on_call(cfg.rotation(name), at)
            ids = [on_call.secondary if slot == "secondary" else on_call.primary]
        out += [i for i in ids if i and i not in out]
    return out


@flow(name="approval-escalation-sweep")
def approval_escalation_sweep(now: datetime | None = None) -> dict:
    logger = get_run_logger()
    at = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    engine = store_engine()
    escalated: list[int] = []
    for due in service.due_for_escalation(engine, now=at):
        environment = due.environment or "devnet"
        cfg = ops_config(environment)
        targets = escalation_targets(cfg, due.escalation_policy, at)
        people = {p.id: p for p in cfg.people}
        waited = int((at - due.requested_at).total_seconds() // 60)
        run_link = (f"{_ui_url()}/runs/flow-run/{due.flow_run_id}" if due.flow_run_id else None)
        # queue first (idempotent keys), then mark: a crash in between re-queues the same keys next time
        for target in targets:
            person = people.get(target)
            notify_safely(kind="escalation_page", channel_purpose=due.channel,
                          payload={"subject": f"approval #{due.id} {due.procedure}: {due.subject}",
                                   "severity": RISK_SEVERITY.get(due.risk, "P3"),
                                   "target_name": person.name if person else target,
                                   "target_slack_id": person.slack_user_id if person else None,
                                   "reason": f"no decision after {waited} minutes "
                                             f"({len(due.approvers)}/{due.quorum} approvals)",
                                   "ack_hint": "approve or reject with the buttons above or in the Prefect UI",
                                   "run_url": run_link},
                          idempotency_key=f"approval-escalation-{due.id}-{target}",
                          thread_key=f"approval-{due.id}", environment=environment)
        if service.mark_escalated(engine, due.id, now=at, targets=targets):
            escalated.append(due.id)
            logger.warning("approval #%s (%s) escalated to %s", due.id, due.subject, ", ".join(targets))
    expired = [rid for rid in service.overdue_open(engine, now=at)
               if service.expire_request(engine, rid, now=at, source="flow")]
    for rid in expired:
        logger.error("approval #%s expired: rejected (fail closed)", rid)
        state = service.get_state(engine, rid)
        notify_outcome(state, state.details.get("environment") or "devnet")
    return {"escalated": escalated, "expired": expired}
