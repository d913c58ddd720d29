"""Daily Operations / System Health Checks: protocol health first; infrastructure and security follow."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from prefect import flow

from tasks.chain import read_contract_state
from tasks.reports import outcomes_markdown, publish_check_table, publish_markdown
from tasks.runtime import ops_config
from tasks.store import count_open_incidents, record_check_run
from vvops.checks import CheckOutcome
from vvops.checks.contract_state import evaluate_contract_state
from vvops.config import resolve_deployment


def _contract_state_outcomes(environment: str, state: dict, open_incident: bool) -> list[CheckOutcome]:
    cfg = ops_config(environment)
    spec = cfg.contract(state["contract"])
    deployment = resolve_deployment(cfg, state["contract"])
    outcomes = evaluate_contract_state(
        contract=state["contract"],
        values=state["values"],
        errors=state["errors"],
        roles=deployment.roles,
        approved_implementations=deployment.approved_implementations,
        implementation=state["implementation"],
        parameters={p.getter: (p.min, p.max) for p in spec.parameters.values()},
        invariants=[(i.name, i.left, i.op, i.right, i.right_value) for i in spec.invariants],
        expect=deployment.expect,
        open_incident=open_incident,
    )
    return [replace(o, served_by=state["served_by"]) for o in outcomes]


@flow(name="daily-checks", log_prints=True)
def daily_checks(environment: str = "devnet") -> dict:
    """Run the daily checks, persist one result per check, publish the report and return the summary."""
    started_at = datetime.now(timezone.utc)
    cfg = ops_config(environment)
    monitored = [c.name for c in cfg.contracts.contracts if c.kind == "vault"]
    open_incidents = count_open_incidents()
    states = [read_contract_state.submit(environment=environment, contract=name) for name in monitored]

    outcomes: list[CheckOutcome] = []
    for name, future in zip(monitored, states):
        try:
            outcomes += _contract_state_outcomes(environment, future.result(), open_incidents > 0)
        except Exception as exc:  # one unreadable contract must not hide the others
            outcomes.append(CheckOutcome(f"protocol.contract_state.{name}", "protocol", "error",
                                         f"could not read {name}: {exc}", hint="is the RPC reachable? see the task log"))

    run_id = record_check_run(flow_name="daily-checks", environment=environment, outcomes=outcomes, started_at=started_at)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ok", "warn", "crit", "error")}
    publish_markdown(
        key="daily-report",
        description=f"Daily checks on {environment}",
        markdown=f"# Daily checks — {environment} — {started_at:%Y-%m-%d %H:%M} UTC\n\n"
        f"**{counts['ok']} ok, {counts['warn']} warn, {counts['crit']} crit, {counts['error']} error** "
        f"· open incidents: {open_incidents} · store run #{run_id}\n\n" + outcomes_markdown(outcomes),
    )
    publish_check_table(key="daily-checks", outcomes=outcomes, description=f"All daily checks on {environment}")
    return {"environment": environment, "store_run_id": run_id, "counts": counts,
            "checks": [o.summary() for o in outcomes]}
