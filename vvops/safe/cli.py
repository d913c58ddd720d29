"""`vvops safe ...`: the Safe proposals in the ops store, and confirming one offline.

  vvops safe list [--status proposed]             proposals, their nonce, status and who confirmed
  vvops safe show <safe_tx_hash|key>              one proposal: the SafeTx fields and EIP-712 typed data to sign
  vvops safe confirm <safe_tx_hash|key> --signature 0x... [--by PERSON]
                                                  verify (current owners) and store an owner's signature
                                                  (audited either way), then resume the waiting run
  vvops safe sign <safe_tx_hash|key> --as PERSON [--eth-sign]   devnet only: sign with the roster's devnet
                                                  owner key from devnet.json (what a wallet does) and confirm

Exit status: 0 accepted, 1 refused or not found (one line saying why).
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable


class SafeCliError(Exception):
    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def add_parser(sub: Any, handler_wrapper: Callable[[Callable], Callable] = lambda f: f) -> None:
    safe = sub.add_parser("safe", help="Safe multisig proposals: list, show, confirm offline").add_subparsers(
        title="safe commands")
    ls = safe.add_parser("list", help="Safe proposals in the ops store")
    ls.add_argument("--status", choices=("proposed", "executed", "failed", "superseded"))
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=handler_wrapper(cmd_list))
    show = safe.add_parser("show", help="one proposal and the typed data its owners sign")
    show.add_argument("proposal", help="SafeTx hash (0x...) or idempotency key")
    show.add_argument("--environment", "-e", default="devnet")
    show.set_defaults(handler=handler_wrapper(cmd_show))
    confirm = safe.add_parser("confirm", help="submit an owner's signature of a SafeTx hash (verified, audited)")
    confirm.add_argument("proposal", help="SafeTx hash (0x...) or idempotency key")
    confirm.add_argument("--signature", required=True, help="0x..., 65 bytes per owner (EIP-712 or eth_sign form)")
    confirm.add_argument("--by", default=None, help="your person id (team.yaml): checked against the signature")
    confirm.add_argument("--environment", "-e", default="devnet")
    confirm.add_argument("--no-resume", action="store_true", help="do not resume the waiting flow run")
    confirm.set_defaults(handler=handler_wrapper(cmd_confirm))
    sign = safe.add_parser("sign", help="devnet only: sign with PERSON's devnet owner key and confirm")
    sign.add_argument("proposal")
    sign.add_argument("--as", dest="person", required=True)
    sign.add_argument("--eth-sign", action="store_true", help="the eth_sign form instead of EIP-712")
    sign.add_argument("--environment", "-e", default="devnet")
    sign.set_defaults(handler=handler_wrapper(cmd_sign))


def _engine():
    from vvops.config import load_config
    from vvops.store import make_engine

    return make_engine(load_config(environment=None).store.resolved_url().get_secret_value())


def _context(environment: str):
    from vvops.chain.rpc import RpcClient
    from vvops.config import ConfigError, load_config
    from vvops.safe.contracts import SafeReader
    from vvops.safe.governance import safe_governance

    try:
        cfg = load_config(environment=environment)
    except ConfigError as error:
        raise SafeCliError(f"configuration is invalid: {error}") from None
    gov = safe_governance(cfg)
    if gov is None:
        raise SafeCliError(f"{environment} has no Safe (environments.yaml safe; devnet: `vvops devnet up "
                           "--governance safe`)")
    rpc = RpcClient([u.get_secret_value() for u in cfg.resolve_rpc_urls()], timeout_s=cfg.env.rpc_timeout_s)
    return cfg, gov, rpc, SafeReader(rpc, gov.address)


def cmd_list(args: argparse.Namespace) -> int:
    from vvops.safe.proposals import list_proposals

    rows = list_proposals(_engine(), status=args.status)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no Safe proposals")
    for r in rows:
        print(f"{r['safe_tx_hash']}  nonce {r['nonce']:<4} {r['status']:<10} "
              f"confirmed by {', '.join(r['confirmations']) or 'nobody'}  {r['key']}  {r['description'][:60]}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from vvops.safe import proposals

    cfg, gov, rpc, reader = _context(args.environment)
    with rpc:
        if proposals.find(_engine(), args.proposal) is None:
            raise SafeCliError(f"no Safe proposal {args.proposal!r} (see `vvops safe list`)")
        state = proposals.state(_engine(), reader, args.proposal)
    print(json.dumps({"safe_tx_hash": state.safe_tx_hash, "status": state.status, "nonce": state.nonce,
                      "threshold": state.threshold,
                      "confirmed_by": {o: state.persons.get(o) for o in state.confirmed},
                      "calls": state.calls, "typed_data": state.spec.eip712()}, indent=2))
    return 0


def cmd_confirm(args: argparse.Namespace, *, source: str = "cli") -> int:
    from vvops.safe import proposals

    cfg, gov, rpc, reader = _context(args.environment)
    engine = _engine()
    if args.by is not None and args.by not in {p.id for p in cfg.people}:
        raise SafeCliError(f"--by {args.by!r} is not a person in config/team.yaml")
    with rpc:
        if proposals.find(engine, args.proposal) is None:
            raise SafeCliError(f"no Safe proposal {args.proposal!r} (see `vvops safe list`)")
        try:
            results = proposals.add_signature(engine, reader, gov, args.proposal, signature=args.signature,
                                              source=source, person=args.by, submitted_by=args.by)
        except ValueError as error:
            raise SafeCliError(str(error)) from None
        state = proposals.state(engine, reader, args.proposal)
    accepted = [v for v, _ in results if v.accepted]
    for v, _ in results:
        who = gov.person_of(v.owner) or v.owner or "?"
        print(f"{'accepted' if v.accepted else 'refused'}: {v.kind} signature of {who}"
              + ("" if v.accepted else f" ({v.reason}: {v.message})"))
    print(f"{state.safe_tx_hash}: {len(state.confirmed)} of {state.threshold} confirmations")
    if accepted and state.flow_run_id and not getattr(args, "no_resume", False):
        print(_resume(state.flow_run_id))
    return 0 if accepted else 1


def _resume(flow_run_id: str) -> str:
    """Wake the paused run so it re-reads the store (it would see the confirmation on its next resume anyway)."""
    from uuid import UUID

    try:
        from prefect.client.orchestration import get_client
        from prefect.flow_runs import resume_flow_run

        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(flow_run_id)).state
        if state is None or not state.is_paused():
            return f"flow run {flow_run_id} is not paused: it reads the confirmation when it next checks"
        resume_flow_run(UUID(flow_run_id), run_input={"signature": "", "owner": "", "repropose": False})
        return f"resumed flow run {flow_run_id}"
    except Exception as error:  # noqa: BLE001 - Prefect unreachable: the confirmation is stored regardless
        return f"could not resume flow run {flow_run_id} ({type(error).__name__}); the confirmation is stored"


def cmd_sign(args: argparse.Namespace) -> int:
    from vvops.config import load_devnet_json, load_config
    from vvops.safe import proposals
    from vvops.safe.signatures import sign_hash

    cfg = load_config(environment=args.environment)
    if not cfg.env.uses_devnet:
        raise SafeCliError("`vvops safe sign` signs with public devnet keys: only for the devnet; elsewhere sign "
                           "with your wallet and use `vvops safe confirm`")
    owners = (load_devnet_json().get("safe") or {}).get("owners") or []
    key = next((o.get("private_key") for o in owners if o.get("person") == args.person), None)
    if not key:
        raise SafeCliError(f"{args.person!r} has no devnet owner key in devnet.json (owners: "
                           f"{', '.join(o.get('person') or o['address'] for o in owners) or 'none'})")
    row = proposals.find(_engine(), args.proposal)
    if row is None:
        raise SafeCliError(f"no Safe proposal {args.proposal!r} (see `vvops safe list`)")
    signature = sign_hash(key, row.safe_tx_hash, "eth_sign" if args.eth_sign else "eip712")
    ns = argparse.Namespace(proposal=row.safe_tx_hash, signature=signature, by=args.person,
                            environment=args.environment, no_resume=False)
    return cmd_confirm(ns)
