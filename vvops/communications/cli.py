"""`vvops notified`: who outside the team was told what and when (statement_notifications), for an incident or
for announcements; what an exchange, a partner or a regulator asks after an incident.

  vvops notified [--incident INC-0001 | --announcements] [--json]
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    told = sub.add_parser("notified", help="who was told about an incident (or announcements), when, how (store record)")
    which = told.add_mutually_exclusive_group()
    which.add_argument("--incident", default=None, help="incident key, e.g. INC-0001")
    which.add_argument("--announcements", action="store_true", help="announcements outside incidents only")
    told.add_argument("--json", action="store_true")
    told.set_defaults(handler=cmd_notified)


def cmd_notified(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from vvops.cli import _store_session
    from vvops.store.notification_models import StatementNotification as N

    query = select(N).order_by(N.notified_at, N.id)
    if args.incident:
        query = query.where(N.incident_key == args.incident)
    elif args.announcements:
        query = query.where(N.incident_key.is_(None))
    with _store_session(write=False) as session:
        rows = [{"at": r.notified_at.isoformat(), "incident": r.incident_key, "statement": r.statement_kind,
                 "sha256": r.statement_sha256, "channel": r.channel, "list": r.contact, "kind": r.contact_kind,
                 "recipient": r.recipient, "status": r.status, "detail": r.detail}
                for r in session.scalars(query)]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        detail = f" ({r['detail']})" if r["detail"] and r["status"] != "sent" else ""
        print(f"{r['at'][:19]}  {r['incident'] or '-':<10} {r['statement']:<24} {r['channel']:<7} "
              f"{r['kind']:<9} {r['recipient']:<36} {r['status']}{detail}  sha256 {r['sha256'][:12]}")
    if not rows:
        print("nobody was notified" + (f" about {args.incident}" if args.incident else ""))
    return 0
