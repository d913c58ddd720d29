"""The public status page: components and incidents from live evidence, as a static site (see build_status_page)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from vvops import paths


def default_site_dir(environment: str) -> Path:
    """Where `vvops up` serves the page from and the ops sweep writes it: <state dir>/status/<environment>/."""
    return paths.state_dir() / "status" / environment


def build_status_page(*, engine: Engine, cfg: Any, out_dir: Path | None = None, now: datetime | None = None
                      ) -> dict[str, Any]:
    """Derive the page from the store and write it; returns the snapshot (what status.json holds)."""
    from vvops.status_page.evidence import read_evidence
    from vvops.status_page.model import page_snapshot
    from vvops.status_page.render import write_site

    now = now or datetime.now(timezone.utc)
    page = cfg.status_page
    checks, incidents = read_evidence(engine, environment=cfg.environment, now=now, days=page.uptime_days)
    snapshot = page_snapshot(page, checks, incidents, now=now, environment=cfg.environment)
    write_site(out_dir or default_site_dir(cfg.environment), snapshot, public_url=page.public_url)
    return snapshot
