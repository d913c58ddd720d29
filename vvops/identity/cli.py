"""The identity side of the `vvops` CLI: signing options, proven CLI actions, `vvops approve`, `vvops propose`.

Every action a person takes from a terminal is proven like an approval: the CLI builds the EIP-712 statement
(Action, Decision or Proposal), signs it with the person's key (`--keystore FILE` with `--password-env VAR`
or a prompt, `--key-env VAR`), or takes a signature made elsewhere (`--print-typed-data`, sign with a hardware
wallet or `cast wallet sign --data`, then `--signature 0x... --expires N`). Where the environment trusts them
(devnet), the roster's public devnet keys sign for the named person, so the demo needs no key handling; a
typed name counts only where config allows it. Every refusal is audited with the rule that refused it.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from .keys import KeyError_, devnet_key, load_key, sign_statement
from .proofs import NO_PROOF, Eip712Proof, IdentityContext, Proven, Refused, TypedNameProof, prove
from .statements import Statement, action_statement

DEFAULT_TTL_S = 600


class IdentityError(Exception):
    """A refusal or a key problem, as one line for the person (exit code 1)."""


class PrintedTypedData(Exception):
    """--print-typed-data: the statement was printed instead of signed."""


def add_signer_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("proof of who you are (EIP-712 signature by your roster address)")
    g.add_argument("--keystore", metavar="FILE", help="Ethereum keystore JSON to sign with")
    g.add_argument("--password-env", metavar="VAR", default="VVOPS_KEYSTORE_PASSWORD",
                   help="variable holding the keystore password (default VVOPS_KEYSTORE_PASSWORD; else a prompt)")
    g.add_argument("--key-env", metavar="VAR", help="variable holding a 0x-hex private key")
    g.add_argument("--signature", metavar="0x...", help="a signature made elsewhere (with --expires)")
    g.add_argument("--expires", type=int, metavar="UNIX", help="the expiry that was signed (default now + 10 min)")
    g.add_argument("--print-typed-data", action="store_true",
                   help="print the EIP-712 typed data to sign (cast wallet sign --data, a wallet) and stop")


def proof_from_args(args: argparse.Namespace, statement: Statement, ctx: IdentityContext, person: str) -> Any:
    """The proof the options give for `person` on `statement` (None: no way to prove it here)."""
    if getattr(args, "signature", None):
        return Eip712Proof(args.signature, claimed=person)
    if getattr(args, "keystore", None) or getattr(args, "key_env", None):
        try:
            key = load_key(keystore=args.keystore, password_env=args.password_env, key_env=args.key_env)
        except KeyError_ as error:
            raise IdentityError(str(error)) from None
        return Eip712Proof(sign_statement(statement, key), claimed=person)
    if ctx.devnet_keys and ctx.person(person) is not None:
        return Eip712Proof(sign_statement(statement, devnet_key(person)), claimed=person)
    if ctx.typed_names:
        return TypedNameProof(person)
    return None


def _expires(args: argparse.Namespace) -> int:
    return int(getattr(args, "expires", None) or time.time() + DEFAULT_TTL_S)


def prove_action(args: argparse.Namespace, *, cfg: Any, action: str, person: str, subject: str,
                 details: dict[str, Any], audit: Callable[..., Any],
                 authorize: Callable[[Any], dict[str, Any]] | None = None) -> Proven:
    """Prove `person` took `action` on `subject` and that their roles allow it; audit and raise on refusal.

    `audit(actor=, action=, subject=, rule=, reason=, details=)` records a refusal (vvops.store.refusals)."""
    ctx = IdentityContext.from_config(cfg)
    statement = action_statement(action=action, person=person, subject=subject, details=details,
                                 environment=ctx.environment, chain_id=ctx.chain_id, expires=_expires(args))
    if getattr(args, "print_typed_data", False):
        print(statement.json())
        raise PrintedTypedData()
    proof = proof_from_args(args, statement, ctx, person)
    if proof is None:
        outcome: Proven | Refused = Refused(NO_PROOF, f"{person} must prove who they are on {ctx.environment}: "
                                                      "--keystore FILE, --key-env VAR or --signature 0x...")
    else:
        outcome = prove(proof, statement, ctx)
    if isinstance(outcome, Refused):
        audit(actor=person, action=f"{action}.refused", subject=subject, rule=f"identity.{outcome.reason}",
              reason=outcome.message, details={**details, "proof": outcome.kind, **outcome.evidence})
        raise IdentityError(f"{action} refused: {outcome.message}")
    checked: dict[str, Any] = {}
    if authorize is not None:
        from .actions import ActionRefused

        try:
            checked = authorize(ctx.person(outcome.person)) or {}
        except ActionRefused as refused:
            audit(actor=outcome.person, action=f"{action}.refused", subject=subject, rule=refused.rule,
                  reason=str(refused), details={**details, "proof": outcome.kind, **outcome.evidence})
            raise IdentityError(f"{action} refused: {refused}") from None
    return Proven(outcome.person, outcome.kind, {**outcome.evidence, **checked, "statement": statement.digest()})


# ---------------------------------------------------------------------------- vvops approve


def add_commands(sub: Any, *, run_handler: Callable[[argparse.Namespace], int], store_url: Callable[[], str],
                 error: type[Exception]) -> None:
    """Register `vvops approve` and `vvops propose` on the top-level subparsers."""
    approve = sub.add_parser("approve", help="decide on an approval request, signed with your key (EIP-712)")
    approve.add_argument("request", type=int, help="approval request id (#N in Slack and the Prefect UI)")
    approve.add_argument("--decision", required=True, choices=("approve", "reject"))
    approve.add_argument("--reason", required=True, help="why (kept in the audit log)")
    approve.add_argument("--as", dest="person", help="your person id (checked against the signer); "
                                                     "devnet: whose devnet key signs")
    add_signer_options(approve)
    approve.set_defaults(handler=lambda args: _cmd_approve(args, store_url=store_url, error=error))

    propose = sub.add_parser("propose", help="start a procedure as its proven proposer (signed proposal)")
    propose.add_argument("flow", help="parameter-change, upgrade-rollout, unpause or acknowledge-alert")
    propose.add_argument("--as", dest="person", required=True, help="your person id from config/team.yaml")
    propose.add_argument("--environment", "-e", default="devnet")
    propose.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE")
    propose.add_argument("--json", action="store_true", help="print a JSON summary")
    add_signer_options(propose)
    propose.set_defaults(handler=lambda args: _cmd_propose(args, run_handler=run_handler, error=error))

    identity = sub.add_parser("identity", help="roster keys and addresses").add_subparsers(title="identity commands")
    dkey = identity.add_parser("devnet-key", help="a person's public devnet key and address (trusted on the devnet only)")
    dkey.add_argument("person")
    dkey.set_defaults(handler=lambda args: _cmd_devnet_key(args, error=error))


def _cmd_devnet_key(args: argparse.Namespace, *, error: type[Exception]) -> int:
    from vvops.config import load_config

    from .keys import devnet_address

    if args.person not in {p.id for p in load_config(environment=None).people}:
        raise error(f"{args.person!r} is not on the roster in config/team.yaml")
    print(f"{devnet_address(args.person)} 0x{devnet_key(args.person).hex()}  "
          "(public: anybody can derive it; only environments with identity.devnet_keys trust it)")
    return 0


def _cmd_approve(args: argparse.Namespace, *, store_url: Callable[[], str], error: type[Exception]) -> int:
    from vvops.approvals import service
    from vvops.config import load_config
    from vvops.store import make_engine, migrate

    url = store_url()
    migrate(url)
    engine = make_engine(url)
    try:
        state = service.get_state(engine, args.request)
    except KeyError:
        raise error(f"no approval request #{args.request}") from None
    environment = str(state.details.get("environment") or "devnet")
    ctx = IdentityContext.from_config(load_config(environment=environment))
    statement = service.statement_for(state, args.decision)
    if args.print_typed_data:
        print(statement.json())
        return 0
    proof = proof_from_args(args, statement, ctx, args.person) if args.person else \
        (Eip712Proof(args.signature) if args.signature else None)
    if proof is None and not (args.keystore or args.key_env):
        raise error("sign the decision: --keystore FILE or --key-env VAR (or --signature 0x...; devnet: --as PERSON)")
    if proof is None:
        try:
            key = load_key(keystore=args.keystore, password_env=args.password_env, key_env=args.key_env)
        except KeyError_ as exc:
            raise error(str(exc)) from None
        proof = Eip712Proof(sign_statement(statement, key))
    result = service.record_decision(engine, request_id=state.id, decision=args.decision, reason=args.reason,
                                     source="api", proof=proof, identity=ctx, context={"via": "vvops approve"})
    if not result.accepted:
        raise error(f"decision on #{state.id} refused: {result.refusal_reason}: {result.message}")
    woke = "no paused run to wake"
    if result.state.flow_run_id:
        import os

        from vvops.slack_app.server import prefect_resume

        api = os.environ.get("PREFECT_API_URL")
        if not api:
            from vvops.services import apply_prefect_runtime_env

            api = apply_prefect_runtime_env()["PREFECT_API_URL"]
        woke = prefect_resume(api)(
            result.state.flow_run_id, {"decision": args.decision, "reason": args.reason, "signature": "recorded:cli"})
    decided = service.get_decision(engine, result.decision_id)
    print(f"#{state.id}: {args.decision} by {decided.approver if decided else '?'} accepted (proof: {proof.kind}); "
          f"request {result.state.status}; run {woke}")
    return 0


def _cmd_propose(args: argparse.Namespace, *, run_handler: Callable[[argparse.Namespace], int],
                 error: type[Exception]) -> int:
    import inspect

    from deployments import spec_for
    from vvops.cli_params import ParameterError, validate_flow_params
    from vvops.config import load_config

    from .statements import flow_proposal

    try:
        spec = spec_for(args.flow)
    except KeyError as exc:
        raise error(str(exc.args[0])) from None
    fn = spec.load_flow().fn
    names = inspect.signature(fn).parameters
    who = next((n for n in ("proposer", "requested_by", "acknowledged_by") if n in names), None)
    if who is None or "proposal_signature" not in names:
        raise error(f"{spec.flow_name} is not a proposed procedure: use `vvops run {spec.flow_name}`")
    pairs = [p for p in args.param if not p.split("=", 1)[0] in (who, "proposal_signature", "proposal_expires")]
    try:
        values = validate_flow_params(fn, pairs + [f"{who}={json.dumps(args.person)}"],
                                      fixed={"environment": args.environment})
    except ParameterError as exc:
        raise error(f"{spec.flow_name}: {exc}") from None
    ctx = IdentityContext.from_config(load_config(environment=args.environment))
    procedure = spec.flow_name.replace("-", "_")
    statement = flow_proposal(flow_fn=fn, values=values, procedure=procedure, proposer=args.person,
                              environment=args.environment, chain_id=ctx.chain_id, expires=_expires(args))
    if args.print_typed_data:
        print(statement.json())
        return 0
    proof = proof_from_args(args, statement, ctx, args.person)
    if not isinstance(proof, Eip712Proof):
        raise error(f"{args.person} must sign the proposal: --keystore FILE, --key-env VAR or --signature 0x...")
    args.param = pairs + [f"{who}={json.dumps(args.person)}", f"proposal_signature={proof.signature}",
                          f"proposal_expires={statement.expires}"]
    return run_handler(args)
