"""Publish the audit log's head (row count + head hash) so a cut or rewritten log can be told later.

At every ops sweep whose head differs from the last one published: one JSON line appended to the anchor
file (`store.audit_anchor_file`, opened O_APPEND; ship it off-host, see docs/deployment.md) and one message
in the audit Slack channel. `vvops store verify-audit --anchor <file | ROWS:HASH>` compares the log with it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NONE as NO_CACHE

from tasks.runtime import ops_config, store_engine
from vvops.store import session_scope
from vvops.store.audit import AuditAnchor, audit_anchor, audit_key


def last_published(path: Path) -> AuditAnchor | None:
    """The last anchor line of the file (read from its end), or None."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            lines = [line for line in handle.read().decode("utf-8", "replace").splitlines() if line.strip()]
        return AuditAnchor.parse(lines[-1]) if lines else None
    except (OSError, ValueError, KeyError):
        return None


def append_anchor_line(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


@task(name="publish-audit-anchor", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def publish_audit_anchor(*, environment: str, notify_slack: bool = True) -> dict[str, Any]:
    from tasks.notify import notify

    cfg = ops_config(environment)
    with session_scope(store_engine()) as session:
        anchor = audit_anchor(session)
    path = cfg.store.anchor_path()
    if last_published(path) == anchor:
        return {"published": False, "rows": anchor.rows, "head_hash": anchor.head_hash}
    devnet_key = audit_key()[1]
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    doc = {"at": at, "environment": environment, "rows": anchor.rows, "head_hash": anchor.head_hash,
           "devnet_key": devnet_key}
    append_anchor_line(path, json.dumps(doc, sort_keys=True))
    slack = None
    if notify_slack:
        slack = notify(kind="audit_anchor", channel_purpose="audit", environment=environment,
                       idempotency_key=f"audit-anchor:{environment}:{anchor.rows}:{anchor.head_hash[:16]}",
                       payload={"environment": environment, "rows": anchor.rows, "head_hash": anchor.head_hash,
                                "at": at, "devnet_key": devnet_key}).get("status")
    return {"published": True, "rows": anchor.rows, "head_hash": anchor.head_hash, "file": str(path), "slack": slack}
