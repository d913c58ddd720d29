"""`vvops action-items ...`: post-incident action items in the ops store.

  vvops action-items list [--status open|done|all] [--owner PERSON] [--incident INC-0001] [--json]
  vvops action-items done ID --by PERSON --evidence LINK      close an item (proven like `checklist confirm`;
                                                              the owner, or a role in procedures.yaml
                                                              actions.action_item_close_other_roles; audited,
                                                              refusals too)
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from typing import Any

from vvops.identity.cli import add_signer_options

CLOSE_ACTION = "action_item.done"


def _item_id(text: str) -> int:
    try:
        value = int(text.lstrip("#"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an action item id (a number, as `list` shows)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not an action item id (they start at 1)")
    return value


def add_parser(sub: Any) -> None:
    items = sub.add_parser("action-items", help="post-incident action items: list, close (audited)").add_subparsers(
        title="action-items commands")
    ls = items.add_parser("list", help="action items with owner, due date and status (default: open ones)")
    ls.add_argument("--status", choices=("open", "done", "all"), default="open")
    ls.add_argument("--owner", default=None, help="person id from config/team.yaml")
    ls.add_argument("--incident", default=None, help="incident key, e.g. INC-0001")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=cmd_list)
    done = items.add_parser("done", help="close an action item with its evidence (audited)")
    done.add_argument("item_id", type=_item_id)
    done.add_argument("--by", required=True, help="person id from config/team.yaml")
    done.add_argument("--evidence", required=True, help="a link, commit or ticket that shows it is done")
    add_signer_options(done)
    done.set_defaults(handler=cmd_done)


def cmd_list(args: argparse.Namespace) -> int:
    from vvops.cli import _store_session
    from vvops.procedures.action_items import as_dict, list_items

    today = datetime.now(timezone.utc).date()
    with _store_session(write=False) as session:
        rows = [as_dict(r, today) for r in list_items(session, status=args.status, owner=args.owner,
                                                      incident_key=args.incident)]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        state = "OVERDUE" if r["overdue"] else r["status"]
        closed = f"  closed by {r['done_by']} {r['done_at'][:10]}: {r['evidence']}" if r["status"] == "done" else ""
        print(f"#{r['id']:<5} {r['incident']:<10} {state:<8} due {r['due_on']}  {r['owner']:<10} {r['title']}{closed}")
    if not rows:
        print(f"no {'' if args.status == 'all' else args.status + ' '}action items")
    return 0


def cmd_done(args: argparse.Namespace) -> int:
    from vvops.cli import CliError, _cli_config, _prove_cli_action, _store_session, audit_cli_refusal
    from vvops.procedures.action_items import ActionItemError, authorize_close, close_item
    from vvops.store import append_audit
    from vvops.store.action_item_models import ActionItem

    subject = f"action-item:{args.item_id}"

    def refuse(reason: str) -> CliError:
        audit_cli_refusal(actor=args.by, rule="action_items", reason=reason, subject=subject)
        return CliError(f"{CLOSE_ACTION} refused: {reason}")

    evidence = (args.evidence or "").strip()
    if not evidence:
        raise refuse("--evidence is empty: give a link, commit or ticket that shows it is done")
    with _store_session(write=False) as session:
        row = session.get(ActionItem, args.item_id)
        found = None if row is None else {"owner": row.owner, "status": row.status, "incident": row.incident_key,
                                          "done_by": row.done_by}
    if found is None:
        raise refuse(f"no action item {args.item_id} (`vvops action-items list --status all` shows the ids)")
    if found["status"] == "done":
        raise refuse(f"action item {args.item_id} is already closed (by {found['done_by']})")
    cfg = _cli_config()
    proven = _prove_cli_action(args, cfg, action=CLOSE_ACTION, subject=subject,
                               details={"evidence": evidence[:500], "incident": found["incident"]},
                               authorize=lambda p: authorize_close(
                                   p, owner=found["owner"], closer_roles=cfg.procedures.actions.action_item_close_other_roles))
    try:
        with _store_session() as session:
            item = close_item(session, args.item_id, by=proven.person, evidence=evidence,
                              now=datetime.now(timezone.utc))
            append_audit(session, actor=proven.person, action=CLOSE_ACTION, subject=subject, source="cli",
                         details={"incident": item.incident_key, "title": item.title[:500], "owner": item.owner,
                                  "due_on": item.due_on.isoformat(), "evidence": evidence[:2000],
                                  "proof": proven.kind, **proven.evidence})
            incident, on_time = item.incident_key, item.done_at.date() <= item.due_on
    except ActionItemError as error:
        raise refuse(str(error)) from None
    print(f"closed: action item #{args.item_id} ({incident}) by {proven.person}"
          f"{'' if on_time else ' (after its due date)'}")
    return 0
