"""The store-backed alert service on SQLite and PostgreSQL: dedup with count, one notification per group,
repeat, resolve when the check clears, silences/inhibition, acknowledgement (audited) and exactly-once pages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from vvops.alerting import AlertService, Silence
from vvops.checks import CheckOutcome
from vvops.config import load_config
from vvops.store import make_engine, session_scope, verify_audit_chain
from vvops.store.models import Alert, AuditEntry

UTC = timezone.utc
T0 = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def cfg():
    return load_config(environment="devnet")


@pytest.fixture
def svc(store_url, cfg):
    engine = make_engine(store_url)
    yield AlertService(engine, cfg)
    engine.dispose()


def owner(status="crit", contract="vault"):
    return CheckOutcome(f"protocol.contract_state.{contract}.role.owner", "protocol", status, f"owner of {contract}")


def rpc(status="crit"):
    return CheckOutcome("infrastructure.rpc_latency", "infrastructure", status, "RPC timeout", value=5000.0)


def kinds(msgs):
    return [(m["kind"], m["channel_purpose"]) for m in msgs]


def rows(svc):
    with session_scope(svc.engine) as s:
        return list(s.scalars(select(Alert).order_by(Alert.id)))


def test_crit_check_fires_routes_and_pages_then_dedups(svc):
    msgs = svc.process_outcomes([owner(), owner(contract="vault2")], "devnet", T0)
    # P0 (checks.yaml crit→P0): a copy to #ops (continue), the group to #incidents, and the first page
    assert sorted(kinds(msgs)) == [("alert.firing", "incidents"), ("alert.firing", "ops"),
                                   ("alert.page", "incidents"), ("alert.page", "incidents")]
    group = next(m for m in msgs if m["kind"] == "alert.firing" and m["channel_purpose"] == "incidents")
    assert len(group["payload"]["firing"]) == 2  # one notification for the group of two alerts
    page = next(m for m in msgs if m["kind"] == "alert.page")
    assert page["payload"]["policy"] == "critical" and page["payload"]["step"] == 0
    assert page["thread_key"] == group["thread_key"]
    # the same outcome again a minute later: same alert, count 2, nothing new to say
    again = svc.process_outcomes([owner()], "devnet", T0 + timedelta(minutes=1))
    assert again == []
    [a, b] = rows(svc)
    assert (a.count, b.count, a.status) == (2, 1, "firing")


def test_repeat_interval_and_resolve_when_check_clears(svc):
    svc.process_outcomes([CheckOutcome("security.tls_certs", "security", "warn", "expires in 10 days")],
                         "devnet", T0)
    # P3 security → security route, repeat_interval 1h, no paging for P3 (severity matrix page: false)
    assert svc.due_escalations(T0 + timedelta(minutes=59)) == []
    rep = svc.due_escalations(T0 + timedelta(hours=1))
    assert kinds(rep) == [("alert.repeat", "incidents")]
    res = svc.process_outcomes([CheckOutcome("security.tls_certs", "security", "ok", "renewed")], "devnet",
                               T0 + timedelta(hours=2))
    assert kinds(res) == [("alert.resolved", "incidents")]
    assert res[0]["payload"]["resolved"][0]["ends_at"] == (T0 + timedelta(hours=2)).isoformat()
    [row] = rows(svc)
    assert row.status == "resolved" and row.ends_at == T0 + timedelta(hours=2)
    assert svc.due_escalations(T0 + timedelta(hours=6)) == []  # resolved: said once, never repeated


def test_escalation_pages_due_since_last_sweep_exactly_once_and_ack_stops_them(svc, cfg):
    svc.process_outcomes([rpc()], "devnet", T0)          # P1 → policy high: 0, +15, +30 min
    assert svc.due_escalations(T0 + timedelta(minutes=14)) == []
    p1 = svc.due_escalations(T0 + timedelta(minutes=16))
    assert [(m["payload"]["step"], m["payload"]["due_at"]) for m in p1] == [(1, (T0 + timedelta(minutes=15)).isoformat())]
    assert svc.due_escalations(T0 + timedelta(minutes=16)) == []  # a second sweep at the same time: nothing
    [row] = rows(svc)
    acks = svc.acknowledge(row.fingerprint, by="mei", source="slack", now=T0 + timedelta(minutes=20))
    assert acks and acks[0]["kind"] == "alert.acknowledged" and acks[0]["payload"]["by"] == "mei"
    assert svc.acknowledge(row.id, by="mei", source="ui", now=T0 + timedelta(minutes=21)) == []
    assert svc.due_escalations(T0 + timedelta(minutes=45)) == []  # step 3 at +30 never comes
    # ack_timeout 2h (root route): still firing after that → the policy runs again
    again = svc.due_escalations(T0 + timedelta(minutes=20, hours=2))
    assert [(m["payload"]["step"], m["payload"]["cycle"]) for m in again if m["kind"] == "alert.page"] == [(0, 1)]
    with pytest.raises(PermissionError):
        svc.acknowledge(row.id, by="mallory", source="slack", now=T0)
    with session_scope(svc.engine) as s:
        acts = [e.action for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
        assert acts.count("alert.acknowledged") == 1 and acts.count("alert.paged") == 3
        assert verify_audit_chain(s).ok


def test_rpc_down_inhibits_contract_read_alerts_and_release(svc):
    msgs = svc.process_outcomes([rpc(), owner()], "devnet", T0)
    contract = next(r for r in rows(svc) if r.rule == "contract_state")
    paged = [m["payload"]["fingerprint"] for m in msgs if m["kind"] == "alert.page"]
    assert paged and contract.fingerprint not in paged
    status = {r.rule: r.status for r in rows(svc)}
    assert status == {"rpc_down": "firing", "contract_state": "silenced"}
    # RPC recovers → the contract alert is released and notified on the next tick
    out = svc.process_outcomes([rpc("ok"), owner()], "devnet", T0 + timedelta(minutes=10))
    assert {r.rule: r.status for r in rows(svc)} == {"rpc_down": "resolved", "contract_state": "firing"}
    assert ("alert.firing", "incidents") in kinds(out) and ("alert.resolved", "incidents") in kinds(out)


def test_silence_mutes_until_it_expires(store_url, cfg):
    engine = make_engine(store_url)
    try:
        s = Silence.model_validate({"matchers": ['alertname="rpc_down"'], "starts_at": T0.isoformat(),
                                    "ends_at": (T0 + timedelta(hours=1)).isoformat(), "created_by": "priya",
                                    "reason": "provider migration"})
        svc = AlertService(engine, cfg, silences=[s])
        assert svc.process_outcomes([rpc()], "devnet", T0) == []
        assert rows(svc)[0].status == "silenced"
        assert rows(svc)[0].annotations["_vvops"]["mute"]["kind"] == "silence"
        out = svc.due_escalations(T0 + timedelta(hours=1))
        assert rows(svc)[0].status == "firing"
        assert kinds(out)[0] == ("alert.firing", "incidents")
        # pages that fell due while silenced are not replayed: escalation starts again from step 1
        assert [(m["kind"], m["payload"]["step"]) for m in out[1:]] == [("alert.page", 0)]
        assert svc.due_escalations(T0 + timedelta(hours=1, minutes=15))[0]["payload"]["step"] == 1
    finally:
        engine.dispose()


def test_a_stored_silence_mutes_every_service_until_someone_expires_it(store_url, cfg):
    """Created once (as `vvops silence add` does), seen by any AlertService on the store; expiring it early
    lets the alert notify on the next sweep; both are audited."""
    from vvops.alerting.silence_store import SilenceError, add_silence, expire_silence, list_silences

    engine = make_engine(store_url)
    try:
        with session_scope(engine) as s:
            silence = add_silence(s, matchers=['alertname="rpc_down"', 'chain=~"devnet|testnet"'], starts_at=T0,
                                  ends_at=T0 + timedelta(hours=4), created_by="priya", reason="provider migration")
        watcher_side, sweep_side = AlertService(engine, cfg), AlertService(engine, cfg)
        assert watcher_side.process_outcomes([rpc()], "devnet", T0 + timedelta(minutes=1)) == []
        assert rows(watcher_side)[0].status == "silenced"
        assert sweep_side.due_escalations(T0 + timedelta(minutes=30)) == []
        with session_scope(engine) as s:
            expire_silence(s, silence.id, by="mei", now=T0 + timedelta(hours=1))
            with pytest.raises(SilenceError, match="has already ended"):
                expire_silence(s, silence.id, by="mei", now=T0 + timedelta(hours=1))
            assert list_silences(s, T0 + timedelta(hours=1)) == []
        out = sweep_side.due_escalations(T0 + timedelta(hours=1, minutes=1))
        assert rows(sweep_side)[0].status == "firing" and kinds(out)[0] == ("alert.firing", "incidents")
        with session_scope(engine) as s:
            actions = [a.action for a in s.scalars(select(AuditEntry).where(AuditEntry.subject == f"silence:{silence.id}"))]
            assert actions == ["silence.created", "silence.expired"]
            with pytest.raises(SilenceError, match=r"matchers: 'chain=\"x' has an unbalanced quote"):
                add_silence(s, matchers=['chain="x'], starts_at=T0, ends_at=T0 + timedelta(hours=1),
                            created_by="priya", reason="typo")
            with pytest.raises(SilenceError, match="ends_at must be after starts_at"):
                add_silence(s, matchers=['chain="x"'], starts_at=T0, ends_at=T0, created_by="priya", reason="r")
    finally:
        engine.dispose()


def test_manual_resolve_and_unknown_alert(svc):
    svc.process_outcomes([rpc()], "devnet", T0)
    [row] = rows(svc)
    out = svc.resolve(row.id, now=T0 + timedelta(minutes=10), by="mei", reason="fixed the node", source="ui")
    assert kinds(out) == [("alert.resolved", "incidents")]
    with pytest.raises(LookupError):
        svc.resolve(row.id, now=T0 + timedelta(minutes=11))
    # fires again later: a new alert row (the partial unique index allows one open row per fingerprint)
    svc.process_outcomes([rpc()], "devnet", T0 + timedelta(hours=1))
    assert [r.status for r in rows(svc)] == ["resolved", "firing"]


def test_pages_become_one_escalation_page_per_person():
    from tasks.alerts import page_messages

    msg = {"kind": "alert.page", "channel_purpose": "incidents", "thread_key": "alert-group:x",
           "idempotency_key": "page:7:0.1@t",
           "payload": {"summary": "RPC down", "severity": "P1", "targets": ["mei", "ghost"], "step": 1, "cycle": 0,
                       "alert_id": 7}}
    [a, b] = page_messages(msg, "devnet")
    assert a["kind"] == "escalation_page" and a["idempotency_key"] == "page:7:0.1@t:mei"
    assert a["payload"]["step"] == 2 and a["payload"]["reason"] == "not acknowledged"
    assert a["payload"]["target_slack_id"].startswith("U") and b["payload"]["target_slack_id"] is None


def test_concurrent_watchers_sweeps_and_people_never_deadlock_or_lose_an_alert(store_url, cfg):
    """Five watchers firing, the sweep, and people resolving and acknowledging, all at once on one store."""
    import threading

    from vvops.alerting.rules import AlertInstance

    engine = make_engine(store_url)
    svc = AlertService(engine, cfg)
    errors: list[BaseException] = []
    stop = threading.Event()

    def guarded(work):
        def run():
            try:
                work()
            except BaseException as error:  # noqa: BLE001 - collected and asserted below
                errors.append(error)
        return threading.Thread(target=run)

    def watcher(chain: int):
        def work():
            for block in range(12):
                svc.process_firing([AlertInstance(rule="vault_paused", severity="P1", labels={
                    "alertname": "vault_paused", "chain": f"chain-{chain}", "tx": f"0x{chain:02x}{block:04x}",
                    "severity": "P1", "category": "paused"})], datetime.now(UTC), environment="devnet")
        return work

    def people():
        while not stop.is_set():
            for row in rows(svc)[-6:]:
                try:
                    if row.id % 2:
                        svc.resolve(row.id, now=datetime.now(UTC), by="mei", reason="handled")
                    else:
                        svc.acknowledge(row.id, by="mei", source="slack", now=datetime.now(UTC))
                except LookupError:
                    pass  # resolved by someone else meanwhile

    def sweeps():
        while not stop.is_set():
            svc.due_escalations(datetime.now(UTC))

    workers = [guarded(watcher(chain)) for chain in range(5)]
    helpers = [guarded(people), guarded(sweeps)]
    for t in workers + helpers:
        t.start()
    for t in workers:
        t.join(120)
    stop.set()
    for t in helpers:
        t.join(60)
    try:
        assert errors == []
        stored = rows(svc)
        assert len(stored) == 60 and len({r.fingerprint for r in stored}) == 60   # each alert once
        with session_scope(engine) as s:
            assert verify_audit_chain(s).ok
    finally:
        engine.dispose()
