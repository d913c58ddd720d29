"""Deterministic demo/test history for the ops store, under the names and ids the live checks record: `generate_history(engine=..., days=90, seed=7, now=...)`.

Same seed and `now` → same rows. Writes hourly metrics (trend + weekly seasonality + noise) for every
capacity series, probes, protocol metrics; one daily-checks run per day with results; incidents with
ack/resolve times (P0/P1 with post-incident reports and action items); approvals with decisions; chain
actions linked to them; drills; and an audit entry per change (through `append_audit`, so the chain verifies).
Incident keys are `HIST-nnnn` and chain-action keys carry the seed, so rows never collide with real ones.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from vvops.resilience.drills import DrillRecord, record_drill
from vvops.store import append_audit, session_scope
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

#: name, labels, start level, growth per day, weekly amplitude (fraction of level), noise (fraction of level):
#: the names and labels the live checks record (capacity.yaml reads them; see tasks/chain.py, tasks/infra.py)
_VAULT = {"contract": "vault"}
SERIES = [
    ("infra.host.cpu_pct", {}, 38.0, 0.25, 0.10, 0.05),
    ("infra.host.mem_pct", {}, 55.0, 0.12, 0.03, 0.02),
    ("infra.storage.used_pct", {"path": "state"}, 52.0, 0.20, 0.0, 0.005),
    ("infra.db.size_mb", {"backend": "sqlite"}, 300.0, 6.0, 0.0, 0.002),
    ("infrastructure.rpc_latency_ms", {"url": "rpc-primary"}, 120.0, 0.4, 0.08, 0.10),
    ("protocol.tx_count", _VAULT, 19_000.0, 290.0, 0.25, 0.08),
    ("protocol.unique_users", _VAULT, 2_400.0, 20.0, 0.25, 0.05),
    ("vault_tvl_usd", _VAULT, 80e6, 0.6e6, 0.02, 0.01),
]
CHECKS = [("protocol.contract_state.vault.paused", "protocol"), ("protocol.onchain_activity.vault.summary", "protocol"),
          ("protocol.network_conditions.block_lag", "protocol"), ("infrastructure.rpc_latency", "infrastructure"),
          ("infrastructure.http_endpoints.prefect_api", "infrastructure"), ("infrastructure.host", "infrastructure"),
          ("security.tls_certs.api_veritasvault_example_443", "security"),
          ("security.tls_certs.file.ops", "security"), ("security.credentials", "security"),
          ("maintenance.backups", "maintenance"), ("maintenance.data_integrity", "maintenance")]
CERTIFICATES = {"security.tls_certs.api_veritasvault_example_443": ("api.veritasvault.example:443",
                                                                     "api.veritasvault.example", 64),
                "security.tls_certs.file.ops": ("ops.pem", "ops.internal", 300)}
ENDPOINTS = {"rpc:rpc-primary": 0.9995, "rpc:rpc-backup": 0.997, "http:prefect-api": 0.9999}
FUNCTIONS = {"deposit": 92_000, "withdraw": 78_000, "setFeeBps": 34_000, "pause": 29_000}
PEOPLE = ["mei", "lukas", "oscar", "priya", "amara"]  # team.yaml ids
APPROVERS = ["daniel", "kwame"]  # ops_lead holders in the shipped team.yaml


def _utc(now: datetime | None) -> datetime:
    now = now or datetime.now(timezone.utc)
    return now if now.tzinfo else now.replace(tzinfo=timezone.utc)


def generate_history(*, engine: Engine, days: int = 90, seed: int = 7, now: datetime | None = None,
                     environment: str = "devnet") -> dict[str, int]:
    """Fill the store with `days` of history ending at `now` (hour-aligned). Returns row counts per kind."""
    rng = np.random.default_rng(seed)
    end = _utc(now).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    counts = {k: 0 for k in ("metrics", "check_runs", "check_results", "incidents", "approvals", "decisions",
                             "chain_actions", "drills", "audit_entries")}
    hours = np.arange(days * 24)
    stamps = [start + timedelta(hours=int(h)) for h in hours]
    t_days = hours / 24.0
    weekday = np.array([s.weekday() for s in stamps])
    metric_rows: list[dict] = []

    def add(name: str, labels: dict, values: np.ndarray) -> None:
        key = Metric.make_labels_key(labels)
        metric_rows.extend({"name": name, "labels": labels, "labels_key": key, "ts": ts, "value": float(v)}
                           for ts, v in zip(stamps, values))

    for name, labels, level, growth, weekly, noise in SERIES:
        season = weekly * level * np.where(weekday >= 5, -1.0, 0.4) + 0.5 * weekly * level * np.sin(
            2 * math.pi * (hours % 24) / 24)
        values = level + growth * t_days + season + rng.normal(0, noise * level, len(hours))
        add(name, labels, np.maximum(values, 0))
    for ep, p_up in ENDPOINTS.items():
        up = (rng.random(len(hours)) < p_up).astype(float)
        add("probe_up", {"endpoint": ep}, up)
        add("probe_latency_ms", {"endpoint": ep},
            rng.lognormal(math.log(80 if "rpc" in ep else 25), 0.35, len(hours)) * (1 + t_days / days * 0.2))
        if ep.startswith("rpc:"):
            add("infrastructure.rpc_available_pct", {"url": ep[4:]},
                np.clip(100 - 100 * (1 - p_up) * rng.lognormal(0, 0.5, len(hours)), 0, 100))
    for fn, gas in FUNCTIONS.items():
        add("gas_per_call", {**_VAULT, "function": fn},
            gas * (1 + 0.0005 * t_days) + rng.normal(0, gas * 0.01, len(hours)))
    # protocol: daily fees / limit hits, a fee parameter change in the middle of the period
    change_day = days // 2
    daily = [start + timedelta(days=d) for d in range(days)]
    fee = [30.0 if d < change_day else 45.0 for d in range(days)]
    for d, ts in enumerate(daily):
        metric_rows.append({"name": "fees_collected_usd", "labels": {}, "labels_key": "{}", "ts": ts,
                            "value": float(fee[d] * 120 + rng.normal(0, 300))})
        hits = float(rng.poisson(1.5 if fee[d] < 40 else 0.8))
        metric_rows.append({"name": "withdrawal_limit_hits", "labels": _VAULT,
                            "labels_key": Metric.make_labels_key(_VAULT), "ts": ts, "value": hits})
        for fn, share in (("deposit", 0.55), ("withdraw", 0.45)):
            labels = {**_VAULT, "function": fn}
            calls = float(rng.poisson(19_000 * share))
            reverts = float(rng.poisson(calls * 0.01)) + (hits if fn == "withdraw" else 0.0)
            reason = "AboveWithdrawalLimit" if fn == "withdraw" else "DepositCapExceeded"
            for name, value, extra in (("protocol.function_calls", calls, {}), ("protocol.function_reverts", reverts, {}),
                                       ("protocol.reverts_by_reason", reverts, {"reason": reason})):
                row_labels = {**labels, **extra}
                metric_rows.append({"name": name, "labels": row_labels, "ts": ts, "value": value,
                                    "labels_key": Metric.make_labels_key(row_labels)})
        if d in (0, change_day):
            metric_rows.append({"name": "vault_param", "labels": {"param": "feeBps"},
                                "labels_key": Metric.make_labels_key({"param": "feeBps"}), "ts": ts, "value": fee[d]})

    with session_scope(engine) as session:
        for i in range(0, len(metric_rows), 5000):
            session.execute(insert(Metric), metric_rows[i:i + 5000])
        counts["metrics"] = len(metric_rows)

        # one daily-checks run per day at 06:00
        for d in range(days):
            at = (start + timedelta(days=d)).replace(hour=6)
            if at >= end:
                break
            run = CheckRun(flow_name="daily-checks", environment=environment, started_at=at,
                           finished_at=at + timedelta(seconds=40), status="ok")
            statuses = []
            for check_id, area in CHECKS:
                r = rng.random()
                status = "ok" if r < 0.9 else "warn" if r < 0.97 else "crit"
                statuses.append(status)
                details: dict = {}
                served_by = None
                if check_id in CERTIFICATES:  # one result per certificate, as security.tls_certs writes them
                    served_by, subject, left = CERTIFICATES[check_id]
                    details = {"subject": subject, "not_after": (end + timedelta(days=left - (days - d))).isoformat()}
                run.results.append(CheckResult(check_id=check_id, area=area, status=status, served_by=served_by,
                                               value=float(rng.random() * 100), message=f"{check_id} {status}",
                                               details=details, duration_ms=float(rng.lognormal(5, 0.5)),
                                               created_at=at + timedelta(seconds=30)))
            run.status = "crit" if "crit" in statuses else "warn" if "warn" in statuses else "ok"
            session.add(run)
            counts["check_runs"] += 1
            counts["check_results"] += len(CHECKS)

        # incidents: about one every 5 days
        types = ["technical", "operational", "security", "external"]
        n_inc = max(1, days // 5)
        for i in range(n_inc):
            opened = start + timedelta(hours=float(rng.uniform(0, days * 24 - 48)))
            sev = str(rng.choice(["P0", "P1", "P2", "P3"], p=[0.05, 0.2, 0.4, 0.35]))
            ack = opened + timedelta(minutes=float(rng.gamma(2, 4)))
            resolved = ack + timedelta(minutes=float(rng.gamma(2, 45)))
            report = None
            if sev in ("P0", "P1"):
                report = {"submitted_at": (resolved + timedelta(days=float(rng.uniform(0.5, 4)))).isoformat(),
                          "summary": "generated history",
                          "action_items": [{"title": "add an alert for the leading signal", "owner": PEOPLE[i % 5],
                                            "due": (resolved + timedelta(days=14)).date().isoformat(),
                                            "status": "open" if i % 2 else "done"},
                                           {"title": "update the runbook", "owner": PEOPLE[(i + 1) % 5],
                                            "due": (resolved + timedelta(days=7)).date().isoformat(),
                                            "status": "open"}]}
            session.add(Incident(key=f"HIST-{seed}-{i + 1:04d}", title=f"generated {sev} incident {i + 1}",
                                 type=types[i % 4], severity=sev, status="closed" if report else "resolved",
                                 opened_at=opened, acknowledged_at=ack, mitigated_at=resolved,
                                 resolved_at=resolved, is_drill=False, report=report))
            counts["incidents"] += 1

        # approvals (+ decisions, chain actions, audit) about weekly; one pending at the end
        n_app = max(1, days // 7)
        for i in range(n_app):
            requested = start + timedelta(days=i * 7 + 1, hours=10)
            proc = "parameter_change" if i % 3 else "upgrade_rollout"
            proposer, approver = PEOPLE[i % 5], APPROVERS[i % 2]
            pending = i == n_app - 1
            key = f"{proc}:hist-{seed}-{i + 1}"
            req = ApprovalRequest(procedure=proc, subject=f"{proc} #{i + 1}", risk="medium", proposer=proposer,
                                  required_role="ops_lead", quorum=1, status="pending" if pending else "approved",
                                  flow_run_id=f"hist-{seed}-{i + 1}", requested_at=requested,
                                  expires_at=requested + timedelta(hours=4),
                                  decided_at=None if pending else requested + timedelta(minutes=35),
                                  details={"chain_action_keys": [key]})
            if not pending:
                req.decisions.append(ApprovalDecision(approver=approver, decision="approve", source="slack",
                                                      accepted=True, decided_at=requested + timedelta(minutes=35)))
                counts["decisions"] += 1
            session.add(req)
            counts["approvals"] += 1
            if pending:
                continue
            session.add(ChainAction(idempotency_key=key, chain_id=31337, from_address="0x" + "11" * 20,
                                    to_address="0x" + "22" * 20, nonce=i, description=req.subject,
                                    signed_tx_hash="0x" + f"{seed:04x}{i:060x}", status="mined",
                                    block_number=1000 + i, created_at=requested + timedelta(minutes=40),
                                    updated_at=requested + timedelta(minutes=41)))
            counts["chain_actions"] += 1
            session.flush()
            append_audit(session, actor=approver, action=f"{proc}.approved", subject=req.subject, source="history",
                         details={"request_id": req.id, "chain_action": key})
            counts["audit_entries"] += 1

        # drills: DR every 60 days (last one recent), tabletop once
        d = days - 10
        while d >= 0:
            at = start + timedelta(days=d, hours=14)
            session.add(Drill(kind="store-restore", started_at=at, finished_at=at + timedelta(minutes=3),
                              rto_seconds=float(rng.uniform(60, 240)), rpo_seconds=0.0, ok=True))
            counts["drills"] += 1
            d -= 60
        at = start + timedelta(days=min(20, days - 1), hours=15)
        record_drill(session, DrillRecord(kind="tabletop", scenario="generated history: RPC provider outage",
                                          participants=tuple(PEOPLE[:3]), findings=("failover runbook step 3 unclear",),
                                          started_at=at, duration_minutes=60, ok=True, recorded_by=PEOPLE[0]))
        counts["drills"] += 1
        counts["audit_entries"] += 1
    return counts
