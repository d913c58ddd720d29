"""Weekly and monthly reviews: time windows (freezegun on pure functions only), rendering with empty, partial and
full data, and the flows end to end under the Prefect test server (dates passed as parameters)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from freezegun import freeze_time

from vvops.reviews.html import standalone_html
from vvops.reviews.monthly import month_bounds, render_monthly_markdown
from vvops.reviews.weekly import (
    approvals_overview,
    incident_stats,
    open_action_items,
    protocol_assessment,
    render_weekly_markdown,
    week_bounds,
)

UTC = timezone.utc


@freeze_time("2026-03-02 07:00:00")  # a Monday, the scheduled run
def test_week_bounds_on_the_scheduled_monday():
    start, end = week_bounds(datetime.now(UTC))
    assert (start, end) == (datetime(2026, 2, 23, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))


@freeze_time("2026-03-01 23:30:00")  # Sunday evening UTC, already Monday in Tokyo
def test_week_bounds_in_a_time_zone():
    start, end = week_bounds(datetime.now(UTC))
    assert end == datetime(2026, 2, 23, tzinfo=UTC)
    tstart, tend = week_bounds(datetime.now(UTC), tz="Asia/Tokyo")
    assert tend == datetime(2026, 3, 1, 15, tzinfo=UTC)  # Monday 00:00 JST
    assert tend - tstart == timedelta(days=7)
    assert week_bounds(datetime(2026, 3, 1, 23, 30)) == (start, end)  # naive = UTC


@freeze_time("2026-01-01 08:00:00")
def test_month_bounds_across_the_year_and_zones():
    assert month_bounds(datetime.now(UTC)) == (datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    assert month_bounds(datetime(2026, 3, 1, tzinfo=UTC)) == (datetime(2026, 2, 1, tzinfo=UTC),
                                                              datetime(2026, 3, 1, tzinfo=UTC))
    # 2026-03-01 02:00 UTC is still February in New York: the review covers January there
    start, end = month_bounds(datetime(2026, 3, 1, 2, tzinfo=UTC), tz="America/New_York")
    assert (start, end) == (datetime(2026, 1, 1, 5, tzinfo=UTC), datetime(2026, 2, 1, 5, tzinfo=UTC))


def _empty_weekly():
    return {"environment": "devnet", "start": "2026-02-23T00:00:00+00:00", "end": "2026-03-02T00:00:00+00:00",
            "generated_at": "2026-03-02T07:00:00+00:00", "capacity": {"horizon_days": 90, "plans": [], "images": {}},
            "protocol": protocol_assessment(None, start=datetime(2026, 2, 23, tzinfo=UTC),
                                            end=datetime(2026, 3, 2, tzinfo=UTC)),
            "integrations": [], "incidents": incident_stats(None), "areas": [], "flow_runs": [],
            "approvals": approvals_overview(None, start=datetime(2026, 2, 23, tzinfo=UTC),
                                            end=datetime(2026, 3, 2, tzinfo=UTC)),
            "action_items": open_action_items(None), "oncall": []}


def test_pure_renderers_with_empty_data():
    md = render_weekly_markdown(_empty_weekly())
    assert "Incidents" in md and "_none_" not in md
    for empty in ("no capacity series recorded", "no parameter and fee metrics recorded", "no gas per call recorded",
                  "no calls by function recorded", "no integration check ran", "no check results stored"):
        assert f"no data: {empty}" in md, empty
    monthly = {"environment": "devnet", "month_label": "February 2026", "start": "2026-02-01", "end": "2026-03-01",
               "generated_at": "2026-03-01T08:00", "compliance": [], "incidents": {"count": 0, "security": 0},
               "performance": {"availability": [], "latency_p95": [], "check_durations": [], "month_over_month": []},
               "security": {"vulnerabilities": {"available": False}, "credentials": [], "certificates": [],
                            "incidents": []}, "governance": []}
    monthly_md = render_monthly_markdown(monthly)
    for empty in ("no endpoint probed", "no latency probed", "no vulnerability scan result", "no certificate checked"):
        assert f"no data: {empty}" in monthly_md, empty
    assert "Endpoints below SLO: no data" in monthly_md
    html = standalone_html("x", monthly_md)
    assert html.startswith("<!doctype html>") and "February 2026" in html


def test_incident_stats_mtta_mttr():
    t = datetime(2026, 2, 24, tzinfo=UTC)
    df = pd.DataFrame([
        {"key": "A", "severity": "P1", "type": "technical", "is_drill": False, "opened_at": t,
         "acknowledged_at": t + timedelta(minutes=10), "resolved_at": t + timedelta(minutes=70)},
        {"key": "B", "severity": "P2", "type": "security", "is_drill": False, "opened_at": t,
         "acknowledged_at": t + timedelta(minutes=20), "resolved_at": None},
        {"key": "C", "severity": "P0", "type": "security", "is_drill": True, "opened_at": t,
         "acknowledged_at": None, "resolved_at": None},
    ])
    s = incident_stats(df)
    assert (s["count"], s["drills"], s["open"]) == (2, 1, 1)
    assert s["mtta_minutes"] == 15.0 and s["mttr_minutes"] == 70.0
    assert s["by_type"] == {"security": 1, "technical": 1} and s["by_severity"]["P0"] == 0


# ---------------------------------------------------------------------------- flows (Prefect test server)

FAR_PAST_NOW = datetime(2001, 3, 5, 7, tzinfo=UTC)  # a Monday; nobody else writes rows in 2000/2001


@pytest.fixture(scope="module")
def history(ops_flows, ops_store_engine):
    from vvops.history import generate_history

    return generate_history(engine=ops_store_engine, days=75, seed=11, now=datetime(2001, 3, 5, tzinfo=UTC))


def test_reviews_render_with_empty_data(ops_flows):
    from flows.monthly_review import monthly_review
    from flows.weekly_review import weekly_review

    weekly = weekly_review(environment="devnet", now=datetime(1995, 6, 5, tzinfo=UTC), notify_slack=False)
    assert weekly["incidents"]["count"] == 0 and weekly["capacity"]["plans"] == [] and weekly["areas"] == []
    markdown = Path(weekly["report_dir"], "weekly-review.md").read_text()
    for section in ("Capacity planning", "Parameters in force", "Gas per function", "Errors and reverts",
                    "Integrations' health", "Check pass rate"):
        body = markdown.split(section, 1)[1].split("###", 1)[0]
        assert "no data" in body and "_none_" not in body, (section, body)
    monthly = monthly_review(environment="devnet", as_of=datetime(1995, 6, 1, tzinfo=UTC), notify_slack=False)
    controls = {c["id"]: c["passed"] for c in monthly["compliance"]}
    assert controls["daily-checks"] is False and controls["audit-chain"] is True
    markdown = Path(monthly["html"]).with_name("monthly-review.md").read_text()
    assert "Endpoints below SLO: no data" in markdown
    for section in ("Availability per endpoint", "Latency p95", "Vulnerability management", "Certificate inventory"):
        body = markdown.split(section, 1)[1].split("###", 1)[0]
        assert "no data" in body, (section, body)
    assert Path(monthly["html"]).is_file()


def test_reviews_render_with_full_history(history):
    from flows.monthly_review import monthly_review
    from flows.weekly_review import weekly_review

    weekly = weekly_review(environment="devnet", now=FAR_PAST_NOW, notify_slack=False)
    assert weekly["start"].startswith("2001-02-26") and weekly["end"].startswith("2001-03-05")
    plans = {p["series"]: p for p in weekly["capacity"]["plans"]}
    assert plans["infra.host.cpu_pct"]["slope_per_day"] == pytest.approx(0.25, rel=0.25)
    assert any(p["recommendation"] for p in plans.values())
    assert weekly["capacity"]["images"] and all(Path(p).is_file() for p in weekly["capacity"]["images"].values())
    assert weekly["areas"] and weekly["incidents"]["count"] >= 0 and weekly["protocol"]["gas"]
    assert weekly["oncall"]

    monthly = monthly_review(environment="devnet", as_of=datetime(2001, 3, 1, tzinfo=UTC), notify_slack=False)
    assert monthly["month"] == "2001-02"
    controls = {c["id"]: c for c in monthly["compliance"]}
    assert controls["daily-checks"]["passed"], controls["daily-checks"]["summary"]
    assert controls["change-approvals"]["passed"], controls["change-approvals"]["violations"]
    assert controls["post-incident-reports"]["passed"], controls["post-incident-reports"]["violations"]
    assert controls["audit-chain"]["passed"]
    assert monthly["performance"]["availability"] and monthly["governance"]
    assert monthly["security"]["certificates"]
    # devnet has no credentials of its own (checks.yaml overrides them to []): the review lists exactly those.
    assert monthly["security"]["credentials"] == []
    html = Path(monthly["html"]).read_text()
    assert "data:image/png;base64," in html


def test_weekly_review_partial_week_with_todays_checks(ops_flows):
    from flows.daily_checks import daily_checks
    from flows.weekly_review import weekly_review

    daily_checks(environment="devnet")
    weekly = weekly_review(environment="devnet", week_ending=datetime.now(UTC) + timedelta(minutes=1),
                           notify_slack=False)
    protocol = next(a for a in weekly["areas"] if a["area"] == "protocol")
    assert protocol["total"] >= protocol["ok"] > 0
