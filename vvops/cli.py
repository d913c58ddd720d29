"""`vvops`: bring the system up, run a flow now, check config, manage the devnet and the store.

Prefect is imported only inside the commands that need it, after the runtime environment is set,
so that `vvops config check` stays fast and every child process sees the same API URL.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from vvops import paths
from vvops.identity.cli import add_commands as add_identity_commands
from vvops.identity.cli import add_signer_options
from vvops.services import DEFAULT_PREFECT_PORT

EXIT_OK, EXIT_WARN, EXIT_CRIT, EXIT_UNKNOWN = 0, 1, 2, 3


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every failure ends in one line on stderr and a non-zero exit, never a traceback
    (VVOPS_DEBUG=1 re-raises unexpected errors for a developer)."""
    try:
        return _main(argv)
    except BrokenPipeError:  # `vvops checklist show | head`: the reader left; say nothing more
        _silence_stdout()
        return 141
    except KeyboardInterrupt:
        return 130


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except CliError as exc:
        print(f"vvops: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        message = _operator_error_message(exc)
        if message is None:
            if os.environ.get("VVOPS_DEBUG"):
                raise
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            message = f"vvops: {type(exc).__name__}: {first} (unexpected; VVOPS_DEBUG=1 shows the traceback)"
        print(message, file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _operator_error_message(exc: Exception) -> str | None:
    """What to print for a failure an operator can fix (bad config, a service not up): no traceback."""
    from vvops.cli_params import ParameterError
    from vvops.config import ConfigError
    from vvops.chain.anvil import AnvilError
    from vvops.devnet.service import DevnetError
    from vvops.services import ServiceError
    from vvops.store.db import StoreError

    if isinstance(exc, ConfigError):
        return "\n".join(str(p) for p in exc.problems)
    if isinstance(exc, (AnvilError, DevnetError, ServiceError, StoreError, ParameterError)):
        return f"vvops: {exc}"
    if isinstance(exc, (OverflowError, OSError)):
        return f"vvops: {exc}"
    response = getattr(exc, "response", None)
    if getattr(response, "status_code", None) == 401:
        return ("vvops: the Prefect API refused us (401 Unauthorized): set PREFECT_API_AUTH_STRING to the server's "
                "user:password (docs/deployment.md, Locking the Prefect API)")
    return None


def _store_url() -> str:
    """The ops store URL: VVOPS_STORE_URL, else config's store.url (relative SQLite paths in the state dir)."""
    from vvops.config import load_config

    return load_config(environment=None).store.resolved_url().get_secret_value()


class CliError(Exception):
    """An expected failure with a message for the user (no traceback)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `vvops devnet history: argument --days: ... (--help for usage)`."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (`{self.prog} --help` for usage)\n")


def _int_at_least(minimum: int, maximum: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"{value} is out of range: it must be {bound}")
        return value

    return parse


_PORT = _int_at_least(1, 65535)
_DAYS = _int_at_least(1, 3650)


def _seconds(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0 or value > 86400 * 365:
        raise argparse.ArgumentTypeError(f"{text} is out of range: between 0 and one year of seconds")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vvops", description="VeritasVault Ops: the operations playbook as Prefect flows.")
    sub = parser.add_subparsers(title="commands")

    up = sub.add_parser("up", help="start devnet, store, Prefect server and every deployment (foreground; Ctrl-C stops all)")
    up.add_argument("--environment", "-e", default="devnet")
    up.add_argument("--port", type=_PORT, default=DEFAULT_PREFECT_PORT, help="Prefect server/UI port (default 4200)")
    up.add_argument("--anvil-port", type=_PORT, default=8545)
    up.add_argument("--no-devnet", action="store_true", help="do not start the local devnet")
    up.add_argument("--activity-interval", type=_seconds, default=2.0, help="seconds between synthetic devnet transactions (0: none)")
    up.add_argument("--block-time", type=_seconds, default=2.0, help="devnet seconds per block (default 2; 0: one block per tx)")
    up.add_argument("--slack-port", type=_PORT, default=3000, help="port of the Slack interactions endpoint")
    up.add_argument("--status-port", type=_PORT, default=8088, help="port of the public status page (default 8088)")
    up.add_argument("--demo-history", action="store_true",
                    help="seed a fresh devnet store with 90 days of generated demo history (off: reviews show live data only)")
    up.add_argument("--no-history", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for scripts
    up.add_argument("--governance", choices=("eoa", "safe"), default="eoa",
                    help="devnet: safe = a Safe multisig holds the timelock's proposer role (mirrors mainnet)")
    up.add_argument("--profile", choices=("embedded", "production"), default="embedded",
                    help="embedded: SQLite, deployments served in-process; production: PostgreSQL, work pool and workers")
    up.add_argument("--workers", type=_int_at_least(1, 64), default=2, help="production profile: number of workers (default 2)")
    up.add_argument("--prefect-api-url", default=None, metavar="URL",
                    help="use this existing Prefect server (or Prefect Cloud workspace) instead of starting one; "
                         "credentials from PREFECT_API_KEY or PREFECT_API_AUTH_STRING")
    up.add_argument("--metrics-port", type=_int_at_least(0, 65534), default=9470,
                    help="Prometheus /metrics of the ops exporter (default 9470; 0: none); the watcher's on the next port")
    up.set_defaults(handler=_cmd_up)

    run = sub.add_parser("run", help="run one flow now and wait for it")
    run.add_argument("flow", help="flow name, e.g. daily-checks")
    run.add_argument("--environment", "-e", default="devnet")
    run.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE", help="flow parameter (JSON values allowed)")
    run.add_argument("--json", action="store_true", help="print a JSON summary")
    run.set_defaults(handler=_cmd_run)

    status = sub.add_parser("status", help="say what is up")
    status.add_argument("--port", type=_PORT, default=DEFAULT_PREFECT_PORT)
    status.add_argument("--prefect-api-url", default=None, metavar="URL",
                        help="the Prefect API to report on (default: $PREFECT_API_URL, else the local server on --port)")
    status.set_defaults(handler=_cmd_status)

    config = sub.add_parser("config", help="configuration commands").add_subparsers(title="config commands")
    check = config.add_parser("check", help="validate every file in config/")
    check.add_argument("--environment", "-e", default=None, help="validate one environment (default: all)")
    check.add_argument("--config-dir", type=Path, default=None)
    check.set_defaults(handler=_cmd_config_check)

    devnet = sub.add_parser("devnet", help="the local anvil devnet").add_subparsers(title="devnet commands")
    dup = devnet.add_parser("up", help="start anvil, deploy the contracts, keep synthetic activity going (foreground)")
    dup.add_argument("--port", type=_PORT, default=8545)
    dup.add_argument("--block-time", type=_seconds, default=2.0, help="seconds per block (default 2; 0: one block per tx)")
    dup.add_argument("--activity-interval", type=_seconds, default=2.0)
    dup.add_argument("--governance", choices=("eoa", "safe"), default="eoa",
                     help="safe: a Safe v1.4.1 (2 of 3 leads) holds the timelock's proposer role, as on mainnet")
    dup.add_argument("--protocol", choices=("veritasvault", "openzeppelin"), default="veritasvault",
                     help="which reference protocol to deploy: ours (default) or the OpenZeppelin 5 one "
                          "(use it with `-e devnet-oz`)")
    dup.set_defaults(handler=_cmd_devnet_up)
    devnet.add_parser("down", help="stop a devnet started by `vvops devnet up`").set_defaults(handler=_cmd_devnet_down)
    devnet.add_parser("status", help="is the devnet up").set_defaults(handler=_cmd_devnet_status)
    scenario = devnet.add_parser("scenario", help="make something happen on the devnet for the watcher to detect")
    scenario.add_argument("name", choices=("drain", "rogue-upgrade", "param-drift", "rpc-outage", "reorg"))
    scenario.add_argument("--seconds", type=_seconds, default=None, help="rpc-outage: how long the primary RPC is down")
    scenario.add_argument("--proxy-port", type=_PORT, default=None, help="rpc-outage: port of the proxy the watcher uses first")
    scenario.set_defaults(handler=_cmd_devnet_scenario)
    history = devnet.add_parser("history", help="fill the store with deterministic demo history (metrics, incidents, ...)")
    history.add_argument("--days", type=_DAYS, default=90)
    history.add_argument("--seed", type=int, default=7)
    history.set_defaults(handler=_cmd_devnet_history)

    store = sub.add_parser("store", help="the ops store").add_subparsers(title="store commands")
    store.add_parser("migrate", help="upgrade the store schema to head").set_defaults(handler=_cmd_store_migrate)
    store.add_parser("current", help="print the store's schema revision").set_defaults(handler=_cmd_store_current)
    verify = store.add_parser("verify-audit", help="verify the keyed hash chain of the audit log (and a published head)")
    verify.add_argument("--anchor", default=None, metavar="HEAD",
                        help="a published head: ROWS:HASH, an anchor line, or the anchor file (its last line); "
                             "HEAD alone means this store's anchor file")
    verify.set_defaults(handler=_cmd_store_verify_audit)

    watch = sub.add_parser("watch", help="follow the chain block by block and raise alerts (foreground)")
    watch.add_argument("--environment", "-e", default="devnet")
    watch.add_argument("--metrics-port", type=_int_at_least(0, 65535), default=9471,
                       help="Prometheus /metrics port (default 9471; 0: none)")
    watch.add_argument("--metrics-host", default="127.0.0.1")
    watch.set_defaults(handler=_cmd_watch)

    exporter = sub.add_parser("metrics-endpoint", help="serve the store and Prefect as Prometheus /metrics and "
                                                       "receive Alertmanager webhooks (foreground)")
    exporter.add_argument("--host", default="127.0.0.1")
    exporter.add_argument("--port", type=_PORT, default=9470)
    exporter.add_argument("--environment", "-e", default="devnet")
    exporter.set_defaults(handler=_cmd_metrics_endpoint)

    checklist = sub.add_parser("checklist", help="team activities of a cadence (standup, reviews, ...)").add_subparsers(
        title="checklist commands")
    show = checklist.add_parser("show", help="list a cadence's checklist items and their ids")
    show.add_argument("cadence", choices=("daily", "weekly", "monthly"))
    show.set_defaults(handler=_cmd_checklist_show)
    confirm = checklist.add_parser("confirm", help="record that a person did a checklist item (audited)")
    confirm.add_argument("item_id")
    confirm.add_argument("--by", required=True, help="person id from config/team.yaml")
    confirm.add_argument("--note", default="")
    add_signer_options(confirm)
    confirm.set_defaults(handler=_cmd_checklist_confirm)

    from vvops.procedures.action_items_cli import add_parser as add_action_items_parser

    add_action_items_parser(sub)
    from vvops.communications.cli import add_parser as add_notified_parser

    add_notified_parser(sub)
    from vvops.safe.cli import add_parser as add_safe_parser

    add_safe_parser(sub, _safe_cli_errors)

    drill = sub.add_parser("drill", help="drills people run (tabletop...)").add_subparsers(title="drill commands")
    record = drill.add_parser("record", help="record a drill with its participants and findings (audited)")
    record.add_argument("--kind", required=True, help="tabletop | store-restore | rpc-failover | incident-response | "
                                                       "key-compromise | emergency-pause")
    record.add_argument("--scenario", required=True, help="what was exercised")
    record.add_argument("--participant", action="append", default=[], help="person id (repeat)")
    record.add_argument("--finding", action="append", default=[], help="what the drill found (repeat)")
    record.add_argument("--at", default=None, help="when it started (ISO 8601, UTC; default now)")
    record.add_argument("--minutes", type=float, default=60.0, help="how long it took")
    record.add_argument("--failed", action="store_true", help="the drill did not meet its goal")
    record.add_argument("--by", required=True, help="who records it (person id from config/team.yaml; proven by "
                                                    "their signature like every CLI action)")
    add_signer_options(record)
    record.set_defaults(handler=_cmd_drill_record)

    silence = sub.add_parser("silence", help="ad-hoc alert silences (like amtool silence)").add_subparsers(
        title="silence commands")
    sadd = silence.add_parser("add", help="mute alerts matching every matcher for a while (audited)")
    sadd.add_argument("matchers", nargs="+", help='Alertmanager matchers, e.g. alertname="rpc_down" chain="mainnet"')
    sadd.add_argument("--for", dest="duration", default="1h", help="how long: 30m, 2h, 1d, 1h30m (default 1h)")
    sadd.add_argument("--by", required=True, help="person id from config/team.yaml")
    sadd.add_argument("--reason", required=True)
    add_signer_options(sadd)
    sadd.set_defaults(handler=_cmd_silence_add)
    slist_ = silence.add_parser("list", help="silences in force or to come (--all: also ended ones)")
    slist_.add_argument("--all", action="store_true")
    slist_.set_defaults(handler=_cmd_silence_list)
    sexp = silence.add_parser("expire", help="end a silence now (audited)")
    sexp.add_argument("silence_id")
    sexp.add_argument("--by", required=True, help="person id from config/team.yaml")
    add_signer_options(sexp)
    sexp.set_defaults(handler=_cmd_silence_expire)

    slots = sub.add_parser("slots", help="per-contract change slots (one parameter change or upgrade at a time)"
                           ).add_subparsers(title="slots commands")
    slist = slots.add_parser("list", help="each contract's slot and the change holding it")
    slist.add_argument("--environment", "-e", default="devnet")
    slist.set_defaults(handler=_cmd_slots_list)
    srel = slots.add_parser("release", help="free a contract's slot whose run died (audited)")
    srel.add_argument("contract")
    srel.add_argument("--environment", "-e", default="devnet")
    srel.add_argument("--by", required=True, help="person id from config/team.yaml")
    srel.add_argument("--reason", required=True)
    add_signer_options(srel)
    srel.set_defaults(handler=_cmd_slots_release)
    add_identity_commands(sub, run_handler=_cmd_run, store_url=_store_url, error=CliError)

    slack = sub.add_parser("slack-endpoint", help="serve Slack's interactive buttons (Approve/Reject) on HTTP")
    slack.add_argument("--host", default="127.0.0.1")
    slack.add_argument("--port", type=_PORT, default=3000)
    slack.add_argument("--environment", "-e", default="devnet")
    slack.set_defaults(handler=_cmd_slack_endpoint)

    from vvops.status_page.cli import add_commands as add_status_page_commands

    add_status_page_commands(sub, _PORT)

    blocks = sub.add_parser("blocks", help="Prefect blocks").add_subparsers(title="blocks commands")
    reg = blocks.add_parser("register", help="register the chain, Slack and store blocks from config")
    reg.add_argument("--environment", "-e", default="devnet")
    reg.set_defaults(handler=_cmd_blocks_register)
    return parser


# --- config -------------------------------------------------------------------------------------------


def _cmd_config_check(args: argparse.Namespace) -> int:
    from vvops.config import check_config, config_summary

    config_dir = args.config_dir or paths.config_dir()
    problems = check_config(config_dir, args.environment)
    if problems:
        for line in problems:
            print(line)
        print(f"{len(problems)} problem(s) in {config_dir}", file=sys.stderr)
        return 1
    print(f"config OK: {config_summary(config_dir)}")
    return 0


def _safe_cli_errors(handler):
    """`vvops safe ...` handlers raise SafeCliError: one line and its exit code, like every CliError."""
    from vvops.safe.cli import SafeCliError

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except SafeCliError as error:
            raise CliError(str(error), error.exit_code) from None

    return run


def _require_valid_config(environment: str) -> None:
    from vvops.config import check_config

    problems = check_config(paths.config_dir(), environment)
    if len(problems) == 1:
        raise CliError(f"{problems[0]} (`vvops config check` re-checks)")
    if problems:
        raise CliError("configuration is invalid:\n" + "\n".join(problems) + "\n(fix the lines above; `vvops config check` re-checks)")


# --- store --------------------------------------------------------------------------------------------


def _cmd_store_migrate(args: argparse.Namespace) -> int:
    from vvops.store.db import migrate, redact_url

    url = _store_url()
    migrate(url)
    print(f"store migrated: {redact_url(url)}")
    return 0


def _cmd_store_current(args: argparse.Namespace) -> int:
    from vvops.store.db import current_revision

    print(current_revision(_store_url()) or "(empty: run `vvops store migrate`)")
    return 0


def _cmd_store_verify_audit(args: argparse.Namespace) -> int:
    from vvops.config import load_config
    from vvops.store.audit import AuditAnchor, audit_key_env, verify_audit_chain
    from vvops.store.db import make_engine, session_scope

    store = load_config(environment=None).store
    _point_at_audit_key(store)
    anchor = None
    if args.anchor is not None:
        source = str(store.anchor_path()) if args.anchor == "HEAD" else args.anchor
        try:
            anchor = AuditAnchor.parse(source)
        except (OSError, ValueError, KeyError) as error:
            raise CliError(f"--anchor {args.anchor}: {error}", exit_code=2) from None
    with session_scope(make_engine(_store_url())) as session:
        result = verify_audit_chain(session, anchor=anchor)
    key_note = f" (devnet default key: set ${audit_key_env()} outside the devnet)" if result.devnet_key else ""
    if result.ok:
        print(f"audit chain OK: {result.checked} rows checked" + (f", anchor {anchor} matches" if anchor else "")
              + key_note)
        return 0
    print(f"audit chain BROKEN ({result.problem}): {result.reason}" + key_note)
    return 1


def _point_at_audit_key(store: Any) -> None:
    """Every process we start reads the audit key from the variable config names (it is never in a file)."""
    from vvops.store.audit import AUDIT_KEY_ENV_POINTER

    os.environ[AUDIT_KEY_ENV_POINTER] = store.audit_key_env


# --- devnet -------------------------------------------------------------------------------------------


def _cmd_devnet_up(args: argparse.Namespace) -> int:
    from vvops.devnet.service import devnet_up

    devnet_up(port=args.port, block_time=args.block_time or None, activity_interval=args.activity_interval,
              governance=args.governance, protocol=args.protocol)
    return 0


def _cmd_devnet_down(args: argparse.Namespace) -> int:
    from vvops.devnet.service import devnet_down

    devnet_down()
    return 0


def _cmd_devnet_status(args: argparse.Namespace) -> int:
    from vvops.devnet.service import devnet_status

    status = devnet_status()
    print(json.dumps(status, indent=2, default=str))
    return 0 if status.get("running") else 1


def _cmd_devnet_scenario(args: argparse.Namespace) -> int:
    from vvops.devnet.deploy import load_devnet_file
    from vvops.devnet.scenarios import run_scenario

    options = {k: v for k, v in (("seconds", args.seconds), ("proxy_port", args.proxy_port)) if v is not None}
    report = run_scenario(args.name, devnet_info=load_devnet_file(), **options)
    print(report.summary())
    return 0


def _cmd_devnet_history(args: argparse.Namespace) -> int:
    from vvops.history import generate_history
    from vvops.store.db import make_engine, migrate, redact_url

    url = _store_url()
    migrate(url)
    counts = generate_history(engine=make_engine(url), days=args.days, seed=args.seed)
    print(f"history for {args.days} days written to {redact_url(url)}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def _cmd_watch(args: argparse.Namespace) -> int:
    import threading

    from vvops.services import apply_prefect_runtime_env

    apply_prefect_runtime_env()
    _require_valid_config(args.environment)
    from vvops.watcher import run_watcher

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    metrics = None
    if args.metrics_port:
        from vvops.observability.exporter import serve_registry
        from vvops.observability.watcher_metrics import WatcherMetrics

        metrics = WatcherMetrics()
        serve_registry(metrics.registry, args.metrics_host, args.metrics_port)
    pid_file = paths.state_dir() / f"watcher-{args.environment}.pid"  # read by `vvops status`
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")
    try:
        stats = run_watcher(environment=args.environment, stop_event=stop, containment=True, metrics=metrics)
    finally:
        if pid_file.read_text().strip() == str(os.getpid()):
            pid_file.unlink(missing_ok=True)
    print(f"watcher stopped: {stats}")
    return 0


def _cmd_checklist_show(args: argparse.Namespace) -> int:
    from vvops.coverage.checklists import checklist_for

    for item in checklist_for(args.cadence):
        print(f"{item.id:<40} {item.owner_role:<20} {item.text}")
    return 0


def _cmd_checklist_confirm(args: argparse.Namespace) -> int:
    from vvops.coverage.checklists import CONFIRM_ACTION, checklist_for
    from vvops.store import append_audit

    items = {item.id: item for cadence in ("daily", "weekly", "monthly") for item in checklist_for(cadence)}
    if args.item_id not in items:
        raise CliError(f"unknown checklist item {args.item_id!r}: `vvops checklist show daily|weekly|monthly` lists them")
    from vvops.identity.actions import authorize_checklist

    item = items[args.item_id]
    cfg = _cli_config()
    proven = _prove_cli_action(args, cfg, action=CONFIRM_ACTION, subject=f"checklist:{args.item_id}",
                               details={"note": args.note},
                               authorize=lambda p: authorize_checklist(p, owner_role=item.owner_role,
                                                                       actions=cfg.procedures.actions))
    with _store_session() as session:
        append_audit(session, actor=proven.person, action=CONFIRM_ACTION, subject=f"checklist:{args.item_id}",
                     source="cli", details={"text": item.text, "note": args.note, "proof": proven.kind,
                                            **proven.evidence})
    print(f"recorded: {args.by} confirmed {args.item_id}")
    return 0


def _cmd_drill_record(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from datetime import datetime, timezone

    from vvops.resilience.drills import RECORD_ACTION, DrillError, DrillRecord, record_drill, validate_drill

    try:
        at = datetime.fromisoformat(args.at) if args.at else datetime.now(timezone.utc)
    except ValueError:
        raise CliError(f"--at {args.at!r}: expected an ISO 8601 time, e.g. 2026-11-30T14:00") from None
    record = DrillRecord(kind=args.kind, scenario=args.scenario, participants=tuple(args.participant),
                         findings=tuple(args.finding), started_at=at, duration_minutes=args.minutes,
                         ok=not args.failed, recorded_by=args.by)
    try:
        validate_drill(record)
    except DrillError as error:
        raise CliError(str(error)) from None
    cfg = _cli_config()
    for person in args.participant:
        _require_on_roster(person, cfg)
    proven = _prove_cli_action(args, cfg, action=RECORD_ACTION, subject=f"drill:{args.kind}",
                               details={"kind": args.kind, "scenario": args.scenario[:500], "at": at.isoformat(),
                                        "participants": sorted(set(args.participant)), "ok": not args.failed,
                                        "findings": len(args.finding)})
    record = replace(record, recorded_by=proven.person, proof={"proof": proven.kind, **proven.evidence})
    try:
        with _store_session() as session:
            drill_id = record_drill(session, record)
    except DrillError as error:
        raise CliError(str(error)) from None
    print(f"recorded: {args.kind} drill #{drill_id} with {len(set(args.participant))} participant(s), "
          f"{len(args.finding)} finding(s)")
    return 0


def _first_problem(error: Exception) -> str:
    """One line from a pydantic ValidationError (field: message), else the error's text."""
    errors = getattr(error, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if not isinstance(p, int)) or "silence"
        return f"{where}: {first.get('msg', '')}".replace("Value error, ", "")
    return str(error).splitlines()[0]


def _cli_config(environment: str | None = None):
    from vvops.config import load_config

    return load_config(environment=environment)


def _prove_cli_action(args: argparse.Namespace, cfg: Any, *, action: str, subject: str, details: dict[str, Any],
                      authorize: Any = None):
    """Prove `--by` with a signature (or what the environment trusts) and check their roles; refusals are
    audited with the rule that refused them (vvops.identity.cli)."""
    from vvops.identity.cli import IdentityError, PrintedTypedData, prove_action
    from vvops.store.refusals import audit_refusal

    def audit(**row: Any) -> None:
        with _store_session() as session:
            audit_refusal(session, source="cli", **row)

    try:
        return prove_action(args, cfg=cfg, action=action, person=args.by, subject=subject, details=details,
                            audit=audit, authorize=authorize)
    except PrintedTypedData:
        raise SystemExit(0) from None
    except IdentityError as error:
        raise CliError(str(error)) from None


def _require_on_roster(person: str, cfg: Any = None) -> None:
    from vvops.config import load_config

    if person not in {p.id for p in (cfg or load_config(environment=None)).people}:
        audit_cli_refusal(actor=person, rule="roster", reason=f"{person!r} is not on the roster")
        raise CliError(f"{person!r} is not on the roster in config/team.yaml")


def audit_cli_refusal(*, actor: str, rule: str, reason: str, subject: str | None = None,
                      details: dict[str, Any] | None = None) -> None:
    """Record a refused CLI action (`cli.refused`, with the rule and the command line, bounded); the refusal
    stands even when the store cannot be written."""
    from vvops.store.refusals import audit_refusal

    command = "cli:" + " ".join(arg for arg in sys.argv[1:3] if not arg.startswith("-"))
    try:
        with _store_session() as session:
            audit_refusal(session, actor=actor or "(unknown)", action="cli.refused", subject=subject or command,
                          source="cli", rule=rule, reason=reason, details={"argv": sys.argv[1:], **(details or {})})
    except Exception:  # noqa: BLE001
        pass


def _store_session(*, write: bool = True):
    """A session on the ops store, migrated first (CLI commands that record or list something)."""
    from vvops.store import make_engine, migrate, session_scope

    url = _store_url()
    migrate(url)
    return session_scope(make_engine(url), immediate=write)


def _cmd_silence_add(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from vvops.alerting.silence_store import SilenceError, add_silence
    from vvops.config.alerting_schema import parse_duration

    try:
        duration = parse_duration(args.duration)
    except (ValueError, TypeError) as error:
        raise CliError(f"--for {args.duration!r}: {error} (write 30m, 2h, 1d or 1h30m)") from None
    now = datetime.now(timezone.utc)
    try:
        now + duration
    except OverflowError:
        raise CliError(f"--for {args.duration!r}: too long (ends after the year 9999)") from None
    from vvops.config.alerting_schema import SilenceSpec
    from vvops.identity.actions import authorize_silence

    try:  # matchers first (Alertmanager's rules), so a malformed silence is refused before anyone signs
        checked = SilenceSpec.model_validate({"matchers": args.matchers, "starts_at": now, "ends_at": now + duration,
                                              "created_by": args.by, "reason": args.reason})
    except Exception as error:  # noqa: BLE001 - pydantic's message, one line
        raise CliError(f"silence not created: {_first_problem(error)}") from None
    cfg = _cli_config()
    proven = _prove_cli_action(args, cfg, action="silence.created", subject="silence:new",
                               details={"matchers": list(args.matchers), "duration_s": int(duration.total_seconds()),
                                        "reason": args.reason},
                               authorize=lambda p: authorize_silence(p, matchers=checked.matchers, duration=duration,
                                                                     reason=args.reason, alerting=cfg.alerting))
    try:
        with _store_session() as session:
            spec = add_silence(session, matchers=args.matchers, starts_at=now, ends_at=now + duration,
                               created_by=proven.person, reason=args.reason,
                               proof={"proof": proven.kind, **proven.evidence})
    except SilenceError as error:
        audit_cli_refusal(actor=args.by, rule="silences", reason=str(error), subject="silence:add")
        raise CliError(f"silence not created: {error}") from None
    print(f"{spec.id} mutes {' '.join(args.matchers)} until {spec.ends_at.isoformat(timespec='seconds')}")
    return 0


def _cmd_silence_list(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from vvops.alerting.silence_store import list_silences

    now = datetime.now(timezone.utc)
    with _store_session(write=False) as session:
        rows = list_silences(session, now, include_ended=args.all)
        for row in rows:
            ended = row.expired_at or (row.ends_at if row.ends_at <= now else None)
            state = f"ended {ended.isoformat(timespec='seconds')}" if ended else \
                f"until {row.ends_at.isoformat(timespec='seconds')}"
            print(f"{row.id:<13} {state:<32} {row.created_by:<10} {' '.join(row.matchers)}  ({row.reason})")
    if not rows:
        print("no silences" + ("" if args.all else " in force (--all shows ended ones)"))
    return 0


def _cmd_silence_expire(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from vvops.alerting.silence_store import SilenceError, expire_silence

    from vvops.identity.actions import authorize_silence
    from vvops.store.models import SilenceRecord

    with _store_session(write=False) as session:
        row = session.get(SilenceRecord, args.silence_id)
        matchers = list(row.matchers) if row is not None else None
    if matchers is None:
        raise CliError(f"no silence {args.silence_id!r}: `vvops silence list` shows the ids")
    from datetime import timedelta

    from vvops.config.alerting_schema import Matcher

    cfg = _cli_config()
    parsed = [Matcher.parse(m) for m in matchers]
    # ending a silence early is safe (alerts notify again), but it is someone's decision: proven, and by a
    # person who could have created it
    proven = _prove_cli_action(args, cfg, action="silence.expired", subject=f"silence:{args.silence_id}",
                               details={"matchers": matchers},
                               authorize=lambda p: authorize_silence(p, matchers=parsed, duration=timedelta(0),
                                                                     reason="expire", alerting=cfg.alerting))
    try:
        with _store_session() as session:
            expire_silence(session, args.silence_id, by=proven.person, now=datetime.now(timezone.utc))
    except SilenceError as error:
        raise CliError(str(error)) from None
    print(f"{args.silence_id} expired: its alerts notify again from the next sweep")
    return 0


def _prefect_api_or_fail() -> None:
    from vvops.services import api_is_healthy, apply_prefect_runtime_env

    env = apply_prefect_runtime_env()
    if not api_is_healthy(env["PREFECT_API_URL"]):
        raise CliError(f"the Prefect API at {env['PREFECT_API_URL']} is not answering: start it with `./vv up`")


def _cmd_slots_list(args: argparse.Namespace) -> int:
    from vvops.config import load_config

    cfg = load_config(environment=args.environment)
    _prefect_api_or_fail()
    from tasks.contract_slots import slot_status

    for row in slot_status([(args.environment, c.name) for c in cfg.contracts.contracts]):
        taken = "not created yet" if row["active_slots"] is None else f"{row['active_slots']}/1 taken"
        print(f"{row['contract']:<16} {row['limit']:<40} {taken:<16} {row['holder'] or ''}")
    return 0


def _cmd_slots_release(args: argparse.Namespace) -> int:
    from vvops.config import load_config
    from vvops.store import append_audit

    cfg = load_config(environment=args.environment)
    if args.contract not in {c.name for c in cfg.contracts.contracts}:
        raise CliError(f"{args.contract!r} is not a contract in config/contracts.yaml")
    from vvops.identity.actions import authorize_slot_release

    proven = _prove_cli_action(args, cfg, action="contract_slot.force_released",
                               subject=f"{args.contract}@{args.environment}", details={"reason": args.reason},
                               authorize=lambda p: authorize_slot_release(p, cfg.procedures.actions))
    _prefect_api_or_fail()
    from tasks.contract_slots import force_release

    result = force_release(environment=args.environment, contract=args.contract)
    with _store_session() as session:
        append_audit(session, actor=proven.person, action="contract_slot.force_released", source="cli",
                     subject=f"{args.contract}@{args.environment}",
                     details={**result, "reason": args.reason, "proof": proven.kind, **proven.evidence})
    print(f"released {result['limit']}: {result['result']}")
    return 0


def _cmd_slack_endpoint(args: argparse.Namespace) -> int:
    from vvops.services import apply_prefect_runtime_env

    apply_prefect_runtime_env()
    from vvops.slack_app import serve_slack_interactions

    serve_slack_interactions(args.host, args.port, environment=args.environment)
    return 0


def _cmd_metrics_endpoint(args: argparse.Namespace) -> int:
    from vvops.services import apply_prefect_runtime_env

    env = apply_prefect_runtime_env()
    _require_valid_config(args.environment)
    from vvops.observability.exporter import serve_exporter

    serve_exporter(args.host, args.port, environment=args.environment, store_url=_store_url(),
                   prefect_api_url=env["PREFECT_API_URL"])
    return 0


def _start_metrics_endpoint(args: argparse.Namespace, supervisor: Any) -> list[str] | None:
    """The ops exporter (store + Prefect metrics, Alertmanager webhook); its argv for restarts, or None."""
    from vvops.observability.exporter import port_is_free

    if not args.metrics_port:
        _log("metrics    exporter off (--metrics-port 0)")
        return None
    if not port_is_free("127.0.0.1", args.metrics_port):
        _log(f"metrics    exporter off: port {args.metrics_port} is not free (--metrics-port)")
        return None
    argv = [sys.executable, "-m", "vvops.cli", "metrics-endpoint", "--port", str(args.metrics_port),
            "-e", args.environment]
    child = supervisor.start("metrics-endpoint", argv)
    _log(f"metrics    http://127.0.0.1:{args.metrics_port}/metrics (store, Prefect), watcher's on "
          f":{args.metrics_port + 1} (log {child.log})")
    return argv


# --- blocks -------------------------------------------------------------------------------------------


def _cmd_blocks_register(args: argparse.Namespace) -> int:
    from vvops.services import apply_prefect_runtime_env, api_is_healthy

    env = apply_prefect_runtime_env()
    if not api_is_healthy(env["PREFECT_API_URL"]):
        raise CliError(f"Prefect API at {env['PREFECT_API_URL']} is not answering: start it with `vvops up`")
    from blocks.register import register_blocks

    for line in register_blocks(environment=args.environment):
        print(line)
    return 0


# --- up -----------------------------------------------------------------------------------------------


PRODUCTION_PREFECT_DB = "postgresql+asyncpg://postgres@127.0.0.1:5432/vvops_prefect"
PRODUCTION_STORE_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/vvops_store"


def _cmd_up(args: argparse.Namespace) -> int:
    """Bring everything up in the foreground. The console shows what runs where and one line per flow run start
    and end; everything else (flow-run output, library logs) goes to .vvops/logs/up.log and the Prefect UI.
    Ctrl-C (or SIGTERM) stops every process it started, quietly."""
    import threading

    from vvops.console import ConsoleRedirect
    from vvops.services import apply_prefect_runtime_env, prefect_api_url

    started = time.monotonic()
    external = args.prefect_api_url.rstrip("/") if args.prefect_api_url else None
    api_url = external or prefect_api_url(args.port)
    apply_prefect_runtime_env(api_url=api_url)
    production = args.profile == "production"
    _require_secrets_outside_devnet(args.environment, production)
    if production:
        _apply_production_env(own_prefect_server=external is None)
    _require_valid_config(args.environment)
    if external:
        _require_external_prefect(external)
    _check_up_ports(args, api_url, external=external is not None)
    stop = threading.Event()
    serving = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:  # noqa: ARG001
        # Starting: unwind the start-up at once. Serving: the serve loop sees `stop` and returns. A second
        # signal while stopping is ignored (a second KeyboardInterrupt would escape the clean-up).
        if stop.is_set():
            return
        _UP_STATE["signalled_at"] = time.monotonic()
        stop.set()
        if not serving.is_set():
            raise KeyboardInterrupt

    # SIGTERM (systemd, kill) takes the same path as Ctrl-C; SIGINT is re-enabled for a process started with `&`.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    console = ConsoleRedirect(paths.state_dir() / "logs" / "up.log")
    with console:
        _UP_OUT[0] = console.say
        try:
            _up_services(args, api_url, started, stop, serving, production, external)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the clean-up is not interrupted
            _stop_up(started_stop=_UP_STATE.get("signalled_at") or time.monotonic())
            _UP_OUT[0] = print
    _leave_now(0)
    return 0


def _leave_now(code: int) -> None:
    """End `vvops up` once everything it started is stopped, without the interpreter's exit hooks. Prefect's
    log and event workers drain at exit and retry a request to the (now stopped) server with backoff: a
    record queued after the last drain kept the process alive for about a minute after "stopped in 2.0 s".
    Everything worth keeping was drained or written before this."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


_UP_OUT: list[Any] = [print]   # where `vvops up` says things: the terminal, also while stdout goes to the log
_UP_STATE: dict[str, Any] = {}


def _log(message: str) -> None:
    _UP_OUT[0](message)


def _check_up_ports(args: argparse.Namespace, api_url: str, *, external: bool = False) -> None:
    """Refuse to start when a port `up` needs is held by a listener (TIME_WAIT leftovers do not count)."""
    from vvops.services import api_is_healthy, port_is_free

    wanted = [] if external else [(args.port, "--port", "the Prefect server")]
    if not args.no_devnet and args.environment == "devnet":
        wanted.append((args.anvil_port, "--anvil-port", "the devnet (anvil)"))
    for port, option, what in wanted:
        if port == args.port and api_is_healthy(api_url):
            continue  # a Prefect server already answers there: `up` uses it
        if not port_is_free(port):
            raise CliError(f"port {port} on 127.0.0.1 is in use (needed by {what}): stop what listens there "
                           f"or choose another with {option}")


def _up_services(args: argparse.Namespace, api_url: str, started: float, stop: Any, serving: Any,
                 production: bool, external: str | None = None) -> None:
    from vvops.services import Supervisor, start_prefect_server

    supervisor = _UP_STATE["supervisor"] = Supervisor()
    if not args.no_devnet and args.environment == "devnet":
        from vvops.devnet.service import start_devnet_background

        devnet = _UP_STATE["devnet"] = start_devnet_background(
            port=args.anvil_port, block_time=args.block_time or None,
            activity_interval=args.activity_interval or None, governance=args.governance)
        anvil, info, _activity = devnet
        clock = f"a block every {args.block_time:g} s" if args.block_time else "a block per transaction"
        _log(f"devnet     anvil on {info.rpc_url} (chain {info.chain_id}, {clock}); addresses in {paths.devnet_file()}")

    from vvops.store.db import migrate, redact_url

    store_url = _store_url()
    migrate(store_url)
    _log(f"store      {redact_url(store_url)} (migrated to head)")
    if args.environment == "devnet" and args.demo_history and not args.no_history:
        _seed_demo_history(store_url)

    if not external:
        server, took = start_prefect_server(supervisor, port=args.port)
        where = f"started in {took:.1f} s, log {server.log}" if server else "already running"
        database = redact_url(os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL", "SQLite under .vvops/prefect"))
        _log(f"prefect    UI http://127.0.0.1:{args.port}  API {api_url} ({where}; database {database})")

    from blocks.register import register_blocks

    for line in register_blocks(environment=args.environment):
        _log(f"blocks     {line}")
    _start_slack_endpoint(args, supervisor)
    _start_status_page(args, supervisor)
    watcher_argv = [sys.executable, "-m", "vvops.cli", "watch", "-e", args.environment,
                    "--metrics-port", str(args.metrics_port + 1 if args.metrics_port else 0)]
    watcher = supervisor.start("watcher", watcher_argv)
    _log(f"watcher    following chain {args.environment} (pid {watcher.process.pid}, log {watcher.log})")
    restart = {"watcher": watcher_argv}
    # procedure runs (incident-response first) start from a process with their code already imported
    warm_argv = [sys.executable, "-m", "deployments.warm_start", "-e", args.environment]
    warm = supervisor.start("warm-start", warm_argv)
    _log(f"warm start procedure runs forked from pre-imported flow code (pid {warm.process.pid}, log {warm.log})")
    restart["warm-start"] = warm_argv
    exporter_argv = _start_metrics_endpoint(args, supervisor)
    if exporter_argv:
        restart["metrics-endpoint"] = exporter_argv
    from vvops.console import RunLines

    run_lines = _UP_STATE["run_lines"] = RunLines(api_url, _log)
    run_lines.start()
    if production:
        _run_production(args, supervisor, started, restart, stop, serving)
    else:
        _run_embedded(args, started, supervisor, restart, stop, serving)


def _stop_up(*, started_stop: float) -> None:
    """Stop everything `up` started, in parallel where it can: nothing is left running, nothing is printed but
    two lines (the time each phase took goes to the log file)."""
    import threading

    from vvops.services import stop_descendants

    _say_stopping()
    phases = {"runner": time.monotonic() - started_stop}   # serve_until stopped the runner before this
    state = dict(_UP_STATE)
    _UP_STATE.clear()
    devnet = state.get("devnet")
    devnet_stop = None
    if devnet is not None:  # the traffic stops sending and anvil stops beside the rest
        from vvops.devnet.service import stop_devnet_background

        if devnet[2] is not None:
            devnet[2].stop_event.set()
        devnet_stop = threading.Thread(target=stop_devnet_background, args=(devnet[0], devnet[2]), daemon=True)
        devnet_stop.start()
    mark = time.monotonic()
    if state.get("supervisor") is not None:  # everything but the server starts stopping now ...
        state["supervisor"].signal_all(signal.SIGTERM, keep=("prefect-server",))
    _drain_prefect_workers(timeout=1.5)  # ... while the server takes the runner's last logs and events
    phases["drain"], mark = time.monotonic() - mark, time.monotonic()
    if state.get("supervisor") is not None:
        state["supervisor"].stop_all(timeout=3.0)
    phases["children"], mark = time.monotonic() - mark, time.monotonic()
    if devnet_stop is not None:
        devnet_stop.join(5.0)
    phases["devnet"], mark = time.monotonic() - mark, time.monotonic()
    left = stop_descendants(timeout=1.0)
    phases["leftovers"] = time.monotonic() - mark
    extra = f"; ended {left} leftover process(es)" if left else ""
    print("vvops up stop phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()) + extra, flush=True)
    _log(f"stopped in {time.monotonic() - started_stop:.1f} s{extra}")


def _say_stopping() -> None:
    """Say "stopping ..." once and end the run lines: the runs the runner stops on the way out are not news."""
    if _UP_STATE.get("said_stopping"):
        return
    _UP_STATE["said_stopping"] = True
    if _UP_STATE.get("run_lines") is not None:
        _UP_STATE["run_lines"].stop()
    _log("stopping ...")


def _drain_prefect_workers(*, timeout: float) -> None:
    """Send what Prefect's log and event workers in this process still hold (at most `timeout` s in all)."""
    if "prefect" not in sys.modules:
        return
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker
    except ImportError:
        return
    deadline = time.monotonic() + timeout
    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=max(0.1, deadline - time.monotonic()), at_exit=True)
        except Exception:  # noqa: BLE001 - shutting down: a worker that cannot drain loses its last records
            pass


def _require_secrets_outside_devnet(environment: str, production: bool) -> None:
    """Outside the devnet (and in the production profile) the audit key comes from its variable (no default key)
    and the Prefect API is locked with basic auth."""
    from vvops.config import load_config

    from vvops.services import PREFECT_AUTH_ENV

    cfg = load_config(environment=environment)
    _point_at_audit_key(cfg.store)
    if not (production or not cfg.env.uses_devnet):
        return
    if not os.environ.get(cfg.store.audit_key_env):
        raise CliError(f"${cfg.store.audit_key_env} is not set: outside the devnet the audit log is keyed with a "
                       "secret of yours (e.g. `openssl rand -hex 32`), never the devnet default")
    if ":" not in os.environ.get(PREFECT_AUTH_ENV, "") and not os.environ.get("PREFECT_API_KEY"):
        raise CliError(f"${PREFECT_AUTH_ENV} is not set (as user:password): outside the devnet the Prefect API "
                       "requires it; every process `vvops up` starts sends it (docs/deployment.md)")


def _start_slack_endpoint(args: argparse.Namespace, supervisor: Any) -> None:
    """The Approve/Reject endpoint runs beside the server when Slack can sign its requests."""
    from vvops.config import load_config

    cfg = load_config(environment=args.environment)
    if cfg.slack.signing_secret() is None:
        _log(f"slack      interactions endpoint off: set ${cfg.slack.signing_secret_env} to approve from Slack")
        return
    argv = [sys.executable, "-m", "vvops.cli", "slack-endpoint", "--port", str(args.slack_port), "-e", args.environment]
    child = supervisor.start("slack-endpoint", argv)
    _log(f"slack      interactions endpoint http://127.0.0.1:{args.slack_port}/slack/interactions (log {child.log})")


def _start_status_page(args: argparse.Namespace, supervisor: Any) -> None:
    """The public status page beside the system (regenerated by every ops sweep and incident step)."""
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", args.status_port))
        except OSError:
            _log(f"status     public status page off: port {args.status_port} is in use (choose --status-port)")
            return
    child = supervisor.start("status-page", [sys.executable, "-m", "vvops.cli", "status-page", "serve",
                                             "--port", str(args.status_port), "-e", args.environment])
    _log(f"status     public status page http://127.0.0.1:{args.status_port}/status/ (log {child.log})")


def _seed_demo_history(store_url: str) -> None:
    """A fresh devnet store gets 90 days of deterministic history, so the weekly and monthly reports have data."""
    from sqlalchemy import func, select

    from vvops.history import generate_history
    from vvops.store import make_engine
    from vvops.store.models import Metric

    engine = make_engine(store_url)
    try:
        with engine.connect() as conn:
            if conn.scalar(select(func.count(Metric.id))):
                return
        counts = generate_history(engine=engine, days=90)
        _log(f"history    90 days of demo history for the reports ({counts['metrics']} generated metric points: demo data, not measured)")
    finally:
        engine.dispose()


def _print_deployments(environment: str, where: str) -> None:
    from deployments import DEPLOYMENTS, cron_for, environment_schedules

    schedules = environment_schedules(environment)
    for spec in DEPLOYMENTS:
        cron = cron_for(spec, schedules)
        _log(f"deployment {spec.flow_name + '/' + environment:<28} {cron or 'on demand':<12} {where}")


def _run_embedded(args: argparse.Namespace, started: float, supervisor: Any, restart: dict[str, list[str]],
                  stop: Any, serving: Any) -> None:
    """Serve every deployment from this process (the embedded default) until `stop` is set."""
    import threading

    from deployments.serve import runner_deployments, serve_until
    from vvops.services import keep_running

    deployments = runner_deployments(environment=args.environment)
    _print_deployments(args.environment, "served by this process")
    # serve() registers the deployments as it starts; the automations need incident-response to exist first.
    threading.Thread(target=_ensure_automations_when_deployed, args=(args.environment,), daemon=True).start()
    threading.Thread(target=keep_running, args=(supervisor,), kwargs={"restart": restart, "out": _log}, daemon=True).start()
    serving.set()
    if not stop.is_set():  # "ready" once the deployments are in the API and the runner polls for their runs
        serve_until(deployments, stop, on_stopping=_say_stopping, on_ready=lambda: _log(
            f"ready in {time.monotonic() - started:.1f} s; flow runs log to {paths.state_dir() / 'logs' / 'up.log'} "
            f"and the UI; Ctrl-C stops everything"))


def _apply_production_env(*, own_prefect_server: bool = True) -> None:
    """PostgreSQL for the ops store and, when we start the Prefect server, for it too (local defaults; override
    with the env variables). A team's own Prefect server keeps its own database."""
    from vvops.services import ensure_postgres_database

    urls = [os.environ.setdefault("VVOPS_STORE_URL", PRODUCTION_STORE_DB)]
    if own_prefect_server:
        urls.append(os.environ.setdefault("PREFECT_API_DATABASE_CONNECTION_URL",
                                          os.environ.get("VVOPS_PREFECT_DATABASE_URL", PRODUCTION_PREFECT_DB)))
    for url in urls:
        ensure_postgres_database(url)


def _require_external_prefect(api_url: str) -> None:
    """A team's own Prefect server must answer before we register anything on it."""
    from vvops.services import api_is_healthy, prefect_auth_kind

    if not api_is_healthy(api_url):
        raise CliError(f"the Prefect API at {api_url} does not answer /health ({prefect_auth_kind()}): check the URL, "
                       "that the server runs, and PREFECT_API_KEY / PREFECT_API_AUTH_STRING")
    print(f"prefect    using the existing server at {api_url} ({prefect_auth_kind()}); not starting one")


def _ensure_automations_when_deployed(environment: str, *, attempts: int = 60) -> None:
    """Create the alert automations (P0/P1 start incident-response) once that deployment exists."""
    from deployments.automations import ensure_automations

    for _ in range(attempts):
        try:
            ids = ensure_automations(environment)
            _log(f"automations {len(ids)} created: vv.alert.p0/p1 start incident-response/{environment}")
            _ensure_contract_limits(environment)
            return
        except LookupError:
            time.sleep(1)
        except Exception as error:  # noqa: BLE001 - the server went away (Ctrl-C while starting): say it once
            if "supervisor" in _UP_STATE:
                _log(f"automations not created: {type(error).__name__}: {error}")
            return
    _log(f"automations not created: incident-response/{environment} was not deployed within {attempts} s")


def _ensure_contract_limits(environment: str) -> None:
    """One global concurrency limit per contract, so changes queue per contract (visible under Concurrency)."""
    from tasks.contract_slots import ensure_contract_limits
    from vvops.config import load_config

    names = ensure_contract_limits([(environment, c.name) for c in load_config(environment=environment)
                                    .contracts.contracts])
    _log(f"concurrency limits {len(names)} ready: one parameter change or upgrade per contract at a time")


def _run_production(args: argparse.Namespace, supervisor: Any, started: float, restart: dict[str, list[str]],
                    stop: Any, serving: Any) -> None:
    """Deploy to the process work pool and keep N workers running (restarted when they die)."""
    from deployments.prefect_yaml import configured_work_pool
    from deployments.production import deploy_to_work_pool, ensure_work_pool
    from vvops.services import keep_running

    pool = configured_work_pool()
    ensure_work_pool(pool)
    deploy_to_work_pool(environment=args.environment, work_pool=pool)
    _print_deployments(args.environment, f"on work pool {pool}")
    _ensure_automations_when_deployed(args.environment)
    workers = dict(restart)
    for index in range(1, args.workers + 1):
        name = f"worker-{index}"
        workers[name] = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--name", f"vvops-{name}"]
        child = supervisor.start(name, workers[name])
        _log(f"worker     vvops-{name} on pool {pool} (pid {child.process.pid}, log {child.log})")
    import threading

    threading.Thread(target=keep_running, args=(supervisor,), kwargs={"restart": workers, "out": _log},
                     daemon=True).start()
    _log(f"ready in {time.monotonic() - started:.1f} s; Ctrl-C stops everything")
    serving.set()
    stop.wait()


# --- run and status -----------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from vvops.cli_params import ParameterError, validate_flow_params
    from vvops.services import api_is_healthy, apply_prefect_runtime_env

    env = apply_prefect_runtime_env()
    if not api_is_healthy(env["PREFECT_API_URL"]):
        raise CliError(f"Prefect API at {env['PREFECT_API_URL']} is not answering: start the system with `./vv up` first", EXIT_UNKNOWN)
    from deployments import spec_for

    try:
        spec = spec_for(args.flow)
    except KeyError as exc:
        raise CliError(str(exc.args[0]), exit_code=2) from None
    flow = spec.load_flow()
    try:
        params = validate_flow_params(flow.fn, args.param, fixed={"environment": args.environment})
    except ParameterError as exc:
        raise CliError(f"{spec.flow_name}: {exc}", exit_code=2) from None
    _require_known_names(params, args.environment)
    with _one_line_flow_errors():
        state = flow(**params, return_state=True)
    result = state.result(raise_on_failure=False)
    summary = run_summary(state, result)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(f"{spec.flow_name}: {summary['state']} (flow run {summary['flow_run_id']})")
        if summary.get("error"):
            print(f"  {summary['error']}")
        if summary.get("message") and summary["message"] not in summary.get("error", ""):
            print(f"  {summary['message']}")
        for check in summary.get("checks", []):
            print(f"  {check['status']:<5} {check['id']}: {check.get('message', '')}")
    return monitoring_exit_code(summary)


def _require_known_names(params: dict[str, Any], environment: str) -> None:
    """The environment, and a contract named by a parameter, must exist in config before a run starts."""
    _require_valid_config(environment)
    from vvops.config import load_config

    contract = params.get("contract")
    if isinstance(contract, str):
        known = [c.name for c in load_config(environment=environment).contracts.contracts]
        if contract not in known:
            raise CliError(f"-p contract={contract!r}: not a contract in config/contracts.yaml (known: "
                           f"{', '.join(known)})", exit_code=2)


class _one_line_flow_errors:
    """While a flow runs in this process, its console log shows a failure as one line; the full traceback
    still goes to the Prefect API (the run's logs in the UI)."""

    class _StripTraceback:
        def filter(self, record: Any) -> bool:
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                record.msg = f"{record.getMessage()} {type(error).__name__}: {error}".replace("\n", " ")
                record.args, record.exc_info, record.exc_text = (), None, None
            return True

    def __enter__(self):
        import logging

        from prefect.logging.configuration import ensure_logging_setup

        ensure_logging_setup()  # Prefect configures logging lazily; its console handler sits on the root logger
        self._handlers = [h for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs", "prefect.flows")
                          for h in logging.getLogger(name).handlers
                          if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
                          and type(h).__name__ != "APILogHandler"]
        self._filter = self._StripTraceback()
        for handler in self._handlers:
            handler.addFilter(self._filter)
        return self

    def __exit__(self, *exc: Any) -> None:
        for handler in self._handlers:
            handler.removeFilter(self._filter)


def run_summary(state: Any, result: Any) -> dict[str, Any]:
    """What `vvops run --json` prints: the run's id and state plus whatever the flow summarised."""
    summary: dict[str, Any] = {"flow_run_id": str(state.state_details.flow_run_id), "state": state.type.value}
    if not state.is_completed() and state.message:
        summary["message"] = state.message
    if isinstance(result, dict):
        summary.update({k: v for k, v in result.items() if k not in summary})
    elif isinstance(result, BaseException):
        summary["error"] = f"{type(result).__name__}: {result}"
    return summary


def monitoring_exit_code(summary: dict[str, Any]) -> int:
    """Exit like a monitoring plugin: 0 ok, 1 warn, 2 crit, 3 unknown (a check or the run failed).

    Ranked crit > unknown > warn > ok: a finding that is known to be critical is never hidden behind a check that
    could not run (a rogue implementation whose getters revert is crit, not "could not run")."""
    statuses = {check.get("status") for check in summary.get("checks", [])}
    if "crit" in statuses:
        return EXIT_CRIT
    if summary.get("state") != "COMPLETED" or "error" in statuses:
        return EXIT_UNKNOWN
    if "warn" in statuses or "unknown" in statuses:  # unknown: something to configure, like a warning
        return EXIT_WARN
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    from vvops.services import api_is_healthy, prefect_api_url, prefect_auth_kind

    api_url = (args.prefect_api_url or os.environ.get("PREFECT_API_URL") or prefect_api_url(args.port)).rstrip("/")
    report: dict[str, Any] = {"prefect": {"api_url": api_url, "auth": prefect_auth_kind(),
                                          "healthy": api_is_healthy(api_url)}}
    if report["prefect"]["healthy"]:
        report["prefect"]["deployments"] = _deployment_names(api_url)
    from vvops.devnet.service import devnet_status

    report["devnet"] = devnet_status()
    try:
        from vvops.store.db import current_revision, redact_url

        url = _store_url()
        report["store"] = {"url": redact_url(url), "revision": current_revision(url)}
        report["watcher"] = _watcher_status(url)
    except Exception as exc:  # status must report, not crash
        report["store"] = {"error": str(exc)}
    print(json.dumps(report, indent=2, default=str))
    return 0 if report["prefect"]["healthy"] else 1


def _watcher_status(store_url: str, environment: str = "devnet") -> dict[str, Any]:
    """Is `vvops watch` running, and which block has it processed on each chain (with the node's head when the
    environment's RPC answers, so `behind` says how far it lags)."""
    import psutil
    from sqlalchemy import select

    from vvops.store import make_engine, session_scope
    from vvops.store.models import WatcherCheckpoint

    pid_file = paths.state_dir() / f"watcher-{environment}.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        running = psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (OSError, ValueError, IndexError, psutil.Error):
        pid, running = None, False
    engine = make_engine(store_url)
    try:
        with session_scope(engine) as s:
            rows = list(s.scalars(select(WatcherCheckpoint)))
            chains = [{"chain_id": r.chain_id, "watcher": r.watcher, "processed_block": r.last_block,
                       "processed_hash": r.last_block_hash, "genesis_hash": r.genesis_hash,
                       "updated_at": r.updated_at} for r in rows]
    finally:
        engine.dispose()
    head = None
    try:
        from vvops.chain.rpc import RpcClient
        from vvops.config import load_config

        cfg = load_config(environment=environment)
        with RpcClient([u.get_secret_value() for u in cfg.resolve_rpc_urls()], timeout_s=2.0) as rpc:
            head = int(rpc.call("eth_blockNumber"), 16)
            chain_id = cfg.env.chain_id
        for chain in chains:
            if chain["chain_id"] == chain_id:
                chain["node_head"], chain["behind"] = head, head - chain["processed_block"]
    except Exception:  # noqa: BLE001 - the node is down: the checkpoint alone still says how far it got
        pass
    return {"running": running, "pid": pid if running else None, "chains": chains,
            "message": (f"watcher running (pid {pid})" if running else "watcher not running")}


def _deployment_names(api_url: str) -> list[str]:
    import httpx

    from vvops.services import prefect_api_headers

    headers = prefect_api_headers()
    response = httpx.post(f"{api_url}/deployments/filter", json={"limit": 200}, headers=headers, timeout=5)
    flows = {f["id"]: f["name"] for f in httpx.post(f"{api_url}/flows/filter", json={"limit": 200}, headers=headers,
                                                    timeout=5).json()}
    return sorted(f"{flows.get(d['flow_id'], '?')}/{d['name']}" for d in response.json())


if __name__ == "__main__":
    sys.exit(main())
