"""Weekly Activities: Capacity Planning, Protocol Assessment and the Weekly Operations Review, from the store.

Scheduled Mondays: covers the last full Monday-to-Monday week (UTC). Pass `now` to review the week before
another moment, or `week_ending` for the seven days before an exact instant. Writes the markdown report and
one PNG per capacity series under `<state dir>/reports/weekly-<week start>/`, publishes the markdown artifact
and posts a Slack summary.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task

from tasks.checklists import checklist_markdown
from tasks.preflight import preflight
from tasks.reports import publish_markdown
from tasks.reviews import (
    failed_or_late_flow_runs,
    load_approvals,
    load_check_results,
    load_action_items,
    load_incidents,
    load_metrics,
)
from tasks.runtime import ops_config
from vvops import paths
from vvops.config.oncall import upcoming_shifts
from vvops.forecast import plan_capacity
from vvops.reviews import plots
from vvops.reviews.weekly import (
    approvals_overview,
    incident_stats,
    integrations_health,
    action_items_recorded,
    open_action_items,
    pass_rate_by_area,
    protocol_assessment,
    render_weekly_markdown,
    slack_summary_weekly,
    week_bounds,
)

__all__ = ["weekly_review", "pass_rate_by_area", "series_key", "capacity_inputs"]

PROTOCOL_METRICS = ["fees_collected_usd", "withdrawal_limit_hits", "vault_param", "gas_per_call",
                    "protocol.function_calls", "protocol.function_reverts", "protocol.reverts_by_reason"]


def series_key(name: str, labels: dict[str, Any] | None) -> str:
    """`name` or `name{k=v,...}` (labels sorted): one capacity series."""
    if not labels:
        return name
    return name + "{" + ",".join(f"{k}={labels[k]}" for k in sorted(labels)) + "}"


def capacity_inputs(metrics: pd.DataFrame, capacity) -> tuple[pd.DataFrame, dict[str, dict]]:
    """The long (series, ts, value) frame of configured metrics and the limit per series."""
    limits: dict[str, dict] = {}
    if metrics.empty:
        return pd.DataFrame(columns=["series", "ts", "value"]), limits
    keys = {(name, lk): labels for name, lk, labels in
            metrics.drop_duplicates(["name", "labels_key"])[["name", "labels_key", "labels"]].itertuples(index=False)}
    mapping: dict[tuple[str, str], str] = {}
    for (name, lk), labels in keys.items():
        spec = capacity.spec_for(name, labels)
        if spec is None:
            continue
        key = series_key(name, labels)
        mapping[(name, lk)] = key
        limits[key] = {"limit": spec.limit, "direction": spec.direction, "unit": spec.unit,
                       "action": spec.action, "title": spec.title or key}
    m = metrics[[(n, lk) in mapping for n, lk in zip(metrics["name"], metrics["labels_key"])]]
    series = [mapping[(n, lk)] for n, lk in zip(m["name"], m["labels_key"])]
    return pd.DataFrame({"series": series, "ts": m["ts"].to_numpy(), "value": m["value"].to_numpy()}), limits


@task(name="capacity-planning")
def capacity_planning(*, environment: str, now: datetime, out_dir: str) -> dict[str, Any]:
    cap = ops_config(environment).capacity
    start = now - timedelta(days=cap.lookback_days)
    metrics = load_metrics.fn(start=start, end=now, names=sorted({s.metric for s in cap.series}))
    points, limits = capacity_inputs(metrics, cap)
    plans, fits, resampled = plan_capacity(points, limits, now=now, horizon_days=cap.planning_horizon_days,
                                           freq=cap.resample, confidence=cap.confidence)
    images: dict[str, str] = {}
    for p in plans:
        hist = resampled[resampled["series"] == p.series]
        if hist.empty:
            continue
        spec = limits.get(p.series, {})
        path = plots.forecast_plot(hist, fits.get(p.series), Path(out_dir) / f"capacity-{plots.slug(p.series)}.png",
                                   title=f"{spec.get('title', p.series)} — {p.series}", now=now,
                                   horizon_days=cap.planning_horizon_days, limit=p.limit, unit=p.unit)
        images[p.series] = str(path)
    # configured series nothing recorded yet: named, so the report says "no data" instead of leaving them out
    missing = [s.title or s.metric for s in cap.series if not any(s.matches(*key) for key in _recorded(metrics))]
    return {"horizon_days": cap.planning_horizon_days, "lookback_days": cap.lookback_days,
            "plans": [p.as_dict() for p in plans], "images": images, "missing": missing}


def _recorded(metrics: pd.DataFrame) -> list[tuple[str, dict]]:
    if metrics.empty:
        return []
    return [(n, labels) for n, labels in metrics.drop_duplicates(["name", "labels_key"])[["name", "labels"]]
            .itertuples(index=False)]


def oncall_next_week(environment: str, end: datetime) -> list[dict[str, Any]]:
    cfg = ops_config(environment)
    rows = []
    for rotation in cfg.oncall.rotations:
        for s in upcoming_shifts(rotation, end, days=7):
            rows.append({"rotation": rotation.name, "from": s.start.strftime("%a %Y-%m-%d %H:%M %Z"),
                         "to": s.end.strftime("%a %Y-%m-%d %H:%M %Z"), "primary": s.primary,
                         "secondary": s.secondary or "", "note": s.override_reason or ""})
    return rows


def _post_to_slack(environment: str, report: dict[str, Any], period: str) -> dict[str, Any] | None:
    """The Slack summary through tasks.notify (when that module is available). File upload of the plots is
    not supported by notify yet: the summary links the report folder instead."""
    logger = get_run_logger()
    try:
        from tasks.notify import notify_summary
    except ImportError:
        logger.info("tasks.notify not available: Slack summary not sent")
        return None
    failing = [{"id": p["series"], "area": "capacity", "status": "warn", "message": p["recommendation"]}
               for p in report["capacity"]["plans"] if p.get("recommendation")]
    failing += [{"id": r["flow"] or r["run"], "area": "flows", "status": "crit", "message": r["state"]}
                for r in report["flow_runs"]]
    counts = {"ok": sum(1 for p in report["capacity"]["plans"] if not p.get("recommendation")),
              "warn": len([f for f in failing if f["status"] == "warn"]),
              "crit": len([f for f in failing if f["status"] == "crit"])}
    try:
        return {"results": notify_summary(cadence="weekly", environment=environment, period=period,
                                          counts=counts, failing=failing)}
    except Exception as e:  # noqa: BLE001 — a Slack problem must not fail the review
        logger.warning("Slack summary not sent: %s", e)
        return None


@flow(name="weekly-review", log_prints=True)
def weekly_review(environment: str = "devnet", now: datetime | None = None,
                  week_ending: datetime | None = None, notify_slack: bool = True) -> dict:
    """The weekly review of the last full week before `now` (default: the current time), or of the seven days
    before `week_ending` when given."""
    if (not_ready := preflight(environment)) is not None:
        return not_ready
    moment = (now or datetime.now(timezone.utc))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    if week_ending is not None:
        end = week_ending if week_ending.tzinfo else week_ending.replace(tzinfo=timezone.utc)
        start = end - timedelta(days=7)
    else:
        start, end = week_bounds(moment)
    out_dir = paths.state_dir() / "reports" / f"weekly-{environment}-{start:%Y-%m-%d}"
    out_dir.mkdir(parents=True, exist_ok=True)

    results = load_check_results(start=start, end=end)
    incidents = load_incidents(start=start, end=end)
    with_reports = load_incidents(start=datetime(2000, 1, 1, tzinfo=timezone.utc), end=end, include_open_before=True)
    action_items = load_action_items(end=end)
    requests, _ = load_approvals(start=start, end=end)
    protocol_metrics = load_metrics(start=start - timedelta(days=28), end=end, names=PROTOCOL_METRICS)
    try:
        flow_runs = failed_or_late_flow_runs(start=start, end=end)
    except Exception as e:  # noqa: BLE001 — the review still renders without the Prefect API
        get_run_logger().warning("could not read flow runs from the Prefect API: %s", e)
        flow_runs = []
    capacity = capacity_planning(environment=environment, now=end, out_dir=str(out_dir))

    report: dict[str, Any] = {
        "environment": environment, "start": start.isoformat(), "end": end.isoformat(),
        "generated_at": datetime.now(timezone.utc).isoformat(),
        "capacity": capacity,
        "protocol": protocol_assessment(protocol_metrics, start=start, end=end),
        "integrations": integrations_health(results),
        "incidents": incident_stats(incidents),
        "areas": pass_rate_by_area(results).to_dict(orient="records"),
        "flow_runs": flow_runs,
        "approvals": approvals_overview(requests, start=start, end=end),
        "action_items": open_action_items(with_reports, action_items, at=end),
        "action_items_recorded": action_items_recorded(action_items, with_reports),
        "oncall": oncall_next_week(environment, end),
    }
    images = {k: Path(v).name for k, v in capacity["images"].items()}
    checklist = checklist_markdown(cadence="weekly", since=start)
    markdown = render_weekly_markdown(report, images=images) + "\n" + checklist
    (out_dir / "weekly-review.md").write_text(markdown, encoding="utf-8")
    (out_dir / "weekly-review.json").write_text(json.dumps(report, default=str, indent=1), encoding="utf-8")
    # the artifact links the PNGs by file URL (the Prefect UI cannot serve local files; the paths are listed too)
    artifact_images = {k: Path(v).resolve().as_uri() for k, v in capacity["images"].items()}
    artifact = render_weekly_markdown(report, images=artifact_images) + "\n" + checklist
    artifact += f"\n\nReport folder: `{out_dir}`\n"
    publish_markdown(key=f"weekly-review-{environment}", description=f"Weekly review {start:%Y-%m-%d}",
                     markdown=artifact)
    report["summary"] = slack_summary_weekly(report)
    report["report_dir"] = str(out_dir)
    if notify_slack:
        report["slack"] = _post_to_slack(environment, report, f"week of {start:%Y-%m-%d}")
    print(report["summary"])
    return report
