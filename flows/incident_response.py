"""Incident Management / Incident Response Workflow, from detection to the post-incident report.

Started by the watcher's automation (`vv.alert.p0|p1` → `alert` = the event payload, title, severity, type) or
by a person (title, severity, incident_type, kind). Steps:

1. Initial assessment: severity/type per config/oncall.yaml's matrix (vvops/procedures/incidents.classify), the
   response variant (contract_drain, security_breach, major_outage, general) and its playbook checklist.
2. Record + communication: the incident (INC-xxxx) and its timeline in the store; the Slack incident thread
   (thread key `incident-<INC>`; slack.yaml `incident_mode`) naming the commander = the on-call ops lead;
   paging by the escalation policy (the incident type's, else the severity's).
3. Evidence preservation: contract state, logs of the contract and the involved addresses, their transactions
   and the related alerts → one JSON bundle in the timeline with its sha256.
4. Containment: contract vulnerability/drain → the emergency-pause procedure (flows/emergency_pause.py: automatic
   for P0 when `approval_policy("emergency_pause").auto_approves`, otherwise one lead approves; the guardian
   pauses exactly once). Major outage → RPC failover: the `vv-chain-<env>` block switched to the backup URL order
   and the new primary verified. Security breach → its checklist.
5. Acknowledgement → MTTA. Proven (tasks/incident_steps.py): a signed form in the UI, or `acknowledged_by` /
   a typed id in the form only where config trusts typed names (devnet); refusals audited, the run keeps waiting.
6. Resolution (`resolve=True` with the fields as parameters, else a signed form in the UI), optional unpause
   (`unpause_on_resolution`: the two-lead unpause procedure, flows/unpause.py), recovery verification (health
   checks), the post-incident report (Incident.report + artifact) and MTTR.

Status-update reminders: a sweep (tasks/incidents.py) runs at every step here, and `incident-reminder-sweep`
(below) runs it on a schedule for incidents whose run is waiting for people. Drills (`is_drill=True`) are
labelled everywhere and never count in the incident metrics.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from prefect import flow
from prefect.logging import get_run_logger

from tasks.incident_steps import prove_step, step_statement, wait_for_step
from tasks.incidents import (activate_rpc_failover, add_event, commander_for, notify_quietly, page_responders,
                             preserve_evidence, sweep_status_reminders, thread_key, update_incident,
                             verify_recovery, write_incident_report)
from tasks.preflight import preflight
from tasks.reports import publish_markdown
from tasks.runtime import ops_config
from tasks.status_page import publish_status_page
from tasks.store import audit, open_incident
from vvops.procedures.incidents import CHECKLISTS, classify, needs_guardian_pause, parse_alert
from vvops.watcher.containment import containment_key_for

WAIT_DAYS = 7


def _typed_step_proven(*, key: str, step: str, title: str, environment: str, person: str) -> str | None:
    """A person named by a run parameter (`acknowledged_by`, `resolved_by`) is a typed name: it counts only where
    config trusts typed names (devnet); otherwise the refusal is audited and the run asks for a signed form."""
    statement = step_statement(key=key, step=step, title=title, environment=environment,
                               expires=int(_now().timestamp()) + 600)
    outcome = prove_step(key=key, step=step, statement=statement, environment=environment, person=person,
                         via="run-parameter")
    return outcome.person if outcome.ok else None


def _lines(text: str | list[str] | None) -> list[str]:
    if isinstance(text, list):
        return [t.strip() for t in text if t and t.strip()]
    return [t.strip("-• ").strip() for t in (text or "").splitlines() if t.strip()]


def _now() -> datetime:
    return datetime.now(timezone.utc)


@flow(name="incident-response", log_prints=True)
def incident_response(
    title: str = "",
    severity: str | None = None,
    incident_type: str | None = None,
    kind: str | None = None,
    opened_by: str = "automation",
    alert: dict[str, Any] | str | None = None,
    contract: str | None = None,
    involved_addresses: list[str] | None = None,
    is_drill: bool = False,
    environment: str = "devnet",
    acknowledged_by: str | None = None,
    resolve: bool = False,
    resolved_by: str | None = None,
    impact: str = "",
    root_cause: str = "",
    contributing_factors: list[str] | None = None,
    action_items: list[str] | None = None,
    unpause_on_resolution: bool = False,
    wait_for_people: bool = True,
    failed_rpc_urls: list[str] | None = None,
    poll_interval: float = 10,
) -> dict:
    """Run the playbook's incident response; see the module docstring. With `wait_for_people=False` and no
    acknowledgement/resolution given, the run stops after containment and leaves the incident open."""
    if (not_ready := preflight(environment)) is not None:
        return not_ready
    logger = get_run_logger()
    cfg = ops_config(environment)
    alert_data = parse_alert(alert)
    c = classify(title=title or None, severity=severity, incident_type=incident_type, kind=kind, alert=alert_data)
    level = cfg.severity(c.severity)
    contract = contract or c.contract or (cfg.contract_for("pause-target").name if needs_guardian_pause(c) else None)
    addresses = list(dict.fromkeys([*(involved_addresses or []), *c.involved_addresses]))
    commander = commander_for(environment)
    facts: dict[str, bool] = {}

    # 1-2. record, thread, pages
    key = open_incident(title=c.title, incident_type=c.incident_type, severity=c.severity, commander=commander,
                        opened_by=opened_by, is_drill=is_drill,
                        data={"alert": alert_data, "variant": c.variant, "reasons": list(c.reasons),
                              "contract": contract, "involved_addresses": addresses})
    publish_status_page(environment, return_state=True)  # the public page shows it within the run's first steps
    mentions = []
    if c.severity in cfg.slack.mention_oncall_for and commander:
        try:
            sid = cfg.person(commander).slack_user_id
            mentions = [f"<@{sid}>"] if sid else []
        except KeyError:
            pass
    facts["thread"] = notify_quietly(
        kind="incident_opened", environment=environment, thread_key=thread_key(key),
        idempotency_key=f"{key}:opened",
        payload={"key": key, "title": c.title, "severity": c.severity, "type": c.incident_type,
                 "commander": commander, "is_drill": is_drill, "mentions": mentions,
                 "summary": f"{level.name}: response {c.variant}; updates every {level.update_interval_minutes} min"
                            + (f"; runbook {runbook}" if (runbook := cfg.runbooks.for_alert(
                                alert_data.get("rule"), alert_data.get("labels"))) else "")})
    paging = page_responders(key=key, title=c.title, severity=c.severity, incident_type=c.incident_type,
                             environment=environment)
    facts["paged"] = bool(paging["paged"])

    # 3. evidence
    evidence = None
    try:
        evidence = preserve_evidence(key=key, environment=environment, contract=contract, addresses=addresses,
                                     alert=alert_data)
        facts["evidence"] = True
    except Exception as error:  # noqa: BLE001 - the response goes on; the gap is in the timeline
        logger.error("evidence preservation failed: %s", error)
        add_event(key=key, kind="evidence_failed", message=str(error)[:500])
        facts["evidence"] = False

    # 4. containment
    containment: dict[str, Any] = {"action": None}
    if needs_guardian_pause(c):
        from flows.emergency_pause import emergency_pause

        paused = emergency_pause(reason=f"{key}: {c.title}", requested_by=commander or opened_by,
                                 severity=c.severity, contract=contract, incident_key=key, environment=environment,
                                 approval_poll_interval=poll_interval,
                                 idempotency_key=containment_key_for(environment, contract, alert_data))
        containment = {"action": "guardian_pause", **{k: paused.get(k) for k in
                       ("status", "paused", "tx_hash", "approval", "approvers", "fast_path")}}
        facts["contained"] = bool(paused.get("paused"))
    elif c.variant == "major_outage":
        failover = activate_rpc_failover(environment=environment, key=key, failed_urls=failed_rpc_urls)
        containment = {"action": "rpc_failover", **failover}
        facts["contained"] = bool(failover.get("verified"))
    if containment["action"] and facts.get("contained"):
        update_incident(key=key, status="mitigated", mitigated_at=_now())
        add_event(key=key, kind="contained", message=f"containment: {containment['action']}", data=containment)
        notify_quietly(kind="incident_updated", environment=environment, thread_key=thread_key(key),
                       idempotency_key=f"{key}:contained",
                       payload={"key": key, "status": "mitigated", "message": f"containment: {containment['action']}"})
        publish_status_page(environment, return_state=True)
    sweep_status_reminders(environment=environment, key=key)

    result: dict[str, Any] = {"incident": key, "severity": c.severity, "type": c.incident_type,
                              "variant": c.variant, "commander": commander, "paged": paging["paged"],
                              "containment": containment, "evidence": evidence, "is_drill": is_drill}

    # 5. acknowledgement (proven: a signature, or a typed roster name where config trusts it)
    if acknowledged_by is not None:
        acknowledged_by = _typed_step_proven(key=key, step="acknowledge", title=c.title, environment=environment,
                                             person=acknowledged_by)
    if acknowledged_by is None and not wait_for_people:
        result["status"] = "open"
        return result
    ack_note = ""
    if acknowledged_by is None:
        proven, ack = wait_for_step(
            key=key, step="acknowledge", title=c.title, environment=environment, poll_interval=poll_interval,
            timeout_s=WAIT_DAYS * 86400, heading=f"## Acknowledge {key} ({c.severity}): {c.title}",
            context_md=f"Commander: {commander or 'nobody on call'}. Containment: {containment['action'] or 'none'}.")
        acknowledged_by, ack_note = proven.person, ack.note
    update_incident(key=key, acknowledged_at=_now())
    add_event(key=key, kind="acknowledged", actor=acknowledged_by, message=ack_note or f"acknowledged by {acknowledged_by}")
    sweep_status_reminders(environment=environment, key=key)

    # 6. resolution (proven like the acknowledgement), recovery, report
    if resolve:
        resolved_by = _typed_step_proven(key=key, step="resolve", title=c.title, environment=environment,
                                         person=resolved_by or acknowledged_by)
        resolve = resolved_by is not None
    if not resolve:
        if not wait_for_people:
            result["status"] = "acknowledged"
            return result
        proven, form = wait_for_step(
            key=key, step="resolve", title=c.title, environment=environment, poll_interval=poll_interval,
            timeout_s=WAIT_DAYS * 86400, heading=f"## Resolve {key}: {c.title}",
            context_md="Fill in the post-incident fields and sign; the run verifies recovery and writes the report.")
        resolved_by, impact, root_cause = proven.person, form.impact, form.root_cause
        contributing_factors, action_items = _lines(form.contributing_factors), _lines(form.action_items)
    add_event(key=key, kind="resolution", actor=resolved_by, message=root_cause or "resolved",
              data={"impact": impact, "root_cause": root_cause})

    unpaused = None
    if unpause_on_resolution and containment.get("action") == "guardian_pause" and facts.get("contained"):
        from flows.unpause import unpause
        from tasks.approvals import ProposerNotProven

        try:
            unpaused = unpause(reason=f"{key} resolved ({c.title})", requested_by=resolved_by,
                               contract=contract, incident_key=key, environment=environment,
                               approval_poll_interval=poll_interval)
        except ProposerNotProven as error:  # a typed resolver proves nothing here: a lead proposes it signed
            unpaused = {"status": "not_started", "paused": True, "reason": str(error)}
    still_paused = containment.get("action") == "guardian_pause" and (unpaused is None or unpaused.get("paused"))
    recovery = verify_recovery(environment=environment, contract=contract, paused_by_containment=bool(still_paused)) \
        if contract else {"ok": True, "problems": [], "pending": []}
    add_event(key=key, kind="recovery_verified" if recovery["ok"] else "recovery_failed",
              message="health checks pass" if recovery["ok"] else "; ".join(recovery["problems"])[:500],
              data=recovery)
    items = list(action_items or []) + list(recovery.get("pending", [])) + \
        [f"recovery: {p}" for p in recovery.get("problems", [])]
    resolved_at = _now()
    update_incident(key=key, status="resolved" if recovery["ok"] else "mitigated",
                    resolved_at=resolved_at if recovery["ok"] else None)
    add_event(key=key, kind="resolved" if recovery["ok"] else "status_update", actor=resolved_by,
              message="resolved" if recovery["ok"] else "resolution recorded, recovery not verified")
    publish_status_page(environment, return_state=True)
    facts["recovered"] = recovery["ok"]
    steps = CHECKLISTS[c.variant]
    # ticked only on evidence from this run (never by default); an unticked item is for a person to confirm
    unpause_held = facts.get("contained", False) and (unpaused is None or unpaused.get("status") != "not_started"
                                                      or bool(unpaused.get("paused")))
    done_by_variant = {
        "contract_drain": [facts.get("contained", False), facts.get("evidence", False), bool(evidence),
                           unpause_held, facts.get("paged", False)],
        "security_breach": [facts.get("contained", False),
                            facts.get("evidence", False), bool(evidence), facts.get("paged", False), bool(items)],
        "major_outage": [recovery["ok"], facts.get("contained", False), facts.get("contained", False),
                         facts.get("paged", False), bool(items)],
        "general": [bool(c.severity and c.incident_type), facts.get("paged", False), facts.get("evidence", False)],
    }
    checklist = [{"item": s, "done": bool(d), "by": "evidence" if d else "to be confirmed by a person"}
                 for s, d in zip(steps, done_by_variant[c.variant], strict=True)]
    written = write_incident_report(key=key, environment=environment, variant=c.variant, impact=impact,
                                    root_cause=root_cause, contributing_factors=list(contributing_factors or []),
                                    action_items=items, checklist=checklist, resolved_by=resolved_by)
    report = written["report"]
    publish_markdown(key="post-incident-report", description=f"{key} post-incident report", markdown=written["markdown"])
    audit(actor=resolved_by, action="incident.report_submitted", subject=key,
          details={"mtta_minutes": report["mtta_minutes"], "mttr_minutes": report["mttr_minutes"],
                   "is_drill": is_drill, "recovered": recovery["ok"]})
    notify_quietly(kind="incident_resolved", environment=environment, thread_key=thread_key(key),
                   idempotency_key=f"{key}:resolved",
                   payload={"key": key, "title": c.title, "duration_minutes": report["mttr_minutes"],
                            "root_cause": root_cause or None, "resolved_by": resolved_by})
    return {**result, "status": "resolved" if recovery["ok"] else "mitigated", "recovery": recovery,
            "unpause": unpaused, "report": {k: report[k] for k in ("mtta_minutes", "mttr_minutes", "submitted_at",
                                                                   "action_items", "action_item_records",
                                                                   "report_due_by")}}


@flow(name="incident-reminder-sweep", log_prints=True)
def incident_reminder_sweep(environment: str = "devnet", now: datetime | None = None) -> list[dict[str, Any]]:
    """Status-update reminders for every open incident (schedule every minute next to the watcher)."""
    return sweep_status_reminders(environment=environment, now=now)
