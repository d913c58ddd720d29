"""Block Kit messages for every kind of ops notification: pure functions returning `{"text": ..., "blocks": [...]}`.

`text` is the plain fallback Slack shows in notifications and screen readers; `blocks` is the rich layout.
Builders only use the fields they are given (never config or environment), so no secret can leak in; user
supplied text is escaped for Slack mrkdwn (`&`, `<`, `>`) and cut to Slack's block limits.

Kinds (`KINDS` maps each to its builder; `render(kind, **data)` dispatches):
check_failure, summary, summary_failures, approval_request, approval_update, incident_opened,
incident_updated, incident_resolved, escalation_page, oncall_handoff, and the alerting framework's grouped
notifications alert.firing / alert.repeat / alert.resolved / alert.acknowledged, and action_item_reminder.
Check failures and firing alerts carry the runbook section that handles them (`runbook_url`, config/runbooks.yaml).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

Message = dict[str, Any]

STATUS_ICON = {"ok": ":large_green_circle:", "warn": ":large_yellow_circle:", "crit": ":red_circle:",
               "error": ":black_circle:", "unknown": ":white_circle:"}
SEVERITY_ICON = {"P0": ":rotating_light:", "P1": ":red_circle:", "P2": ":large_orange_circle:", "P3": ":large_yellow_circle:"}
RISK_ICON = {"low": ":large_green_circle:", "medium": ":large_yellow_circle:", "high": ":large_orange_circle:",
             "critical": ":red_circle:"}
STATUS_ORDER = {"error": 0, "crit": 1, "warn": 2, "unknown": 3, "ok": 4}

APPROVE_ACTION_ID = "approval_approve"
ACKNOWLEDGE_ACTION_ID = "alert_acknowledge"
REJECT_ACTION_ID = "approval_reject"
APPROVAL_BLOCK_ID_PREFIX = "approval:"

MAX_SECTION = 3000  # Slack: section text
MAX_HEADER = 150  # Slack: header plain_text
MAX_TEXT = 4000  # our cap for the fallback text
MAX_LISTED = 20  # failing checks listed before "... and N more"


# --------------------------------------------------------------------------- helpers


def escape(value: Any) -> str:
    """Text made safe for mrkdwn: `&`, `<`, `>` escaped as Slack requires (no accidental links or mentions)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": _cut(text, MAX_HEADER), "emoji": True}}


def section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(mrkdwn, MAX_SECTION)}}


def fields(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """A section of up to 10 `*label*\\nvalue` fields (None values are skipped)."""
    items = [{"type": "mrkdwn", "text": _cut(f"*{label}*\n{value}", 2000)} for label, value in pairs if value is not None]
    return {"type": "section", "fields": items[:10]}


def context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(t, MAX_SECTION)} for t in texts if t][:10]}


def link(url: str, label: str) -> str:
    return f"<{url}|{escape(label)}>"


def mention(slack_user_id: str | None, name: str | None = None) -> str:
    """`<@U123>` when a Slack id is known, else the escaped name."""
    if slack_user_id:
        return f"<@{slack_user_id}>"
    return escape(name or "someone")


def flow_run_url(ui_url: str, flow_run_id: str) -> str:
    """The Prefect UI page of a flow run: `{ui_url}/runs/flow-run/{id}`."""
    return f"{ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}"


def _when(value: datetime | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M %Z").strip()
    return str(value)


def _message(text: str, blocks: list[dict[str, Any]]) -> Message:
    return {"text": _cut(text, MAX_TEXT), "blocks": blocks}


def _check(item: Any) -> dict[str, Any]:
    """A check outcome (CheckOutcome or mapping) as a plain dict with the fields the messages use."""
    if isinstance(item, Mapping):
        data = dict(item)
    else:
        data = {k: getattr(item, k, None) for k in ("id", "area", "status", "message", "value", "threshold", "hint",
                                                    "runbook_url")}
    data.setdefault("status", "unknown")
    return data


def _fmt_value(value: Any) -> str | None:
    if value is None:
        return None
    return f"{value:g}" if isinstance(value, float) else str(value)


def _check_line(check: dict[str, Any]) -> str:
    status = str(check.get("status"))
    line = f"{STATUS_ICON.get(status, ':white_circle:')} *{escape(status)}* `{escape(check.get('id'))}` — {escape(check.get('message') or '')}"
    value = _fmt_value(check.get("value"))
    if value is not None:
        threshold = check.get("threshold")
        line += f" (value {escape(value)}" + (f", threshold {escape(threshold)})" if threshold is not None else ")")
    return line


# --------------------------------------------------------------------------- checks and summaries


def check_failure(*, environment: str, check: Any, run_url: str | None = None) -> Message:
    """One failing check (warn/crit/error) with its value, threshold and hint."""
    c = _check(check)
    status = str(c["status"])
    title = f"{status.upper()}: {c.get('id')} on {environment}"
    blocks = [
        header(f"Check {status}: {c.get('id')}"),
        section(f"{STATUS_ICON.get(status, ':white_circle:')} {escape(c.get('message') or '')}"),
        fields([("Environment", escape(environment)), ("Area", escape(c["area"]) if c.get("area") else None),
                ("Value", escape(_fmt_value(c.get("value")))) if c.get("value") is not None else ("Value", None),
                ("Threshold", escape(c["threshold"])) if c.get("threshold") is not None else ("Threshold", None)]),
    ]
    if c.get("hint"):
        blocks.append(section(f":bulb: *What to do:* {escape(c['hint'])}"))
    if runbook := runbook_line(c.get("runbook_url")):
        blocks.append(section(runbook))
    if run_url:
        blocks.append(context(link(run_url, "Open the run in Prefect")))
    text = f"{title} — {c.get('message') or ''}".rstrip(" —")
    return _message(text, blocks)


def summary(*, cadence: str, environment: str, period: str, counts: Mapping[str, int],
            failing: Iterable[Any] = (), run_url: str | None = None) -> Message:
    """A daily/weekly/monthly summary: counts per status; the failing checks go in its thread (`summary_failures`)."""
    failing = [_check(c) for c in failing]
    order = ("ok", "unknown", "warn", "crit", "error")
    count_text = " · ".join(f"{STATUS_ICON[s]} {s} {int(counts.get(s, 0))}" for s in order if s in counts or s == "ok")
    worst = next((s for s in ("error", "crit", "warn", "unknown") if counts.get(s)), "ok")
    title = f"{cadence.capitalize()} summary — {environment} — {period}"
    blocks = [header(title), section(f"{STATUS_ICON[worst]} *Overall: {worst}*\n{count_text}")]
    if failing:
        blocks.append(context(f"{len(failing)} failing check{'s' if len(failing) != 1 else ''}: details in the thread"))
    if run_url:
        blocks.append(context(link(run_url, "Open the run in Prefect")))
    plain_counts = ", ".join(f"{s} {int(counts.get(s, 0))}" for s in order if s in counts or s == "ok")
    text = f"{title}: {worst} ({plain_counts})"
    if failing:
        text += f"; failing: {', '.join(str(c.get('id')) for c in failing[:MAX_LISTED])}"
    return _message(text, blocks)


def summary_failures(*, cadence: str, environment: str, failing: Iterable[Any]) -> Message:
    """The thread reply under a summary: one line per failing check, worst first."""
    items = sorted((_check(c) for c in failing), key=lambda c: (STATUS_ORDER.get(str(c["status"]), 9), str(c.get("id"))))
    if not items:
        return _message(f"{cadence.capitalize()} checks on {environment}: nothing failing.",
                        [section(f"{STATUS_ICON['ok']} Nothing failing on {escape(environment)}.")])
    lines = [_check_line(c) for c in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        lines.append(f"… and {len(items) - MAX_LISTED} more (see the run's artifacts)")
    blocks = [section(f"*Failing {escape(cadence)} checks on {escape(environment)}*")]
    chunk: list[str] = []
    for line in lines:  # keep each section under Slack's 3000-character limit
        if sum(len(x) + 1 for x in chunk) + len(line) > MAX_SECTION - 10:
            blocks.append(section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(section("\n".join(chunk)))
    hints = [f"`{escape(c.get('id'))}`: {escape(c['hint'])}" for c in items[:MAX_LISTED] if c.get("hint")]
    hints += [f"`{escape(c.get('id'))}`: {runbook_line(c['runbook_url'])}" for c in items[:MAX_LISTED]
              if c.get("runbook_url")]
    if hints:
        blocks.append(context(*[_cut("\n".join(hints), MAX_SECTION)]))
    text = f"Failing {cadence} checks on {environment}: " + "; ".join(
        f"{c.get('id')} {c['status']}: {c.get('message') or ''}".strip() for c in items[:MAX_LISTED])
    return _message(text, blocks)


# --------------------------------------------------------------------------- approvals


def approval_request(*, request_id: int | str, procedure: str, subject: str, risk: str, proposer: str,
                     on_approve: str, ui_url: str, flow_run_id: str, required_role: str | None = None,
                     quorum: int = 1, expires_at: datetime | str | None = None,
                     mentions: Iterable[str] = ()) -> Message:
    """An approval request with Approve/Reject buttons (`value` = request id) and a link to the paused run."""
    run_url = flow_run_url(ui_url, flow_run_id)
    risk_l = str(risk).lower()
    blocks = [
        header(f"Approval needed: {procedure}"),
        section(f"*{escape(subject)}*"),
        fields([("Risk", f"{RISK_ICON.get(risk_l, ':white_circle:')} {escape(risk_l)}"),
                ("Proposed by", escape(proposer)),
                ("Needs", f"{quorum} × {escape(required_role)}" if required_role else f"{quorum} approval(s)"),
                ("Expires", escape(_when(expires_at))) if expires_at else ("Expires", None)]),
        section(f"*On approve:* {escape(on_approve)}"),
        {
            "type": "actions",
            "block_id": f"{APPROVAL_BLOCK_ID_PREFIX}{request_id}",
            "elements": [
                {"type": "button", "action_id": APPROVE_ACTION_ID, "style": "primary", "value": str(request_id),
                 "text": {"type": "plain_text", "text": "Approve", "emoji": True}},
                {"type": "button", "action_id": REJECT_ACTION_ID, "style": "danger", "value": str(request_id),
                 "text": {"type": "plain_text", "text": "Reject", "emoji": True}},
            ],
        },
        context(link(run_url, "Open the paused run in Prefect"), f"request #{escape(request_id)}"),
    ]
    who = " ".join(m for m in mentions if m)
    if who:
        blocks.insert(1, section(f"{who} your decision is needed"))
    text = (f"Approval needed ({risk_l} risk): {subject} — {procedure} proposed by {proposer}. "
            f"On approve: {on_approve}. Run: {run_url}")
    return _message(text, blocks)


def approval_update(*, request_id: int | str, status: str, by: str | None = None, reason: str | None = None) -> Message:
    """A thread reply under an approval request: a decision recorded, approved, rejected, expired, escalated."""
    icons = {"approved": ":white_check_mark:", "rejected": ":x:", "expired": ":hourglass:", "escalated": ":arrow_double_up:"}
    line = f"{icons.get(status, ':memo:')} Request #{escape(request_id)} *{escape(status)}*"
    if by:
        line += f" by {escape(by)}"
    if reason:
        line += f": {escape(reason)}"
    text = f"Approval request #{request_id} {status}" + (f" by {by}" if by else "") + (f": {reason}" if reason else "")
    return _message(text, [section(line)])


# --------------------------------------------------------------------------- incidents and on-call


def incident_opened(*, key: str, title: str, severity: str, type: str, commander: str | None = None,
                    summary: str | None = None, is_drill: bool = False, run_url: str | None = None,
                    mentions: Iterable[str] = ()) -> Message:
    """The first message of an incident's thread."""
    drill = "[DRILL] " if is_drill else ""
    blocks = [
        header(f"{drill}{key} {severity}: {title}"),
        fields([("Severity", f"{SEVERITY_ICON.get(severity, '')} {escape(severity)}".strip()), ("Type", escape(type)),
                ("Commander", escape(commander) if commander else "unassigned"), ("Status", "open")]),
    ]
    if summary:
        blocks.append(section(escape(summary)))
    who = " ".join(m for m in mentions if m)
    if who:
        blocks.append(section(f"Paging {who}"))
    notes = ["Updates follow in this thread."]
    if run_url:
        notes.append(link(run_url, "Incident response run"))
    blocks.append(context(*notes))
    text = f"{drill}Incident {key} opened ({severity}, {type}): {title}"
    if commander:
        text += f" — commander {commander}"
    return _message(text, blocks)


def incident_updated(*, key: str, status: str, message: str, actor: str | None = None) -> Message:
    """A thread reply: a status change or timeline note."""
    line = f":memo: *{escape(key)}* — *{escape(status)}*: {escape(message)}"
    blocks = [section(line)]
    if actor:
        blocks.append(context(f"by {escape(actor)}"))
    return _message(f"{key} {status}: {message}" + (f" (by {actor})" if actor else ""), blocks)


def incident_resolved(*, key: str, title: str, duration_minutes: float | None = None, root_cause: str | None = None,
                      resolved_by: str | None = None) -> Message:
    """The closing reply of an incident's thread."""
    pairs = [("Duration", f"{duration_minutes:.0f} min") if duration_minutes is not None else ("Duration", None),
             ("Resolved by", escape(resolved_by)) if resolved_by else ("Resolved by", None)]
    blocks = [section(f":white_check_mark: *{escape(key)} resolved*: {escape(title)}")]
    if any(v is not None for _, v in pairs):
        blocks.append(fields(pairs))
    if root_cause:
        blocks.append(section(f"*Root cause:* {escape(root_cause)}"))
    text = f"Incident {key} resolved: {title}"
    if duration_minutes is not None:
        text += f" after {duration_minutes:.0f} min"
    return _message(text, blocks)


def escalation_page(*, subject: str, severity: str, target_name: str, target_slack_id: str | None = None,
                    step: int = 1, reason: str = "not acknowledged", ack_hint: str | None = None,
                    run_url: str | None = None, alert_id: int | None = None) -> Message:
    """A page to the next person in an escalation policy; with `alert_id`, an Acknowledge button stops it."""
    who = mention(target_slack_id, target_name)
    blocks = [
        section(f"{SEVERITY_ICON.get(severity, ':rotating_light:')} *Page ({escape(severity)}, step {step})* {who}: "
                f"{escape(subject)}"),
        context(f"Escalated because: {escape(reason)}", escape(ack_hint) if ack_hint else ""),
    ]
    if alert_id is not None:
        blocks.append({"type": "actions", "block_id": f"alert:{alert_id}", "elements": [
            {"type": "button", "action_id": ACKNOWLEDGE_ACTION_ID, "style": "primary", "value": str(alert_id),
             "text": {"type": "plain_text", "text": "Acknowledge", "emoji": True}}]})
    if run_url:
        blocks.append(context(link(run_url, "Open in Prefect")))
    text = f"Page {severity} (step {step}) for {target_name}: {subject} — escalated because {reason}"
    return _message(text, blocks)


def oncall_handoff(*, rotation: str, outgoing: str, incoming: str, at: datetime | str,
                   outgoing_slack_id: str | None = None, incoming_slack_id: str | None = None,
                   notes: str | None = None) -> Message:
    """An on-call hand-off announcement."""
    blocks = [
        section(f":arrows_counterclockwise: *On-call hand-off — {escape(rotation)}*\n"
                f"{mention(outgoing_slack_id, outgoing)} → {mention(incoming_slack_id, incoming)}"),
        context(f"from {escape(_when(at))}"),
    ]
    if notes:
        blocks.append(section(f"*Notes:* {escape(notes)}"))
    text = f"On-call hand-off ({rotation}): {outgoing} → {incoming} from {_when(at)}"
    return _message(text, blocks)


def alert_group(*, status: str, summary: str, severity: str, group_key: str, firing: Iterable[Mapping[str, Any]] = (),
                resolved: Iterable[Mapping[str, Any]] = (), route: str | None = None, environment: str | None = None,
                text: str | None = None) -> Message:
    """A grouped alert notification from the alerting framework (kinds `alert.firing|repeat|resolved|acknowledged`)."""
    firing, resolved = list(firing), list(resolved)
    icon = ":white_check_mark:" if status == "resolved" else SEVERITY_ICON.get(severity, ":rotating_light:")
    lines = []
    for a in firing:
        extra = " (acknowledged)" if a.get("status") == "acknowledged" else ""
        extra += f" ×{a['count']}" if int(a.get("count") or 1) > 1 else ""
        line = (f"{SEVERITY_ICON.get(str(a.get('severity')), '')} *{escape(a.get('severity', ''))}* "
                f"{escape(a.get('summary') or (a.get('labels') or {}).get('alertname', ''))}{extra}".strip())
        if runbook := runbook_line(a.get("runbook_url")):
            line += f" — {runbook.removeprefix(':book: ')}"
        lines.append(line)
    for a in resolved:
        lines.append(f":white_check_mark: resolved: {escape(a.get('summary') or (a.get('labels') or {}).get('alertname', ''))}")
    blocks = [section(f"{icon} *{escape(status.upper())}* {escape(summary)}")]
    if lines:
        shown = lines[:MAX_LISTED] + ([f"… and {len(lines) - MAX_LISTED} more"] if len(lines) > MAX_LISTED else [])
        blocks.append(section("\n".join(shown)))
    notes = [f"route `{escape(route)}`" if route else "", f"env `{escape(environment)}`" if environment else ""]
    if any(notes):
        blocks.append(context(*[n for n in notes if n]))
    return _message(text or f"{status.upper()} {summary}", blocks)


def alert_acknowledged(*, by: str, source: str, severity: str, alert_id: int, fingerprint: str,
                       summary: str = "", text: str | None = None) -> Message:
    """Someone took an alert (kind `alert.acknowledged`, posted in the alert group's thread); its pages stop."""
    line = text or f"{by} acknowledged alert {alert_id}"
    return _message(line, [section(f":eyes: {SEVERITY_ICON.get(severity, '')} {escape(line)}".replace("  ", " ")),
                           context(f"alert `{alert_id}`", f"fingerprint `{escape(fingerprint[:12])}`",
                                   f"via {escape(source)}", "escalation stopped")])


def audit_anchor(*, environment: str, rows: int, head_hash: str, at: str, devnet_key: bool = False) -> Message:
    """The audit log's published head (kind `audit_anchor`): keep it, compare with `vvops store verify-audit`."""
    line = f"audit log head on {environment}: {rows} rows, hash {head_hash}"
    notes = ["verify: `vvops store verify-audit --anchor " + f"{rows}:{head_hash}`"]
    if devnet_key:
        notes.append("devnet key (not secret)")
    return _message(line, [section(f":lock: *Audit head* {escape(environment)}: `{rows}` rows, `{escape(head_hash)}`"),
                           context(escape(at), *notes)])


def action_item_reminder(*, item_id: int, incident: str, title: str, owner: str, due_on: str, days_overdue: int,
                         owner_slack_id: str | None = None) -> Message:
    """A post-incident action item past its due date (kind `action_item_reminder`, once a day until done)."""
    days = f"{days_overdue} day{'s' if days_overdue != 1 else ''}"
    text = f"Action item #{item_id} ({incident}) is {days} overdue: {title} (owner {owner}, due {due_on})"
    close = f"`vvops action-items done {item_id} --by {escape(owner)} --evidence LINK`"
    return _message(text, [
        section(f":alarm_clock: {mention(owner_slack_id, owner)} action item *#{escape(item_id)}* from "
                f"*{escape(incident)}* is {days} overdue (due {escape(due_on)}):\n{escape(title)}"),
        context(f"close it: {close}", "reminded daily until done")])


def runbook_line(runbook_url: str | None) -> str | None:
    """`Runbook: <url|section>` (a clickable link for http(s) URLs, else the document path as code)."""
    if not runbook_url:
        return None
    label = runbook_url.rsplit("#", 1)[-1] if "#" in runbook_url else runbook_url
    if runbook_url.startswith(("https://", "http://")):
        return f":book: Runbook: {link(runbook_url, label)}"
    return f":book: Runbook: `{escape(runbook_url)}`"


def _alert_kind(status: str) -> Callable[..., Message]:
    def build(**data: Any) -> Message:
        return alert_group(status=status, **data)

    build.__name__ = f"alert_{status}"
    return build


KINDS: dict[str, Callable[..., Message]] = {
    "audit_anchor": audit_anchor,
    "check_failure": check_failure,
    "summary": summary,
    "summary_failures": summary_failures,
    "approval_request": approval_request,
    "approval_update": approval_update,
    "incident_opened": incident_opened,
    "incident_updated": incident_updated,
    "incident_resolved": incident_resolved,
    "escalation_page": escalation_page,
    "oncall_handoff": oncall_handoff,
    "alert.firing": _alert_kind("firing"),
    "alert.repeat": _alert_kind("repeat"),
    "alert.resolved": _alert_kind("resolved"),
    "alert.acknowledged": alert_acknowledged,
    "action_item_reminder": action_item_reminder,
}


def render(kind: str, **data: Any) -> Message:
    """Build the message of `kind` from its fields (KeyError for an unknown kind names the known ones)."""
    try:
        builder = KINDS[kind]
    except KeyError:
        raise KeyError(f"unknown message kind '{kind}' (known: {', '.join(sorted(KINDS))})") from None
    return builder(**data)
