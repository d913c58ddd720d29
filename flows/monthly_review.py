"""Monthly Activities: Security Review, Performance Review, Compliance Verification, Governance Participation and
Process Optimization (process improvement: MTTA/MTTR per month, repeat incidents by root cause, post-incident
action-item follow-through; vvops/reviews/process_improvement.py).

Scheduled on the 1st: covers the previous calendar month (UTC); pass `as_of` to review the month before
another moment. Writes markdown, JSON and a standalone HTML file (plots embedded) under
`<state dir>/reports/monthly-<env>-<YYYY-MM>/`, publishes the markdown artifact and posts a Slack summary.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger

from tasks.checklists import checklist_markdown
from tasks.preflight import preflight
from tasks.reports import publish_markdown
from tasks.reviews import (
    latest_check_result,
    latest_check_results,
    load_approvals,
    load_chain_actions,
    load_check_results,
    load_check_runs,
    load_action_items,
    load_drills,
    load_incidents,
    load_metrics,
    playbook_coverage,
    read_access_state,
    read_patch_state,
    verify_audit,
)
from tasks.runtime import ops_config
from vvops import paths
from vvops.coverage.matrix import render_coverage_section
from vvops.reviews import plots
from vvops.reviews.access import access_section
from vvops.reviews.compliance import evaluate_controls
from vvops.reviews.html import standalone_html
from vvops.reviews.monthly import (
    availability,
    certificate_inventory,
    check_durations,
    control_dicts,
    credentials_age,
    governance_changes,
    latency_p95,
    month_bounds,
    month_over_month,
    render_monthly_markdown,
    slack_summary_monthly,
    vulnerability_status,
)
from vvops.reviews.patches import patch_compliance
from vvops.reviews.process_improvement import (TREND_MONTHS, process_improvement, render_process_improvement,
                                               slack_line)
from vvops.reviews.weekly import incident_stats

__all__ = ["monthly_review", "month_bounds", "verify_audit"]

#: drill kinds the compliance control looks for → procedures.yaml frequency field
DRILL_KINDS = {"store-restore": "dr_drill_every_days", "tabletop": "tabletop_every_days"}


def _labels_col(df: pd.DataFrame, key: str) -> pd.Series:
    return df["labels"].map(lambda d: (d or {}).get(key, "?"))


def _probes(metrics: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    if metrics.empty:
        return pd.DataFrame(columns=["endpoint", "ts", "up"]), pd.DataFrame(columns=["endpoint", "ts", "value"])
    up = metrics[metrics["name"] == "probe_up"]
    lat = metrics[metrics["name"] == "probe_latency_ms"]
    return (pd.DataFrame({"endpoint": _labels_col(up, "endpoint"), "ts": up["ts"], "up": up["value"]}),
            pd.DataFrame({"endpoint": _labels_col(lat, "endpoint"), "ts": lat["ts"], "value": lat["value"]}))


def _mom_measures(results: pd.DataFrame, incidents: pd.DataFrame, probes: pd.DataFrame) -> dict[str, float | None]:
    inc = incident_stats(incidents)
    return {
        "incidents": float(inc["count"]),
        "MTTR (min)": inc["mttr_minutes"],
        "check pass rate %": round(float((results["status"] == "ok").mean()) * 100, 2) if not results.empty else None,
        "availability %": round(float(probes["up"].mean()) * 100, 3) if not probes.empty else None,
    }


def _post_to_slack(environment: str, report: dict[str, Any]) -> dict[str, Any] | None:
    logger = get_run_logger()
    try:
        from tasks.notify import notify_summary
    except ImportError:
        logger.info("tasks.notify not available: Slack summary not sent")
        return None
    failing = [{"id": c["id"], "area": "compliance", "status": "crit", "message": c["summary"]}
               for c in report["compliance"] if not c["passed"]]
    failing += [{"id": a["endpoint"], "area": "performance", "status": "warn",
                 "message": f"availability {a['availability_pct']}% < SLO {a['slo_pct']}%"}
                for a in report["performance"]["availability"] if not a["meets_slo"]]
    counts = {"ok": sum(1 for c in report["compliance"] if c["passed"]),
              "warn": sum(1 for f in failing if f["status"] == "warn"),
              "crit": sum(1 for f in failing if f["status"] == "crit")}
    try:
        return {"results": notify_summary(cadence="monthly", environment=environment, period=report["month"],
                                          counts=counts, failing=failing)}
    except Exception as e:  # noqa: BLE001 — a Slack problem must not fail the review
        logger.warning("Slack summary not sent: %s", e)
        return None


@flow(name="monthly-review", log_prints=True)
def monthly_review(environment: str = "devnet", as_of: datetime | None = None, notify_slack: bool = True) -> dict:
    """The review of the calendar month before `as_of` (default: now)."""
    if (not_ready := preflight(environment)) is not None:
        return not_ready
    cfg = ops_config(environment)
    moment = as_of or datetime.now(timezone.utc)
    start, end = month_bounds(moment)
    prev_start, prev_end = month_bounds(start)
    out_dir = paths.state_dir() / "reports" / f"monthly-{environment}-{start:%Y-%m}"
    out_dir.mkdir(parents=True, exist_ok=True)

    results = load_check_results(start=start, end=end)
    prev_results = load_check_results(start=prev_start, end=prev_end)
    runs = load_check_runs(start=start, end=end)
    incidents = load_incidents(start=start, end=end)
    prev_incidents = load_incidents(start=prev_start, end=prev_end)
    report_incidents = load_incidents(start=start - pd.Timedelta(days=cfg.procedures.incidents.post_incident_report_due_days),
                                      end=end)
    trend_start = start - pd.DateOffset(months=TREND_MONTHS - 1)
    trend_incidents = load_incidents(start=trend_start.to_pydatetime(), end=end)
    action_items = load_action_items(end=end)
    requests, decisions = load_approvals(start=start, end=end)
    actions = load_chain_actions(start=start, end=end)
    drills = load_drills(end=end)
    audit = verify_audit()
    metrics = load_metrics(start=prev_start, end=end, names=["probe_up", "probe_latency_ms"])
    tls = latest_check_results(prefix="security.tls_certs", end=end)
    vulns = latest_check_result(check_id="security.vulnerability_reports", end=end)
    access_state = read_access_state(environment=environment)
    patch_state = read_patch_state(environment=environment)

    this_m = metrics[metrics["ts"] >= start] if not metrics.empty else metrics
    prev_m = metrics[metrics["ts"] < start] if not metrics.empty else metrics
    probes, latency = _probes(this_m)
    prev_probes, _ = _probes(prev_m)

    policies = {p: cfg.approval_policy(p).model_dump(include={"approver_role", "quorum", "proposer_excluded"})
                for p in ("parameter_change", "upgrade_rollout")}
    roles = {role: [p.id for p in cfg.people_with_role(role)] for role in {p["approver_role"] for p in policies.values()}}
    drill_every = {kind: getattr(cfg.procedures.drills, field) for kind, field in DRILL_KINDS.items()}
    controls = evaluate_controls(
        start=start, end=end, check_runs=runs, approval_requests=requests, approval_decisions=decisions,
        chain_actions=actions, policies=policies, role_holders=roles, audit=audit, incidents=report_incidents,
        report_due_days=cfg.procedures.incidents.post_incident_report_due_days, drills=drills,
        drill_every_days=drill_every)

    creds_check = cfg.check("security.credentials")
    creds = [dict(c) if isinstance(c, dict) else c.model_dump() for c in (creds_check.params.get("credentials") or [])]
    slo = cfg.capacity.availability_slo_pct
    avail = availability(probes, slo_pct=slo)
    p95 = latency_p95(latency)
    inc = incident_stats(incidents)
    security_incidents = [] if incidents.empty else [
        {"incident": r["key"], "severity": r["severity"], "title": r["title"], "status": r["status"]}
        for r in incidents[(incidents["type"] == "security") & ~incidents["is_drill"].astype(bool)].to_dict("records")]
    report: dict[str, Any] = {
        "environment": environment, "month": f"{start:%Y-%m}", "month_label": f"{start:%B %Y}",
        "start": start.isoformat(), "end": end.isoformat(), "generated_at": datetime.now(timezone.utc).isoformat(),
        "audit_chain": audit,
        "incidents": {**inc, "security": len(security_incidents)},
        "compliance": control_dicts(controls),
        "performance": {
            "availability": avail,
            "latency_p95": [{"endpoint": r["endpoint"], "week": r["ts"].strftime("%Y-%m-%d"), "p95_ms": round(r["p95_ms"], 1)}
                            for r in p95.to_dict("records")],
            "check_durations": check_durations(results, prev_results),
            "month_over_month": month_over_month(_mom_measures(results, incidents, probes),
                                                 _mom_measures(prev_results, prev_incidents, prev_probes)),
        },
        "security": {
            "vulnerabilities": vulnerability_status(vulns, now=end, start=start),
            "credentials": credentials_age(creds, now=end),
            "certificates": certificate_inventory(tls, now=end),
            "incidents": security_incidents,
            "access": access_section(access_state),
            "patches": patch_compliance(installed=patch_state["installed"], locked=patch_state["locked"],
                                        report=patch_state["report"], report_name=patch_state["report_name"],
                                        report_time=patch_state["report_time"]),
        },
        "governance": governance_changes(requests, decisions, actions, start=start, end=end),
        "process_improvement": process_improvement(trend_incidents, action_items, start=start, end=end),
        "playbook_coverage": playbook_coverage(out_dir=out_dir),
    }

    images: dict[str, str] = {}
    if avail:
        images["availability"] = plots.bar_plot([a["endpoint"] for a in avail], [a["availability_pct"] for a in avail],
                                                out_dir / "availability.png", title="Availability per endpoint (%)",
                                                hline=slo, ylabel="%").name
    if not p95.empty:
        images["latency"] = plots.line_plot(p95, out_dir / "latency-p95.png", x="ts", y="p95_ms", group="endpoint",
                                            title="Latency p95 per week (ms)", ylabel="ms").name
    mom = [r for r in report["performance"]["month_over_month"] if r["this_month"] is not None]
    if mom:
        images["mom"] = plots.bar_plot([r["measure"] for r in mom], [r["change_pct"] or 0 for r in mom],
                                       out_dir / "month-over-month.png", title="Change vs previous month (%)").name
    checklist = checklist_markdown(cadence="monthly", since=start)
    improvement = render_process_improvement(report["process_improvement"]) + "\n" + \
        render_coverage_section(report["playbook_coverage"])
    markdown = render_monthly_markdown(report, images=images) + "\n" + improvement + "\n" + checklist
    (out_dir / "monthly-review.md").write_text(markdown, encoding="utf-8")
    html_path = out_dir / "monthly-review.html"
    html_path.write_text(standalone_html(f"Monthly review {environment} {start:%Y-%m}", markdown, base_dir=out_dir),
                         encoding="utf-8")
    (out_dir / "monthly-review.json").write_text(json.dumps(report, default=str, indent=1), encoding="utf-8")
    artifact = render_monthly_markdown(report, images={k: (out_dir / v).resolve().as_uri() for k, v in images.items()})
    artifact += "\n" + improvement + "\n" + checklist
    artifact += f"\n\nStandalone HTML report: `{html_path}`\n"
    publish_markdown(key=f"monthly-review-{environment}", description=f"Monthly review {start:%Y-%m}", markdown=artifact)
    report["summary"] = slack_summary_monthly(report) + slack_line(report["process_improvement"])
    report["html"] = str(html_path)
    report["report_dir"] = str(out_dir)
    if notify_slack:
        report["slack"] = _post_to_slack(environment, report)
    print(report["summary"])
    return report
