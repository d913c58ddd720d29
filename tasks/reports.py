"""Tasks that publish what a run found: markdown and table artifacts in the Prefect UI."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from vvops.checks import CheckOutcome

STATUS_ICON = {"ok": "🟢", "unknown": "⚪", "warn": "🟡", "crit": "🔴", "error": "⚫"}


@task(name="publish-markdown")
def publish_markdown(*, key: str, markdown: str, description: str) -> None:
    create_markdown_artifact(key=key, markdown=markdown, description=description)


@task(name="publish-check-table")
def publish_check_table(*, key: str, outcomes: list[CheckOutcome], description: str) -> None:
    rows: list[dict[str, Any]] = [
        {"status": f"{STATUS_ICON[o.status]} {o.status}", "check": o.id, "area": o.area, "value": o.value,
         "threshold": "" if o.threshold is None else str(o.threshold), "message": o.message, "hint": o.hint or ""}
        for o in outcomes
    ]
    create_table_artifact(key=key, table=rows, description=description)


def outcomes_markdown(outcomes: list[CheckOutcome]) -> str:
    """A markdown table of check outcomes, failing ones first."""
    order = {"error": 0, "crit": 1, "warn": 2, "unknown": 3, "ok": 4}
    lines = ["| status | check | value | threshold | message |", "| --- | --- | --- | --- | --- |"]
    for o in sorted(outcomes, key=lambda o: (order[o.status], o.id)):
        value = "" if o.value is None else f"{o.value:g}"
        threshold = "" if o.threshold is None else str(o.threshold)
        lines.append(f"| {STATUS_ICON[o.status]} {o.status} | `{o.id}` | {value} | {threshold} | {o.message} |")
    return "\n".join(lines)


def markdown_table(records: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A markdown table of records (dicts), in the given column order."""
    if not records:
        return ""
    columns = columns or list(records[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in records]
    return "\n".join(lines)
