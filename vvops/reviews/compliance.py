"""Monthly compliance verification: controls evaluated from evidence rows, each with pass/fail and its evidence.

Pure functions over pandas DataFrames (the columns are those of the store tables, see `tasks/reviews.py`),
so every control is tested on constructed clean and violating data.

Controls:
- `daily-checks`         every UTC day of the period had a completed (finished) daily-checks run
- `change-approvals`     every executed parameter change / upgrade had its quorum of accepted approvals from
                         holders of the approver role, the proposer excluded when the policy says so
                         (separation of duties), and every governed chain action links to such an approval
- `audit-chain`          the hash-chained audit log verifies end to end
- `post-incident-reports` every real P0/P1 incident resolved in time has a report within the configured days
- `drills`               a successful drill of each required kind ran at the configured frequency

Linking convention for chain actions: a chain action whose idempotency key starts with
`parameter_change:` or `upgrade_rollout:` is a governed change; it is covered by the approval request whose
`details.chain_action_keys` lists that key, or whose `flow_run_id` appears in the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import pandas as pd

GOVERNED_PROCEDURES: tuple[str, ...] = ("parameter_change", "upgrade_rollout")

__all__ = [
    "ControlResult",
    "GOVERNED_PROCEDURES",
    "daily_checks_control",
    "change_approvals_control",
    "audit_chain_control",
    "post_incident_reports_control",
    "drills_control",
    "evaluate_controls",
]


@dataclass
class ControlResult:
    id: str
    title: str
    passed: bool
    summary: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _utc(value: Any) -> datetime | None:
    if value is None or value is pd.NaT or (not isinstance(value, (dict, list, tuple)) and pd.isna(value)):
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def _rows(df: pd.DataFrame | None) -> list[dict[str, Any]]:
    return [] if df is None or df.empty else df.to_dict(orient="records")


def _iso(value: Any) -> str | None:
    v = _utc(value)
    return v.isoformat() if v else None


# ---------------------------------------------------------------------------- daily checks

def daily_checks_control(check_runs: pd.DataFrame | None, *, start: datetime, end: datetime,
                         flow_name: str = "daily-checks") -> ControlResult:
    """Every UTC day in [start, end) had at least one finished `flow_name` run.

    check_runs columns: id, flow_name, started_at, finished_at, status.
    """
    days = pd.date_range(_utc(start), _utc(end) - timedelta(microseconds=1), freq="D", normalize=True)
    done: dict[str, list[int]] = {}
    for r in _rows(check_runs):
        if r.get("flow_name") != flow_name or _utc(r.get("finished_at")) is None or r.get("status") == "running":
            continue
        day = _utc(r["started_at"]).strftime("%Y-%m-%d")
        done.setdefault(day, []).append(int(r["id"]))
    evidence, missing = [], []
    for d in days:
        key = d.strftime("%Y-%m-%d")
        runs = done.get(key, [])
        evidence.append({"day": key, "runs": len(runs), "run_ids": runs[:5]})
        if not runs:
            missing.append({"day": key, "problem": "no completed daily check"})
    ok = not missing and bool(evidence)
    summary = (f"{len(evidence) - len(missing)}/{len(evidence)} days had a completed daily check"
               + (f"; missing: {', '.join(m['day'] for m in missing[:10])}" + (" …" if len(missing) > 10 else "")
                  if missing else ""))
    return ControlResult("daily-checks", "Every day had a completed daily check", ok, summary, evidence, missing)


# ---------------------------------------------------------------------------- approvals

def change_approvals_control(requests: pd.DataFrame | None, decisions: pd.DataFrame | None,
                             policies: dict[str, dict[str, Any]], role_holders: dict[str, Iterable[str]],
                             *, chain_actions: pd.DataFrame | None = None) -> ControlResult:
    """Every approved (executed) parameter change / upgrade met its policy with separation of duties.

    requests columns: id, procedure, subject, proposer, status, flow_run_id, requested_at, decided_at, details.
    decisions columns: request_id, approver, decision, accepted, decided_at.
    policies: procedure → {approver_role, quorum, proposer_excluded}. role_holders: role → person ids.
    chain_actions (optional) columns: idempotency_key, status, signed_tx_hash, created_at.
    """
    by_request: dict[int, list[dict[str, Any]]] = {}
    for d in _rows(decisions):
        by_request.setdefault(int(d["request_id"]), []).append(d)
    holders = {role: set(people) for role, people in role_holders.items()}
    evidence, violations = [], []
    approved: list[dict[str, Any]] = []
    for r in _rows(requests):
        if r.get("procedure") not in GOVERNED_PROCEDURES or r.get("status") != "approved":
            continue
        approved.append(r)
        pol = policies.get(r["procedure"], {})
        role, quorum = pol.get("approver_role", "ops_lead"), int(pol.get("quorum", 1))
        excluded = bool(pol.get("proposer_excluded", True))
        votes = [d for d in by_request.get(int(r["id"]), [])
                 if d.get("decision") == "approve" and bool(d.get("accepted", True))]
        counted, problems = set(), []
        for v in votes:
            who = v["approver"]
            if excluded and who == r["proposer"]:
                problems.append(f"proposer {who} approved their own change")
            elif who not in holders.get(role, set()):
                problems.append(f"{who} does not hold role {role}")
            else:
                counted.add(who)
        if len(counted) < quorum:
            problems.append(f"{len(counted)} valid approval(s), quorum {quorum}")
        # a self-approval is a violation even when others met the quorum; a vote from someone without the role
        # just does not count (it becomes a violation only when the quorum is then missed)
        hard = [p for p in problems if "quorum" in p or "own change" in p]
        evidence.append({"request": int(r["id"]), "procedure": r["procedure"], "subject": r.get("subject", ""),
                         "proposer": r["proposer"], "approvers": ", ".join(sorted(counted)), "quorum": quorum,
                         "ok": not hard})
        if hard:
            violations.append({"request": int(r["id"]), "problem": "; ".join(problems)})
    # every governed chain action has an approved request behind it
    for a in _rows(chain_actions):
        key = str(a.get("idempotency_key") or "")
        if not key.startswith(tuple(p + ":" for p in GOVERNED_PROCEDURES)):
            continue
        if a.get("status") in ("failed", "replaced"):
            continue
        linked = [r for r in approved
                  if key in ((r.get("details") or {}).get("chain_action_keys") or ())
                  or (r.get("flow_run_id") and str(r["flow_run_id"]) in key)]
        evidence.append({"chain_action": key, "tx": a.get("signed_tx_hash"),
                         "approval": ", ".join(str(r["id"]) for r in linked) or None, "ok": bool(linked)})
        if not linked:
            violations.append({"chain_action": key, "problem": "executed without an approved request"})
    n = sum(1 for e in evidence if "request" in e)
    summary = (f"{n} approved change(s) checked, {len(violations)} violation(s)" if evidence
               else "no parameter changes or upgrades executed in the period")
    return ControlResult("change-approvals", "Changes had their approvals with separation of duties",
                         not violations, summary, evidence, violations)


# ---------------------------------------------------------------------------- audit chain

def audit_chain_control(result: dict[str, Any]) -> ControlResult:
    """result: {ok, checked, first_bad_id, reason} from `verify_audit_chain`."""
    ok = bool(result.get("ok"))
    summary = (f"{result.get('checked', 0)} entries verify end to end" if ok
               else f"broken at entry {result.get('first_bad_id')}: {result.get('reason')}")
    violations = [] if ok else [{"entry": result.get("first_bad_id"), "problem": result.get("reason")}]
    return ControlResult("audit-chain", "The audit log's hash chain verifies end to end", ok, summary,
                         [dict(result)], violations)


# ---------------------------------------------------------------------------- post-incident reports

def report_submitted_at(report: dict[str, Any] | None) -> datetime | None:
    """When a post-incident report was submitted: `submitted_at` (or `completed_at`/`created_at`) in the JSON."""
    if not report:
        return None
    for key in ("submitted_at", "completed_at", "created_at"):
        if report.get(key):
            try:
                return _utc(pd.Timestamp(report[key]))
            except (ValueError, TypeError):
                continue
    return None


def post_incident_reports_control(incidents: pd.DataFrame | None, *, due_days: int, start: datetime,
                                  end: datetime, severities: tuple[str, ...] = ("P0", "P1")) -> ControlResult:
    """Every real P0/P1 incident resolved in [start, end) has a report within `due_days` of its resolution
    (of its opening when unresolved). A report not yet due at `end` is not a violation.

    incidents columns: key, severity, is_drill, opened_at, resolved_at, report.
    """
    s, e = _utc(start), _utc(end)
    evidence, violations = [], []
    for r in _rows(incidents):
        if r.get("severity") not in severities or bool(r.get("is_drill")):
            continue
        base = _utc(r.get("resolved_at")) or _utc(r.get("opened_at"))
        if base is None or not (s - timedelta(days=due_days) <= base < e):
            continue
        due = base + timedelta(days=due_days)
        submitted = report_submitted_at(r.get("report"))
        if submitted is not None and submitted <= due:
            status = "on time"
        elif submitted is not None:
            status = "late"
        elif due > e:
            status = "not yet due"
        else:
            status = "missing"
        evidence.append({"incident": r["key"], "severity": r["severity"], "resolved_at": _iso(base),
                         "due": due.isoformat(), "submitted_at": submitted.isoformat() if submitted else None,
                         "status": status})
        if status in ("late", "missing"):
            violations.append({"incident": r["key"], "problem": f"post-incident report {status} (due {due:%Y-%m-%d})"})
    summary = (f"{len(evidence)} P0/P1 incident(s); {len(violations)} without a timely report" if evidence
               else "no P0/P1 incidents needing a report")
    return ControlResult("post-incident-reports", f"P0/P1 incidents have a report within {due_days} days",
                         not violations, summary, evidence, violations)


# ---------------------------------------------------------------------------- drills

def drills_control(drills: pd.DataFrame | None, *, every_days: dict[str, int], end: datetime) -> ControlResult:
    """For each kind → max days between successful drills: the latest successful one is at most that old at `end`.

    drills columns: id, kind, started_at, ok. A kind matches a drill when the drill's kind starts with it
    or equals it (e.g. "dr" matches "dr" and "dr-store-restore"; the dr-drill flow records "store-restore",
    mapped by the caller).
    """
    e = _utc(end)
    evidence, violations = [], []
    rows = _rows(drills)
    for kind, days in every_days.items():
        ok_rows = [r for r in rows if bool(r.get("ok")) and _utc(r.get("started_at")) and _utc(r["started_at"]) < e
                   and (r.get("kind") == kind or str(r.get("kind", "")).startswith(kind + "-"))]
        last = max((_utc(r["started_at"]) for r in ok_rows), default=None)
        age = (e - last).total_seconds() / 86_400 if last else None
        ok = age is not None and age <= days
        evidence.append({"kind": kind, "every_days": days, "last_ok": last.isoformat() if last else None,
                         "age_days": None if age is None else round(age, 1), "drills": len(ok_rows), "ok": ok})
        if not ok:
            violations.append({"kind": kind, "problem": "never ran successfully" if last is None
                               else f"last successful drill {age:.0f} days ago (> {days})"})
    summary = ", ".join(f"{ev['kind']}: " + ("never" if ev["last_ok"] is None else f"{ev['age_days']:g} d ago")
                        + f" (every {ev['every_days']} d)" for ev in evidence) or "no drill kinds configured"
    return ControlResult("drills", "Drills ran at the configured frequency", not violations, summary,
                         evidence, violations)


def evaluate_controls(*, start: datetime, end: datetime, check_runs: pd.DataFrame | None,
                      approval_requests: pd.DataFrame | None, approval_decisions: pd.DataFrame | None,
                      chain_actions: pd.DataFrame | None, policies: dict[str, dict[str, Any]],
                      role_holders: dict[str, Iterable[str]], audit: dict[str, Any], incidents: pd.DataFrame | None,
                      report_due_days: int, drills: pd.DataFrame | None, drill_every_days: dict[str, int]
                      ) -> list[ControlResult]:
    """All five controls for the period [start, end)."""
    return [
        daily_checks_control(check_runs, start=start, end=end),
        change_approvals_control(approval_requests, approval_decisions, policies, role_holders,
                                 chain_actions=chain_actions),
        audit_chain_control(audit),
        post_incident_reports_control(incidents, due_days=report_due_days, start=start, end=end),
        drills_control(drills, every_days=drill_every_days, end=end),
    ]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
