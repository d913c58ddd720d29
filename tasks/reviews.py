"""Store queries for the weekly and monthly reviews (→ pandas DataFrames) and the Prefect API query for failed
or late flow runs. Every loader takes an explicit [start, end) window."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from sqlalchemy import func, or_, select

from tasks.policies import STORE_RETRIES
from tasks.runtime import store_engine
from vvops.store import session_scope, verify_audit_chain
from vvops.store.models import (
    ApprovalDecision,
    ApprovalRequest,
    ChainAction,
    CheckResult,
    CheckRun,
    Drill,
    Incident,
    Metric,
)



def _frame(query, columns: list[str]) -> pd.DataFrame:
    with store_engine().connect() as conn:
        return pd.DataFrame(conn.execute(query).all(), columns=columns)


@task(name="load-check-results", **STORE_RETRIES)
def load_check_results(*, start: datetime, end: datetime, check_ids: list[str] | None = None) -> pd.DataFrame:
    cols = [CheckResult.check_id, CheckResult.area, CheckResult.status, CheckResult.value, CheckResult.message,
            CheckResult.details, CheckResult.duration_ms, CheckResult.created_at]
    q = select(*cols).where(CheckResult.created_at >= start, CheckResult.created_at < end)
    if check_ids:
        q = q.where(CheckResult.check_id.in_(check_ids))
    return _frame(q.order_by(CheckResult.created_at), [c.key for c in cols])


@task(name="load-check-runs", **STORE_RETRIES)
def load_check_runs(*, start: datetime, end: datetime) -> pd.DataFrame:
    cols = [CheckRun.id, CheckRun.flow_name, CheckRun.started_at, CheckRun.finished_at, CheckRun.status]
    return _frame(select(*cols).where(CheckRun.started_at >= start, CheckRun.started_at < end),
                  [c.key for c in cols])


@task(name="latest-check-result", **STORE_RETRIES)
def latest_check_result(*, check_id: str, end: datetime) -> dict[str, Any] | None:
    q = (select(CheckResult).where(CheckResult.check_id == check_id, CheckResult.created_at < end)
         .order_by(CheckResult.created_at.desc()).limit(1))
    with session_scope(store_engine()) as session:
        r = session.scalars(q).first()
        return None if r is None else {"status": r.status, "value": r.value, "details": r.details or {},
                                       "created_at": r.created_at}


@task(name="latest-check-results", **STORE_RETRIES)
def latest_check_results(*, prefix: str, end: datetime) -> list[dict[str, Any]]:
    """The latest result before `end` of every check whose id is `prefix` or starts with `prefix.` (the live
    checks add a slug per target: `security.tls_certs.<host_port>`)."""
    newest = (select(CheckResult.check_id, func.max(CheckResult.id).label("id"))
              .where(or_(CheckResult.check_id == prefix, CheckResult.check_id.like(prefix.replace("_", "\\_") + ".%",
                                                                                      escape="\\")),
                     CheckResult.created_at < end).group_by(CheckResult.check_id).subquery())
    q = select(CheckResult).join(newest, CheckResult.id == newest.c.id).order_by(CheckResult.check_id)
    with session_scope(store_engine()) as session:
        return [{"check_id": r.check_id, "status": r.status, "value": r.value, "details": r.details or {},
                 "served_by": r.served_by, "created_at": r.created_at} for r in session.scalars(q)]


@task(name="load-metrics", **STORE_RETRIES)
def load_metrics(*, start: datetime, end: datetime, names: list[str] | None = None) -> pd.DataFrame:
    """Long frame: name, labels, labels_key, ts, value."""
    cols = [Metric.name, Metric.labels, Metric.labels_key, Metric.ts, Metric.value]
    q = select(*cols).where(Metric.ts >= start, Metric.ts < end)
    if names:
        q = q.where(Metric.name.in_(names))
    df = _frame(q, [c.key for c in cols])
    if not df.empty:
        df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df


@task(name="load-incidents", **STORE_RETRIES)
def load_incidents(*, start: datetime, end: datetime, include_open_before: bool = False) -> pd.DataFrame:
    """Incidents opened in [start, end) (plus, with include_open_before, every incident with a report, for
    action items)."""
    cols = [Incident.key, Incident.title, Incident.severity, Incident.type, Incident.status, Incident.is_drill,
            Incident.opened_at, Incident.acknowledged_at, Incident.resolved_at, Incident.report, Incident.root_cause]
    cond = (Incident.opened_at >= start) & (Incident.opened_at < end)
    if include_open_before:
        cond = cond | ((Incident.opened_at < end) & Incident.report.is_not(None))
    return _frame(select(*cols).where(cond), [c.key for c in cols])


@task(name="load-action-items", **STORE_RETRIES)
def load_action_items(*, end: datetime) -> pd.DataFrame:
    """Every post-incident action item created before `end`, with its incident's drill flag."""
    from vvops.store.action_item_models import ActionItem

    cols = [ActionItem.id, ActionItem.incident_key, ActionItem.title, ActionItem.owner, ActionItem.due_on,
            ActionItem.status, ActionItem.done_at, ActionItem.done_by, ActionItem.created_at]
    query = (select(*cols, Incident.is_drill).join(Incident, Incident.key == ActionItem.incident_key)
             .where(ActionItem.created_at < end).order_by(ActionItem.due_on, ActionItem.id))
    return _frame(query, ["id", "incident", "title", "owner", "due_on", "status", "done_at", "done_by", "created_at",
                          "is_drill"])


@task(name="load-approvals", **STORE_RETRIES)
def load_approvals(*, start: datetime, end: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Approval requests requested before `end` and still open, or decided/expiring in [start, end); their decisions."""
    cols = [ApprovalRequest.id, ApprovalRequest.procedure, ApprovalRequest.subject, ApprovalRequest.proposer,
            ApprovalRequest.status, ApprovalRequest.flow_run_id, ApprovalRequest.requested_at,
            ApprovalRequest.expires_at, ApprovalRequest.decided_at, ApprovalRequest.details]
    cond = (ApprovalRequest.requested_at < end) & (
        ApprovalRequest.status.in_(["pending", "escalated"])
        | ((ApprovalRequest.decided_at >= start) & (ApprovalRequest.decided_at < end))
        | ((ApprovalRequest.expires_at >= start) & (ApprovalRequest.expires_at < end)))
    requests = _frame(select(*cols).where(cond), [c.key for c in cols])
    dcols = [ApprovalDecision.request_id, ApprovalDecision.approver, ApprovalDecision.decision,
             ApprovalDecision.accepted, ApprovalDecision.decided_at]
    ids = [int(i) for i in requests["id"]] if not requests.empty else []
    decisions = _frame(select(*dcols).where(ApprovalDecision.request_id.in_(ids)), [c.key for c in dcols]) \
        if ids else pd.DataFrame(columns=[c.key for c in dcols])
    return requests, decisions


@task(name="load-chain-actions", **STORE_RETRIES)
def load_chain_actions(*, start: datetime, end: datetime) -> pd.DataFrame:
    cols = [ChainAction.idempotency_key, ChainAction.description, ChainAction.status, ChainAction.signed_tx_hash,
            ChainAction.block_number, ChainAction.created_at]
    return _frame(select(*cols).where(ChainAction.created_at >= start, ChainAction.created_at < end),
                  [c.key for c in cols])


@task(name="load-drills", **STORE_RETRIES)
def load_drills(*, end: datetime) -> pd.DataFrame:
    cols = [Drill.id, Drill.kind, Drill.started_at, Drill.ok, Drill.rto_seconds]
    return _frame(select(*cols).where(Drill.started_at < end), [c.key for c in cols])


@task(name="verify-audit-chain", retries=2, retry_delay_seconds=[1, 2])
def verify_audit() -> dict:
    with session_scope(store_engine()) as session:
        result = verify_audit_chain(session)
    return {"ok": result.ok, "checked": result.checked, "first_bad_id": result.first_bad_id, "reason": result.reason}


@task(name="playbook-coverage")
def playbook_coverage(*, out_dir: Path | None = None) -> dict[str, Any]:
    """The automation level of the playbook and whether docs/playbook-coverage.md is current (Continuous
    Improvement: "Automation level", "Documentation accuracy"); writes this month's matrix next to the report.
    Without the playbook ($VVOPS_PLAYBOOK or shared/playbook/) the section says "no data"."""
    from vvops.coverage.matrix import coverage_summary, render_matrix
    from vvops.coverage.playbook import PlaybookMissing, load_items
    from vvops.paths import REPO_ROOT

    try:
        items = load_items()
    except PlaybookMissing as exc:
        get_run_logger().warning("playbook coverage: %s", exc)
        return coverage_summary(None)
    doc = REPO_ROOT / "docs" / "playbook-coverage.md"
    summary = coverage_summary(items, published=doc.read_text(encoding="utf-8") if doc.is_file() else None)
    if out_dir is not None:
        (out_dir / "playbook-coverage.md").write_text(render_matrix(items), encoding="utf-8")
    return summary


@task(name="failed-or-late-flow-runs", retries=2, retry_delay_seconds=[1, 2])
def failed_or_late_flow_runs(*, start: datetime, end: datetime, limit: int = 200) -> list[dict[str, Any]]:
    """Flow runs that failed, crashed, timed out or ran late in [start, end) from the Prefect API ([] when none)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterState,
        FlowRunFilterStateName,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    flt = FlowRunFilter(
        expected_start_time=FlowRunFilterExpectedStartTime(after_=start, before_=end),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.FAILED, StateType.CRASHED])),
    )
    late = FlowRunFilter(
        expected_start_time=FlowRunFilterExpectedStartTime(after_=start, before_=end),
        state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Late", "TimedOut"])),
    )
    rows: dict[str, dict[str, Any]] = {}
    with get_client(sync_client=True) as client:
        for f in (flt, late):
            for run in client.read_flow_runs(flow_run_filter=f, limit=limit):
                flow_name = ""
                try:
                    flow_name = client.read_flow(run.flow_id).name
                except Exception:  # noqa: BLE001 — a deleted flow still leaves its run worth listing
                    pass
                rows[str(run.id)] = {
                    "flow": flow_name, "run": run.name, "state": run.state.name if run.state else "?",
                    "expected_start": run.expected_start_time.strftime("%Y-%m-%d %H:%M")
                    if run.expected_start_time else "",
                    "message": ((run.state.message or "") if run.state else "")[:80]}
    return sorted(rows.values(), key=lambda r: r["expected_start"])


# ---------------------------------------------------------------------------------------------------------
# Monthly Security review: access review (chain) and patch compliance (local environment)
# ---------------------------------------------------------------------------------------------------------

def _devnet_accounts(devnet_json: dict[str, Any]) -> dict[str, str]:
    """label → address of every account devnet.json names (users numbered)."""
    out: dict[str, str] = {}
    for key, value in (devnet_json.get("accounts") or {}).items():
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            addr = item.get("address") if isinstance(item, dict) else item
            if addr:
                out[f"{key}[{i}]" if isinstance(value, list) else key] = addr
    return out


def _access_control_holders(cfg, rpc, from_block: int, to_block: int, *, skip: str) -> dict[str, dict[str, Any]]:
    """Every access-control contract deployed here (but `skip`): expected role holders and the holders replayed
    from its RoleGranted/RoleRevoked events, by role name."""
    from vvops.chain.access import read_role_holders, role_names
    from vvops.config import resolve_deployment

    out: dict[str, dict[str, Any]] = {}
    for spec in cfg.contracts.deployed_in(cfg.environment):
        if spec.access != "access-control" or spec.name == skip:
            continue
        dep = resolve_deployment(cfg, spec.name)
        names = role_names(dep.role_holders)
        held = read_role_holders(rpc, address=dep.address, from_block=from_block, to_block=to_block)[dep.address]
        out[spec.name] = {"expected": {r: list(h) for r, h in dep.role_holders.items()},
                          "holders": {names.get(r, r): sorted(h) for r, h in held.items()}}
    return out


@task(name="read-access-state")
def read_access_state(*, environment: str) -> dict[str, Any]:
    """On-chain roles for the access review: the vault's role getters and ERC-1967 implementation, and the
    Timelock's role holders (RoleGranted/RoleRevoked replayed from its deployment block, then confirmed with
    `hasRole` for those holders plus every candidate account config and devnet.json know), together with what
    config expects. Never raises for an unreachable chain: returns {"available": False, "error": ...}."""
    from eth_utils import to_checksum_address

    from tasks.chain import read_contract_state
    from tasks.runtime import ops_config, rpc_client
    from vvops.chain.logs import EventDecoder, fetch_logs
    from vvops.chain.reader import ViewCall, read_views
    from vvops.config import resolve_deployment, resolve_purpose
    from vvops.config.loader import load_devnet_json
    from vvops.config.schema import FROM_DEVNET_PREFIX
    from vvops.chain.abi import contract_abi
    from vvops.reviews.access import TIMELOCK_ROLES, ZERO_ADDRESS, replay_role_events

    cfg = ops_config(environment)
    vault_name, timelock_name = cfg.contract_for("pause-target").name, cfg.contract_for("governance-timelock").name
    vault = resolve_deployment(cfg, vault_name)
    timelock = resolve_deployment(cfg, timelock_name)
    raw_timelock = cfg.contract(timelock_name).deployment(cfg.environment)
    devnet_json: dict[str, Any] = {}
    if raw_timelock.address.startswith(FROM_DEVNET_PREFIX):
        devnet_json = load_devnet_json()
    accounts = _devnet_accounts(devnet_json)
    labels = {addr: name for name, addr in accounts.items()}
    labels.update({vault.address: vault_name, timelock.address: timelock_name})
    # What config expects of the timelock: governance proposes, executes and cancels; the timelock administers
    # itself (deployed with admin = address(0)). Only the devnet names its governance account (devnet.json).
    governance = [to_checksum_address(accounts["governance"])] if "governance" in accounts else []
    expected_timelock = {"DEFAULT_ADMIN_ROLE": [timelock.address], "PROPOSER_ROLE": governance,
                         "EXECUTOR_ROLE": governance, "CANCELLER_ROLE": governance}
    if timelock.role_holders:  # contracts.yaml says who holds the timelock's roles: that wins (any environment)
        expected_timelock = {role: list(holders) for role, holders in timelock.role_holders.items()}
    expected = {"vault_roles": dict(vault.roles), "approved_implementations": list(vault.approved_implementations),
                "timelock": expected_timelock, "labels": labels}
    try:
        state = read_contract_state.fn(environment=environment, contract=vault_name)
        from_block = int(devnet_json.get("deployed_at_block") or raw_timelock.deployed_block or 0)
        with rpc_client(environment) as rpc:
            head = int(rpc.call("eth_blockNumber", []), 16)
            abi = contract_abi(cfg.contract(timelock_name).abi_source)
            decoder = EventDecoder(abi.abi if hasattr(abi, "abi") else abi)
            topics = [[decoder.topic("RoleGranted"), decoder.topic("RoleRevoked")]]
            events = decoder.decode_all(fetch_logs(rpc, address=timelock.address, from_block=from_block,
                                                   to_block=head, topics=topics))
            replayed = replay_role_events({"name": e.name, "role": e.args["role"], "account": e.args["account"]}
                                          for e in events)
            candidates = list(dict.fromkeys(to_checksum_address(a) for a in [
                *accounts.values(), *vault.roles.values(), timelock.address, vault.address, ZERO_ADDRESS,
                *(h for hs in replayed.values() for h in hs)]))
            multicall = resolve_purpose(cfg, "multicall").address
            access_control = _access_control_holders(cfg, rpc, from_block, head, skip=timelock_name)
            calls = [ViewCall(key=f"{role}|{addr}", target=timelock.address, signature="hasRole(bytes32,address)",
                             returns=("bool",), args=(role_id, addr))
                     for role, role_id in TIMELOCK_ROLES.items() for addr in candidates]
            answers = read_views(rpc, multicall=multicall, calls=calls)
    except Exception as exc:  # noqa: BLE001 — an unreachable chain is reported in the section, not a crash
        get_run_logger().warning("access review: chain not readable: %s", exc)
        return {"available": False, "error": f"{type(exc).__name__}: {exc}"[:300], "expected": expected}
    holders: dict[str, list[str]] = {role: [] for role in TIMELOCK_ROLES}
    unconfirmed = []
    for key, result in answers.items():
        role, addr = key.split("|")
        if result.ok and result.value:
            holders[role].append(addr)
    for role, hs in replayed.items():
        for h in hs:
            if role in holders and h not in holders[role]:
                unconfirmed.append({"role": role, "holder": h})  # granted in logs, hasRole says no (or failed)
    return {
        "available": True,
        "vault_roles": {role: state["values"].get(role) for role in dict.fromkeys(
            [*vault.roles, *(("owner", "guardian") if cfg.contract(vault_name).access == "ownable" else ())])},
        "implementation": state.get("implementation"),
        "timelock_holders": {role: hs for role, hs in holders.items() if hs},
        "events": len(events), "from_block": from_block, "to_block": head, "unconfirmed": unconfirmed,
        "access_control": access_control,
        "expected": expected,
    }


@task(name="read-patch-state")
def read_patch_state(*, environment: str) -> dict[str, Any]:
    """Installed distributions, uv.lock pins and the newest pip-audit report of the folder the daily
    `security.vulnerability_reports` check ingests (no network)."""
    from tasks.infra import resolve_path
    from tasks.runtime import ops_config
    from vvops.reviews.patches import installed_versions, newest_pip_audit_report, read_lock

    cfg = ops_config(environment)
    params = cfg.check("security.vulnerability_reports").typed_params()
    folder = params.folder if hasattr(params, "folder") else params.get("folder", "reports/vulnerabilities")
    lock_path = Path(__file__).resolve().parents[1] / "uv.lock"
    newest = newest_pip_audit_report(resolve_path(folder))
    return {"installed": installed_versions(), "locked": read_lock(lock_path), "lock_path": str(lock_path),
            "folder": str(resolve_path(folder)),
            "report_name": newest[0] if newest else None, "report_time": newest[1] if newest else None,
            "report": newest[2] if newest else None}
