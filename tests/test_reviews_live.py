"""The weekly and monthly reviews on a store filled by the live flows, not by the history generator.

Three simulated days on the devnet (anvil time travel: evm_increaseTime + evm_mine; the flows get the chain's
time as `now`): each day users deposit, withdraw and hit the withdrawal limit, the daily checks run at 06:00
and the ops sweep probes every endpoint and announces the daily on-call hand-off. A certificate file and a vulnerability report sit
where checks.yaml points the daily checks; a tabletop drill is recorded by a person. Then the weekly and the
monthly review must show measured data in every section the live path feeds. The chain is reverted and the
rows dated in the simulated days are deleted afterwards, so other tests never see them.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from tests.fixtures.tls_fixtures import make_certificate
from vvops.devnet.timetravel import chain_time, increase_time, revert, snapshot

pytestmark = [pytest.mark.devnet, pytest.mark.prefect, pytest.mark.timeout(600)]

UTC = timezone.utc
UNIT = 10**18
DAYS = 3
OSV_REPORT = {"results": [{"source": {"path": "uv.lock"}, "packages": [{
    "package": {"name": "urllib3", "version": "1.26.0", "ecosystem": "PyPI"},
    "vulnerabilities": [{"id": "GHSA-live-crit", "database_specific": {"severity": "CRITICAL"}}]}]}]}


def _travel_to(chain, moment: datetime) -> None:
    ahead = int(moment.timestamp()) - chain_time(chain)
    if ahead > 0:
        increase_time(chain, ahead)


def _day_of_traffic(chain, devnet) -> None:
    """Deposits and withdrawals by several users, and one withdrawal above the limit (reverted)."""
    vault = chain.contract("VaultV1", devnet.contracts.vault)
    for user in devnet.accounts.users[:3]:
        vault.transact(user.address, "deposit", 20 * UNIT)
        vault.transact(user.address, "withdraw", 5 * UNIT)
    limit = vault.call("withdrawalLimit")
    failed = chain.send(sender=devnet.accounts.users[0].address, to=devnet.contracts.vault, gas=200_000,
                        data=vault.encode("withdraw", limit + UNIT))
    chain.wait_for_receipt(failed)


def _security_inputs(start: datetime) -> list[Path]:
    """A certificate file and a vulnerability report where the devnet's checks.yaml looks (state dir)."""
    from vvops import paths

    certs = paths.state_dir() / "certs"
    reports = paths.state_dir() / "reports" / "vulnerabilities"
    certs.mkdir(parents=True, exist_ok=True)
    reports.mkdir(parents=True, exist_ok=True)
    pem, _ = make_certificate(["ops.live.example"], not_after=start + timedelta(days=45),
                              not_before=start - timedelta(days=30))
    cert = certs / "live-review-ops.pem"
    cert.write_bytes(pem)
    report = reports / "osv-live-review.json"
    report.write_text(json.dumps(OSV_REPORT))
    return [cert, report]


@pytest.fixture(scope="module")
def live_store(ops_flows, ops_store_engine, devnet, devnet_chain):
    from flows.daily_checks import daily_checks
    from flows.ops_sweep import ops_sweep
    from vvops import paths
    from vvops.resilience.drills import DrillRecord, record_drill
    from vvops.store import session_scope
    from vvops.store.models import CheckRun, Drill, Metric

    chain = devnet_chain
    snap = snapshot(chain)
    head = datetime.fromtimestamp(chain_time(chain), UTC)
    first = (head + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    state_file = paths.state_dir() / "state" / "vulnerability-findings.json"
    saved_state = state_file.read_bytes() if state_file.is_file() else None
    created = _security_inputs(first)
    runs, sweeps = [], []
    try:
        for d in range(DAYS):
            day = first + timedelta(days=d)
            _travel_to(chain, day + timedelta(hours=5))
            _day_of_traffic(chain, devnet)
            _travel_to(chain, day + timedelta(hours=6))
            runs.append(daily_checks(environment="devnet", now=day + timedelta(hours=6)))
        # one sweep (each takes seconds): the ops lead of the day hands over at 08:00 New York, 13:00 UTC in
        # winter and 12:00 in summer; the sweep at 13:05 follows either hand-off within the hour
        sweeps.append(ops_sweep(environment="devnet", now=first + timedelta(hours=13, minutes=5)))
        with session_scope(ops_store_engine) as session:
            drill_id = record_drill(session, DrillRecord(
                kind="tabletop", scenario="RPC provider outage during a withdrawal rush", participants=("mei", "lukas"),
                findings=("failover runbook lacks the provider's status page",), started_at=first + timedelta(hours=15),
                duration_minutes=45, ok=True, recorded_by="mei"))
        yield {"first": first, "end": first + timedelta(days=DAYS), "runs": runs, "sweeps": sweeps}
    finally:
        assert revert(chain, snap)
        for file in created:
            file.unlink(missing_ok=True)
        if saved_state is None:
            state_file.unlink(missing_ok=True)
        else:
            state_file.write_bytes(saved_state)
        with session_scope(ops_store_engine) as session:
            for run in session.scalars(select(CheckRun).where(CheckRun.started_at >= first)):
                session.delete(run)
            session.execute(delete(Metric).where(Metric.ts >= first))
            session.execute(delete(Drill).where(Drill.started_at >= first, Drill.kind == "tabletop"))
        shutil.rmtree(paths.state_dir() / "reports" / f"monthly-devnet-{first:%Y-%m}", ignore_errors=True)


def test_the_live_path_records_what_the_reviews_read(live_store):
    assert all(r["counts"]["error"] == 0 for r in live_store["runs"]), [
        c for r in live_store["runs"] for c in r["checks"] if c["status"] == "error"]
    assert all("error" not in (s.get("probes") or {}) for s in live_store["sweeps"])
    handoffs = sum(s["oncall_handoff"]["handoffs"] for s in live_store["sweeps"])
    assert handoffs == 1  # the daily ops-lead rotation's hand-off of the first simulated day


def test_weekly_review_of_live_data_shows_every_section_measured(live_store):
    from flows.weekly_review import weekly_review

    weekly = weekly_review(environment="devnet", week_ending=live_store["end"], notify_slack=False)

    plans: dict[str, dict] = {}   # other tests' series (another chain, other labels) share the store: keep the fullest
    for plan in weekly["capacity"]["plans"]:
        base = plan["series"].split("{")[0]
        if plan["points"] > plans.get(base, {"points": -1})["points"]:
            plans[base] = plan
    for series in ("vault_tvl_usd", "protocol.tx_count", "protocol.unique_users", "gas_per_call",
                   "withdrawal_limit_hits", "infrastructure.rpc_latency_ms", "infrastructure.rpc_available_pct",
                   "infra.db.size_mb"):
        assert series in plans and plans[series]["points"] >= DAYS, series
    hits = plans["withdrawal_limit_hits"]
    assert hits["last_value"] >= 1
    gas = {g["function"]: g for g in weekly["protocol"]["gas"]}
    assert gas["vault.deposit"]["mean_gas"] > 20_000 and gas["vault.withdraw"]["mean_gas"] > 20_000
    errors = {e["function"]: e for e in weekly["protocol"]["errors"]}
    assert errors["vault.withdraw"]["reverts"] >= DAYS and "AboveWithdrawalLimit" in errors["vault.withdraw"]["revert_reasons"]
    assert weekly["protocol"]["parameters"] and weekly["integrations"] and weekly["areas"]
    assert {i["check"].split(".")[0] for i in weekly["integrations"]} >= {"infrastructure", "protocol"}

    markdown = Path(weekly["report_dir"], "weekly-review.md").read_text()
    for section in ("Capacity planning", "Parameters in force", "Gas per function", "Errors and reverts",
                    "Integrations' health", "Check pass rate"):
        body = markdown.split(section, 1)[1].split("###", 1)[0]
        assert "no data" not in body, (section, body[:300])


def test_monthly_review_of_live_data_shows_every_section_measured(live_store):
    from flows.monthly_review import monthly_review

    last_day = live_store["end"] - timedelta(seconds=1)
    as_of = (last_day.replace(day=1) + timedelta(days=32)).replace(day=1, hour=8)
    monthly = monthly_review(environment="devnet", as_of=as_of, notify_slack=False)

    performance, security = monthly["performance"], monthly["security"]
    endpoints = {a["endpoint"] for a in performance["availability"]}
    assert any(e.startswith("rpc:") for e in endpoints) and performance["latency_p95"]
    assert any("ops.live.example" in c["certificate"] and c["days_left"] > 0 for c in security["certificates"])
    by_severity = {v["severity"]: v for v in security["vulnerabilities"]["by_severity"]}
    assert by_severity["critical"]["open"] >= 1
    drills = next(c for c in monthly["compliance"] if c["id"] == "drills")
    tabletop = next(row for row in drills["evidence"] if row["kind"] == "tabletop")
    assert tabletop["last_ok"].startswith(f"{live_store['first']:%Y-%m-%d}"), drills["evidence"]

    markdown = Path(monthly["html"]).with_name("monthly-review.md").read_text()
    assert "Endpoints below SLO: no data" not in markdown
    for section in ("Availability per endpoint", "Latency p95", "Vulnerability management", "Certificate inventory"):
        body = markdown.split(section, 1)[1].split("###", 1)[0]
        assert "no data" not in body, (section, body[:300])
