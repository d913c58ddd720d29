"""Regenerate the public status page from the store (every ops sweep, and when an incident opens or changes)."""

from __future__ import annotations

from typing import Any

from prefect import task

from tasks.runtime import ops_config, store_engine


@task(name="publish-status-page", retries=1, retry_delay_seconds=2)
def publish_status_page(environment: str) -> dict[str, Any]:
    """Write the page into the state dir (served by `vvops up` at /status/); returns the overall state and counts."""
    from vvops.status_page import build_status_page, default_site_dir

    snapshot = build_status_page(engine=store_engine(), cfg=ops_config(environment))
    return {"overall": snapshot["overall"], "components": len(snapshot["components"]),
            "incidents": len(snapshot["incidents"]), "dir": str(default_site_dir(environment))}
