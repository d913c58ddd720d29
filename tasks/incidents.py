"""Incident Management as Prefect tasks: the timeline, paging, status-update reminders, evidence, investigation
helpers, RPC failover, recovery checks and the post-incident report.

Status-update reminders (playbook: updates by severity, e.g. P0 every 15 minutes) are a SWEEP, not timers:
`sweep_status_reminders(environment, now)` looks at every open incident, finds the last status-bearing timeline
event (opened / acknowledged / contained / status_update / resolved) and, when `update_interval_minutes` of the
severity has passed, writes ONE `reminder` timeline event per due instant (its `data.due_at` is the key) and posts
it to the incident thread (idempotency key `<INC>:reminder:<due_at>`). The incident-response flow runs the sweep
at each of its steps; the `incident-reminder-sweep` flow (flows/incident_response.py) runs it on a schedule
(every minute is right) for incidents whose flow has finished or is paused waiting for people.

Slack: every message goes through tasks/notify.py's outbox; a missing or failing Slack never fails a procedure.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from prefect import task
from prefect.cache_policies import NONE as NO_CACHE
from prefect.logging import get_run_logger
from sqlalchemy import select

from tasks.runtime import forget_blocks, ops_config, rpc_client, store_engine
from vvops.procedures.incidents import (IncidentReport, canonical_json, due_reminder, evidence_sha256,
                                        failover_order)
from vvops.store import append_audit, session_scope
from vvops.store.models import Alert, Incident, IncidentEvent

STORE = dict(retries=3, retry_delay_seconds=[1, 2, 4], timeout_seconds=60, cache_policy=NO_CACHE)
STATUS_KINDS = ("opened", "acknowledged", "contained", "status_update", "resolved")
COMMANDER_ROTATION = "ops-lead"


def _now(now: datetime | None = None) -> datetime:
    return now if now is not None else datetime.now(timezone.utc)


def notify_quietly(*, kind: str, payload: dict[str, Any], idempotency_key: str, thread_key: str | None,
                   environment: str, channel_purpose: str = "incidents") -> bool:
    """Queue a Slack message; never raises (a missing Slack must not fail an incident procedure)."""
    try:
        from tasks.notify import notify

        notify(kind=kind, channel_purpose=channel_purpose, payload=payload, idempotency_key=idempotency_key,
               thread_key=thread_key, environment=environment)
        return True
    except Exception as error:  # noqa: BLE001 - Slack trouble is logged, the procedure goes on
        try:
            get_run_logger().warning("slack %s %s not queued: %s", kind, idempotency_key, error)
        except Exception:  # noqa: BLE001 - outside a run
            pass
        return False


def thread_key(key: str) -> str:
    return f"incident-{key}"


# --------------------------------------------------------------------------- commander and paging


def commander_for(environment: str, at: datetime | None = None) -> str | None:
    """The incident commander: the on-call ops lead (rotation `ops-lead`), else the first rotation of the P0 policy."""
    from vvops.config import who_is_on_call

    cfg = ops_config(environment)
    names = [r.name for r in cfg.oncall.rotations]
    name = COMMANDER_ROTATION if COMMANDER_ROTATION in names else names[0]
    return who_is_on_call(cfg.rotation(name), _now(at)).primary


def escalation_policy_name(environment: str, *, severity: str, incident_type: str) -> str:
    """The incident type's own policy when it has one (security → security on-call first), else the severity's."""
    cfg = ops_config(environment)
    return cfg.oncall.incident_types.get(incident_type).escalation_policy or cfg.severity(severity).escalation_policy


@task(name="page-responders", **STORE)
def page_responders(*, key: str, title: str, severity: str, incident_type: str, environment: str,
                    now: datetime | None = None) -> dict[str, Any]:
    """First step of the escalation policy paged now; the whole planned timeline stored on the incident."""
    from vvops.alerting.escalation import escalation_timeline, oncall_resolvers

    cfg = ops_config(environment)
    policy_name = escalation_policy_name(environment, severity=severity, incident_type=incident_type)
    who, with_role = oncall_resolvers(cfg)
    pages = escalation_timeline(cfg.escalation_policy(policy_name), _now(now), who_is_on_call=who,
                                people_with_role=with_role)
    first = [p for p in pages if p.cycle == 0 and p.step == 0]
    paged: list[str] = []
    page_now = cfg.severity(severity).page
    for page in first:
        for person_id in page.targets:
            paged.append(person_id)
            if not page_now:
                continue
            try:
                person = cfg.person(person_id)
                name, slack_id = person.name, person.slack_user_id
            except KeyError:
                name, slack_id = person_id, None
            notify_quietly(kind="escalation_page", environment=environment, thread_key=thread_key(key),
                           idempotency_key=f"{key}:page:0.0:{person_id}",
                           payload={"subject": f"{key} {title}", "severity": severity, "target_name": name,
                                    "target_slack_id": slack_id, "step": 1, "reason": "incident opened",
                                    "ack_hint": f"acknowledge {key} in the incident-response run"})
    plan = [{"at": p.at.isoformat(), "step": p.step, "cycle": p.cycle, "targets": list(p.targets)} for p in pages]
    add_event.fn(key=key, kind="paged", actor="incident-response",
                 message=f"policy {policy_name}: paged {', '.join(paged) or 'nobody'}" + ("" if page_now else " (post only)"),
                 data={"policy": policy_name, "paged": paged, "page": page_now, "plan": plan[:30]})
    return {"policy": policy_name, "paged": paged, "plan": plan}


# --------------------------------------------------------------------------- the record


@task(name="incident-event", **STORE)
def add_event(*, key: str, kind: str, message: str = "", actor: str = "incident-response",
              data: dict[str, Any] | None = None, at: datetime | None = None) -> int:
    """Append one timeline event (and an audit entry) to an incident."""
    from tasks.store import current_flow_run_id

    with session_scope(store_engine(), immediate=True) as session:
        incident = session.scalar(select(Incident).where(Incident.key == key))
        if incident is None:
            raise KeyError(f"no incident {key}")
        event = IncidentEvent(incident_id=incident.id, kind=kind, actor=actor, message=message,
                              data={**(data or {}), "flow_run_id": current_flow_run_id()}, at=_now(at))
        session.add(event)
        session.flush()
        append_audit(session, actor=actor, action=f"incident.{kind}", subject=key, source="flow",
                     details={"message": message[:500], "event_id": event.id})
        return event.id


@task(name="update-incident", **STORE)
def update_incident(*, key: str, **fields: Any) -> dict[str, Any]:
    """Set lifecycle fields (status, acknowledged_at, mitigated_at, resolved_at, closed_at, summary, root_cause,
    report, slack_channel, slack_thread_ts, commander)."""
    allowed = {"status", "acknowledged_at", "mitigated_at", "resolved_at", "closed_at", "summary", "root_cause",
               "report", "slack_channel", "slack_thread_ts", "commander"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"cannot set {sorted(unknown)} on an incident")
    with session_scope(store_engine(), immediate=True) as session:
        incident = session.scalar(select(Incident).where(Incident.key == key))
        for name, value in fields.items():
            setattr(incident, name, value)
        return {"key": key, **{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in fields.items()
                               if k != "report"}}


def incident_view(key: str) -> dict[str, Any]:
    """The incident and its timeline as plain data."""
    with session_scope(store_engine()) as session:
        i = session.scalar(select(Incident).where(Incident.key == key))
        return {"key": i.key, "title": i.title, "type": i.type, "severity": i.severity, "status": i.status,
                "commander": i.commander, "is_drill": i.is_drill, "opened_at": i.opened_at,
                "acknowledged_at": i.acknowledged_at, "mitigated_at": i.mitigated_at, "resolved_at": i.resolved_at,
                "events": [{"at": e.at.isoformat(), "kind": e.kind, "actor": e.actor, "message": e.message,
                            "data": e.data} for e in i.events]}


# --------------------------------------------------------------------------- status-update reminders


@task(name="sweep-status-reminders", **STORE)
def sweep_status_reminders(*, environment: str, now: datetime | None = None, key: str | None = None) -> list[dict[str, Any]]:
    """One reminder per overdue status update of every open incident (or of `key`); see the module docstring."""
    now = _now(now)
    cfg = ops_config(environment)
    due_list: list[dict[str, Any]] = []
    with session_scope(store_engine(), immediate=True) as session:
        q = select(Incident).where(Incident.status.in_(("open", "mitigated")))
        if key:
            q = q.where(Incident.key == key)
        for incident in session.scalars(q):
            interval = cfg.severity(incident.severity).update_interval_minutes
            last = max((e.at for e in incident.events if e.kind in STATUS_KINDS), default=incident.opened_at)
            due = _remind_once(session, incident, kind="reminder", last_update_at=last, interval=interval, now=now,
                               message=f"status update due (every {interval} min for {incident.severity})")
            if due is not None:
                due_list.append({**due, "public": False})
        due_list += _public_update_reminders(session, q, cfg.communications.update_every_minutes, now)
    for item in due_list:
        what = "public statement update" if item["public"] else "status update"
        notify_quietly(kind="incident_updated", environment=environment, thread_key=thread_key(item["key"]),
                       idempotency_key=f"{item['key']}:{'public-' if item['public'] else ''}reminder:{item['due_at']}",
                       payload={"key": item["key"], "status": f"{what} due",
                                "message": f"{what} due (every {item['interval_minutes']} min); "
                                           f"commander {item['commander'] or 'unassigned'}"})
    return due_list


PUBLIC_UPDATE_KINDS = ("initial", "update")


def _public_update_reminders(session: Any, query: Any, every: dict[str, int], now: datetime) -> list[dict[str, Any]]:
    """Once an incident has a published statement, the next public update is due on config/communications.yaml's
    cadence (`update_every_minutes`, the "next update within" the statement promised): one `public_update_due`
    timeline event per due instant, until the incident is resolved."""
    due_list = []
    for incident in session.scalars(query):
        said = [e.at for e in incident.events if e.kind == "public_statement"
                and (e.data or {}).get("statement_kind") in PUBLIC_UPDATE_KINDS]
        if not said or incident.severity not in every:
            continue
        interval = every[incident.severity]
        due = _remind_once(session, incident, kind="public_update_due", last_update_at=max(said), interval=interval,
                           now=now, message=f"public statement update due (promised every {interval} min)")
        if due is not None:
            due_list.append({**due, "public": True})
    return due_list


def _remind_once(session: Any, incident: Any, *, kind: str, last_update_at: datetime, interval: int, now: datetime,
                 message: str) -> dict[str, Any] | None:
    """The update due now (if any) as a timeline event of `kind`, added once per due instant; None when nothing
    is due or this instant was already reminded."""
    due = due_reminder(opened_at=incident.opened_at, last_update_at=last_update_at, interval_minutes=interval, now=now)
    if due is None:
        return None
    stamp = due.isoformat()
    if any(e.kind == kind and (e.data or {}).get("due_at") == stamp for e in incident.events):
        return None
    data = {"due_at": stamp, "interval_minutes": interval, "commander": incident.commander}
    session.add(IncidentEvent(incident_id=incident.id, kind=kind, actor="reminder-sweep", at=now, message=message,
                              data=data))
    return {"key": incident.key, **data}


# --------------------------------------------------------------------------- evidence and investigation


def _topic(address: str) -> str:
    return "0x" + "00" * 12 + address.lower()[2:]


def logs_of(environment: str, *, contract_address: str | None, addresses: list[str], from_block: int,
            to_block: int) -> list[dict[str, Any]]:
    """eth_getLogs of the contract, plus logs whose indexed topics name an involved address."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    with rpc_client(environment) as rpc:
        queries = []
        rng = {"fromBlock": hex(from_block), "toBlock": hex(to_block)}
        if contract_address:
            queries.append({**rng, "address": contract_address})
        for a in addresses:
            queries += [{**rng, "topics": [None, _topic(a)]}, {**rng, "topics": [None, None, _topic(a)]}]
        for q in queries:
            for log in rpc.call("eth_getLogs", [q]) or []:
                out[(log["transactionHash"], log["logIndex"])] = {
                    "address": log["address"], "block": int(log["blockNumber"], 16), "tx": log["transactionHash"],
                    "log_index": int(log["logIndex"], 16), "topics": log["topics"], "data": log["data"]}
    return sorted(out.values(), key=lambda r: (r["block"], r["log_index"]))


def related_alerts(*, contract: str | None, since: datetime) -> list[dict[str, Any]]:
    with session_scope(store_engine()) as session:
        rows = session.scalars(select(Alert).where(Alert.starts_at >= since).order_by(Alert.starts_at)).all()
        return [{"id": a.id, "rule": a.rule, "severity": a.severity, "status": a.status, "labels": a.labels,
                 "starts_at": a.starts_at.isoformat(), "fingerprint": a.fingerprint}
                for a in rows if contract is None or (a.labels or {}).get("contract") in (None, contract)][:200]


def transactions_of(environment: str, logs: list[dict[str, Any]], limit: int = 50) -> list[dict[str, Any]]:
    """Sender, target and status of the transactions behind the logs (investigation helper)."""
    out = []
    with rpc_client(environment) as rpc:
        for tx_hash in list(dict.fromkeys(r["tx"] for r in logs))[-limit:]:
            tx = rpc.call("eth_getTransactionByHash", [tx_hash]) or {}
            receipt = rpc.call("eth_getTransactionReceipt", [tx_hash]) or {}
            out.append({"tx": tx_hash, "from": tx.get("from"), "to": tx.get("to"),
                        "selector": (tx.get("input") or "")[:10], "block": int(tx.get("blockNumber") or "0x0", 16),
                        "status": int(receipt.get("status") or "0x0", 16)})
    return out


@task(name="preserve-evidence", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def preserve_evidence(*, key: str, environment: str, contract: str | None, addresses: list[str],
                      lookback_blocks: int = 2000, alert: dict[str, Any] | None = None) -> dict[str, Any]:
    """Contract state, logs of the contract and the involved addresses, their transactions and related alerts →
    one JSON bundle in the incident timeline (`evidence` event) with its sha256."""
    from tasks.chain import read_contract_state
    from vvops.config import resolve_deployment

    cfg = ops_config(environment)
    with rpc_client(environment) as rpc:
        head = int(rpc.call("eth_blockNumber"), 16)
    state, address = None, None
    if contract:
        state = read_contract_state.fn(environment=environment, contract=contract)
        address = resolve_deployment(cfg, contract).address
    from_block = max(0, head - lookback_blocks)
    logs = logs_of(environment, contract_address=address, addresses=addresses, from_block=from_block, to_block=head)
    since = datetime.now(timezone.utc) - timedelta(hours=24)
    evidence = {
        "incident": key, "environment": environment, "chain_id": cfg.env.chain_id, "head_block": head,
        "from_block": from_block, "contract": contract, "address": address,
        "state": {"values": state["values"], "implementation": state["implementation"]} if state else None,
        "involved_addresses": addresses, "logs": logs[-500:], "logs_total": len(logs),
        "transactions": transactions_of(environment, logs[-500:]),
        "related_alerts": related_alerts(contract=contract, since=since), "alert": alert or {},
        "collected_at": datetime.now(timezone.utc).isoformat(),
    }
    evidence = __import__("json").loads(canonical_json(evidence))  # exactly what is stored is what is hashed
    digest = evidence_sha256(evidence)
    add_event.fn(key=key, kind="evidence", message=f"evidence preserved: {len(logs)} logs, sha256 {digest[:16]}…",
                 data={"sha256": digest, "evidence": evidence})
    return {"sha256": digest, "logs": len(logs), "transactions": len(evidence["transactions"]),
            "related_alerts": len(evidence["related_alerts"]), "head_block": head}


def verify_evidence(key: str) -> list[bool]:
    """Recompute the sha256 of every stored evidence bundle of an incident (True = unchanged)."""
    view = incident_view(key)
    return [evidence_sha256(e["data"]["evidence"]) == e["data"]["sha256"] for e in view["events"] if e["kind"] == "evidence"]


# --------------------------------------------------------------------------- major outage: RPC failover


@task(name="activate-rpc-failover", cache_policy=NO_CACHE)
def activate_rpc_failover(*, environment: str, key: str | None = None, failed_urls: list[str] | None = None) -> dict[str, Any]:
    """Switch the `vv-chain-<env>` block to the backup URL order and verify the new primary answers with the right
    chain id. Without a registered block nothing is switched (reported). `failed_urls` match the block's URLs as
    written (`${VAR}` templates: they keep keys out of the run's parameters) or resolved."""
    from blocks.chain import ChainConnection
    from blocks.names import chain_block_name
    from tasks.runtime import _load_block
    from vvops.chain.rpc import RpcClient, endpoint_label

    name = chain_block_name(environment)
    block = _load_block(ChainConnection, name)
    if block is None:
        return {"switched": False, "reason": f"no {name} block registered", "verified": False}
    urls = block.urls()
    as_configured = dict(zip(urls, block.rpc_urls))  # resolved → template: the block keeps `${VAR}`, not keys
    failed = [u for u, t in as_configured.items() if u in (failed_urls or []) or t in (failed_urls or [])]
    order = failover_order(urls, failed)
    chosen, checks = None, []
    for url in order:
        try:
            with RpcClient([url], timeout_s=block.request_timeout_s, retries_per_url=0) as rpc:
                chain_id = int(rpc.call("eth_chainId"), 16)
            ok = chain_id == block.chain_id
            checks.append({"url": endpoint_label(url), "chain_id": chain_id, "ok": ok})
        except Exception as error:  # noqa: BLE001 - a dead backup is a finding
            ok = False
            checks.append({"url": endpoint_label(url), "error": type(error).__name__, "ok": False})
        if ok:
            chosen = url
            break
    if chosen is None:
        result = {"switched": False, "verified": False, "checks": checks, "reason": "no RPC URL answers"}
    else:
        new_order = [chosen] + [u for u in order if u != chosen]
        from blocks.references import save_replacing

        block.rpc_urls = [as_configured[u] for u in new_order]
        save_replacing(block, name)
        forget_blocks()
        result = {"switched": new_order != urls, "verified": True, "checks": checks,
                  "order": [endpoint_label(u) for u in new_order], "previous_order": [endpoint_label(u) for u in urls]}
    if key:
        add_event.fn(key=key, kind="failover", message=f"RPC failover: {'verified' if result['verified'] else 'FAILED'}",
                     data=result)
    return result


# --------------------------------------------------------------------------- recovery and report


@task(name="verify-recovery", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def verify_recovery(*, environment: str, contract: str, paused_by_containment: bool) -> dict[str, Any]:
    """Health checks of the contract; while the containment pause stands (unpause needs two leads, separately)
    the paused flag is expected and reported, not a failure."""
    from tasks.chain import contract_state_outcomes, read_contract_state

    state = read_contract_state.fn(environment=environment, contract=contract)
    outcomes = contract_state_outcomes(environment, state, open_incident=False)
    problems, pending = [], []
    for o in outcomes:
        if o.status not in ("crit", "error"):
            continue
        if paused_by_containment and o.id.endswith(".paused"):
            pending.append(f"{contract} stays paused until the unpause procedure (two leads) runs")
            continue
        problems.append(f"{o.id}: {o.message}")
    return {"ok": not problems, "problems": problems, "pending": pending,
            "paused": bool(state["values"].get("paused"))}


def incident_runbook(view: dict[str, Any], environment: str) -> str | None:
    """The runbook section of the alert that opened the incident (config/runbooks.yaml), if any."""
    opened = next((e for e in view["events"] if e["kind"] == "opened"), None)
    alert = ((opened or {}).get("data") or {}).get("alert") or {}
    rule = alert.get("rule") or (alert.get("labels") or {}).get("alertname")
    return ops_config(environment).runbooks.for_alert(rule, alert.get("labels")) if rule else None


@task(name="write-incident-report", **STORE)
def write_incident_report(*, key: str, environment: str, variant: str, impact: str, root_cause: str, contributing_factors: list[str],
                          action_items: list[str], checklist: list[dict[str, Any]],
                          resolved_by: str | None = None) -> dict[str, Any]:
    """Assemble the post-incident report from the stored record, save it in `Incident.report` (with submitted_at,
    MTTA/MTTR, and the action items as records: owner, due date, id) and return it with its markdown."""
    from tasks.action_items import record_action_items

    records = record_action_items.fn(key=key, environment=environment, items=action_items, resolved_by=resolved_by)
    view = incident_view(key)
    due_days = ops_config(environment).procedures.incidents.post_incident_report_due_days
    report = IncidentReport(
        key=key, title=view["title"], severity=view["severity"], incident_type=view["type"], variant=variant,
        commander=view["commander"], is_drill=view["is_drill"], opened_at=view["opened_at"],
        acknowledged_at=view["acknowledged_at"], resolved_at=view["resolved_at"], impact=impact,
        root_cause=root_cause, contributing_factors=contributing_factors, action_items=action_items,
        timeline=[{k: e[k] for k in ("at", "kind", "actor", "message")} for e in view["events"]],
        checklist=checklist, due_days=due_days,
        evidence_sha256=[e["data"]["sha256"] for e in view["events"] if e["kind"] == "evidence"])
    body = {**report.as_dict(), "submitted_at": datetime.now(timezone.utc).isoformat(),
            "action_item_records": [{k: r[k] for k in ("id", "title", "owner", "due_on", "status")} for r in records]}
    runbook = incident_runbook(view, environment)
    if runbook:
        body["runbook_url"] = runbook
    update_incident.fn(key=key, report=body, root_cause=root_cause or None, summary=impact or None)
    markdown = report.markdown()
    if runbook:
        markdown += f"\n## Runbook\n\nThe section that handles this alert: [{runbook.rsplit('#', 1)[-1]}]({runbook})\n"
    if records:
        markdown += "\n## Action items tracked\n\n| id | item | owner | due | status |\n| --- | --- | --- | --- | --- |\n"
        markdown += "".join(f"| #{r['id']} | {r['title'].replace('|', '/')} | {r['owner']} | {r['due_on']} | {r['status']} |\n"
                            for r in records)
        markdown += "\nClose one with `vvops action-items done ID --by PERSON --evidence LINK`.\n"
    return {"report": body, "markdown": markdown}

