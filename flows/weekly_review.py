"""Weekly Activities / Weekly Operations Review: how the week's checks went, by area, from the store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
from prefect import flow, task
from sqlalchemy import select

from tasks.reports import markdown_table, publish_markdown
from tasks.runtime import store_engine
from vvops.store.models import CheckResult


@task(name="load-check-results", retries=3, retry_delay_seconds=[1, 2, 4])
def load_check_results(*, start: datetime, end: datetime) -> pd.DataFrame:
    query = select(CheckResult.check_id, CheckResult.area, CheckResult.status, CheckResult.created_at).where(
        CheckResult.created_at >= start, CheckResult.created_at < end)
    with store_engine().connect() as conn:
        return pd.DataFrame(conn.execute(query).all(), columns=["check_id", "area", "status", "created_at"])


def pass_rate_by_area(results: pd.DataFrame) -> pd.DataFrame:
    """Share of ok results per area, with counts of each status."""
    if results.empty:
        return pd.DataFrame(columns=["area", "ok", "warn", "crit", "error", "total", "pass_rate"])
    counts = results.pivot_table(index="area", columns="status", values="check_id", aggfunc="count", fill_value=0)
    for status in ("ok", "warn", "crit", "error"):
        if status not in counts:
            counts[status] = 0
    counts = counts[["ok", "warn", "crit", "error"]]
    counts["total"] = counts.sum(axis=1)
    counts["pass_rate"] = (counts["ok"] / counts["total"]).round(4)
    return counts.reset_index()


@flow(name="weekly-review", log_prints=True)
def weekly_review(environment: str = "devnet", week_ending: datetime | None = None) -> dict:
    """Check pass rate by area over the seven days before `week_ending` (default: now)."""
    end = week_ending or datetime.now(timezone.utc)
    start = end - timedelta(days=7)
    table = pass_rate_by_area(load_check_results(start=start, end=end))
    markdown = f"# Weekly operations review — {environment}\n\n{start:%Y-%m-%d} → {end:%Y-%m-%d}\n\n"
    markdown += markdown_table(table.to_dict(orient="records")) if not table.empty else "_No check results stored this week._"
    publish_markdown(key="weekly-review", description=f"Weekly review {end:%Y-%m-%d}", markdown=markdown + "\n")
    return {"start": start.isoformat(), "end": end.isoformat(), "areas": table.to_dict(orient="records")}
