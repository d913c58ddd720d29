"""Issue 17 item 4, "Knowledge that stays": post-incident action items as records (owner, due date, reminders,
closing with evidence), the reviews that follow them up, and the runbook section linked from every alert rule and
check. Flows run on the real Prefect test server against the shared SQLite store; time is passed in (`now`) or
frozen with freezegun, never slept."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest
from freezegun import freeze_time
from sqlalchemy import select

from vvops.procedures.action_items import due_reminders, parse_item
from vvops.reviews.process_improvement import (action_item_follow_through, mtta_mttr_trend, process_improvement,
                                               render_process_improvement, repeat_incidents)

UTC = timezone.utc
ROSTER = ["amara", "mei", "lukas"]


# --------------------------------------------------------------------------- pure rules


def test_a_report_line_names_its_owner_and_due_date_else_the_defaults_apply():
    default = dict(roster=ROSTER, default_owner="amara", default_due=date(2026, 12, 14))
    named = parse_item("Raise the RPC timeout alert to P1 @mei due 2026-12-01", **default)
    assert (named.title, named.owner, named.due_on, named.owner_unknown) == (
        "Raise the RPC timeout alert to P1", "mei", date(2026, 12, 1), None)
    plain = parse_item("add a runbook entry for failover", **default)
    assert (plain.owner, plain.due_on) == ("amara", date(2026, 12, 14))
    typo = parse_item("tune large_withdrawals @meii due:2026-12-03", **default)
    assert (typo.owner, typo.owner_unknown, typo.due_on) == ("amara", "meii", date(2026, 12, 3))
    assert "@meii" in typo.title   # the text keeps what was written
    bad_date = parse_item("rotate keys due 2026-13-40", **default)
    assert bad_date.due_on == date(2026, 12, 14) and "2026-13-40" in bad_date.title


def test_reminders_are_one_per_overdue_open_item_per_day():
    class Row:
        def __init__(self, id, due_on, status="open"):
            self.id, self.due_on, self.status = id, due_on, status
            self.incident_key, self.title, self.owner = "INC-0001", f"item {id}", "mei"

    rows = [Row(1, date(2026, 11, 20)), Row(2, date(2026, 11, 30)), Row(3, date(2026, 11, 1), "done")]
    morning = due_reminders(rows, datetime(2026, 11, 30, 8, tzinfo=UTC))
    evening = due_reminders(rows, datetime(2026, 11, 30, 23, tzinfo=UTC))
    tomorrow = due_reminders(rows, datetime(2026, 12, 1, 8, tzinfo=UTC))
    assert [r["id"] for r in morning] == [1] and morning == evening       # due today is not overdue yet
    assert morning[0]["days_overdue"] == 10
    assert [r["id"] for r in tomorrow] == [1, 2]
    assert {r["idempotency_key"] for r in tomorrow}.isdisjoint(r["idempotency_key"] for r in morning)


def _incidents(rows):
    return pd.DataFrame([{"key": k, "is_drill": drill, "opened_at": o, "acknowledged_at": a, "resolved_at": r,
                          "root_cause": cause} for k, o, a, r, cause, drill in rows])


def test_mtta_mttr_per_month_repeat_causes_and_follow_through_come_from_the_rows():
    t = datetime(2026, 10, 5, 12, tzinfo=UTC)
    n = datetime(2026, 11, 3, 9, tzinfo=UTC)
    incidents = _incidents([
        ("INC-1", t, t + timedelta(minutes=4), t + timedelta(minutes=60), "RPC provider outage.", False),
        ("INC-2", n, n + timedelta(minutes=2), n + timedelta(minutes=30), "rpc provider  outage", False),
        ("INC-3", n + timedelta(days=1), n + timedelta(days=1, minutes=6), None, None, False),
        ("INC-4", n, n + timedelta(minutes=99), n + timedelta(minutes=999), "drill", True),
    ])
    trend = mtta_mttr_trend(incidents, end=datetime(2026, 12, 1, tzinfo=UTC), months=3)
    assert trend == [
        {"month": "2026-09", "incidents": 0, "mtta_min": None, "mttr_min": None},
        {"month": "2026-10", "incidents": 1, "mtta_min": 4.0, "mttr_min": 60.0},
        {"month": "2026-11", "incidents": 2, "mtta_min": 4.0, "mttr_min": 30.0},   # INC-3 not resolved: MTTR of 1
    ]
    repeats = repeat_incidents(incidents)
    assert repeats["repeats"] == [{"root cause": "rpc provider outage", "incidents": 2, "keys": "INC-1, INC-2",
                                   "first": "2026-10-05", "last": "2026-11-03"}]
    assert repeats["without_cause"] == 1 and repeats["incidents"] == 3

    items = pd.DataFrame([
        {"id": 1, "incident": "INC-1", "title": "a", "owner": "mei", "due_on": date(2026, 11, 10), "status": "done",
         "done_at": datetime(2026, 11, 9, tzinfo=UTC)},
        {"id": 2, "incident": "INC-1", "title": "b", "owner": "mei", "due_on": date(2026, 11, 10), "status": "done",
         "done_at": datetime(2026, 11, 12, tzinfo=UTC)},
        {"id": 3, "incident": "INC-2", "title": "c", "owner": "lukas", "due_on": date(2026, 11, 20), "status": "open",
         "done_at": None},
        {"id": 4, "incident": "INC-2", "title": "d", "owner": "lukas", "due_on": date(2026, 12, 20), "status": "open",
         "done_at": None},
    ])
    ft = action_item_follow_through(items, start=datetime(2026, 11, 1, tzinfo=UTC), end=datetime(2026, 12, 1, tzinfo=UTC))
    assert (ft["due"], ft["on_time"], ft["late"], ft["open"], ft["on_time_pct"]) == (3, 1, 1, 1, 33.3)
    assert [(o["id"], o["days overdue"]) for o in ft["overdue_at_end"]] == [(3, 11)]


def test_the_section_says_no_data_and_shows_no_made_up_number_when_the_store_is_empty():
    section = process_improvement(None, None, start=datetime(2026, 11, 1, tzinfo=UTC),
                                  end=datetime(2026, 12, 1, tzinfo=UTC))
    assert section["follow_through"]["on_time_pct"] is None and section["mttr_direction"] == "no data"
    md = render_process_improvement(section)
    assert md.count("no data") >= 4
    assert "%" not in md and "0.0" not in md


# --------------------------------------------------------------------------- runbook links


def test_every_rule_and_check_has_a_runbook_section_and_config_check_refuses_a_dangling_one(config_copy):
    assert config_copy.problems() == []
    cfg = config_copy.load()
    assert cfg.runbooks.for_check("protocol.contract_state.vault.role.owner") == "docs/runbooks.md#contract-state"
    assert cfg.runbooks.for_alert("infrastructure", {"check": "infrastructure.host"}).endswith("#host-resources")
    assert cfg.runbooks.for_alert("tvl_drop", {"contract": "vault"}).endswith("#funds-at-risk")

    config_copy.set("runbooks.yaml", "rules.rpc_down", "rpc-is-down")
    data = config_copy.data("runbooks.yaml")
    del data["checks"]["maintenance.backups"]
    del data["rules"]["tvl_drop"]
    data["checks"]["security.nosuch"] = "credentials"
    config_copy.save("runbooks.yaml", data)
    problems = config_copy.problems()
    assert any("runbooks.yaml: rules.rpc_down: section 'rpc-is-down' is not a heading of docs/runbooks.md" in p
               and "rpc-down" in p for p in problems), problems
    assert any("check 'maintenance.backups' has no runbook section" in p for p in problems), problems
    assert any("watcher.yaml" in p and "alert rule 'tvl_drop' has no runbook section" in p for p in problems), problems
    assert any("no check is named 'security.nosuch'" in p for p in problems), problems


def test_check_failures_and_alerts_link_their_runbook_section(sqlite_store_url):
    from vvops.alerting import AlertService
    from vvops.checks import CheckOutcome
    from vvops.config import load_config
    from vvops.notify.messages import render
    from vvops.store import make_engine

    cfg = load_config(environment="devnet").model_copy(update={"runbooks": load_config().runbooks.model_copy(
        update={"base_url": "https://git.example/ops/blob/main/docs/runbooks.md"})})
    failure = render("check_failure", environment="devnet", check={
        "id": "infrastructure.rpc_latency", "area": "infrastructure", "status": "crit", "message": "RPC timeout",
        "runbook_url": cfg.runbooks.for_check("infrastructure.rpc_latency")})
    assert failure["blocks"][-1]["text"]["text"] == (
        ":book: Runbook: <https://git.example/ops/blob/main/docs/runbooks.md#rpc-down|rpc-down>")

    engine = make_engine(sqlite_store_url)
    try:
        svc = AlertService(engine, cfg)
        now = datetime(2026, 2, 10, 12, tzinfo=UTC)
        msgs = svc.process_outcomes([CheckOutcome("infrastructure.rpc_latency", "infrastructure", "crit",
                                                  "RPC timeout", value=5000.0)], "devnet", now)
        msgs += svc.process_firing([], now + timedelta(minutes=10), environment="devnet")
    finally:
        engine.dispose()
    firing = [m for m in msgs if m["kind"] == "alert.firing"]
    assert firing, msgs
    item = firing[0]["payload"]["firing"][0]
    assert item["runbook_url"].endswith("#rpc-down")
    text = render("alert.firing", **{k: v for k, v in firing[0]["payload"].items()})["blocks"][1]["text"]["text"]
    assert "Runbook: <https://git.example/ops/blob/main/docs/runbooks.md#rpc-down|rpc-down>" in text


# --------------------------------------------------------------------------- store, flows and CLI


def _new_incident(engine, *, commander="amara", resolved_at=None, root_cause=None) -> str:
    from vvops.store import session_scope
    from vvops.store.models import Incident

    key = f"INC-K{uuid.uuid4().hex[:6]}"
    with session_scope(engine, immediate=True) as session:
        session.add(Incident(key=key, title="knowledge test", type="technical", severity="P2", status="resolved",
                             commander=commander, opened_at=(resolved_at or datetime.now(UTC)) - timedelta(hours=1),
                             acknowledged_at=(resolved_at or datetime.now(UTC)) - timedelta(minutes=50),
                             resolved_at=resolved_at or datetime.now(UTC), root_cause=root_cause))
    return key


@pytest.mark.prefect
def test_post_incident_report_records_its_action_items_once(ops_flows, ops_store_engine):
    from prefect import flow

    from tasks.incidents import write_incident_report
    from vvops.store.action_item_models import ActionItem

    key = _new_incident(ops_store_engine, commander="amara", resolved_at=datetime(2026, 11, 2, 10, tzinfo=UTC))

    @flow(name="knowledge-report-twice")
    def report_twice() -> tuple[dict, dict]:
        kwargs = dict(key=key, environment="devnet", variant="general", impact="none", root_cause="config drift",
                      contributing_factors=[], checklist=[], resolved_by="daniel",
                      action_items=["pin the RPC provider version @mei due 2026-11-09", "write the failover runbook"])
        return write_incident_report(**kwargs), write_incident_report(**kwargs)

    first, again = report_twice()
    with ops_store_engine.connect() as conn:
        rows = conn.execute(select(ActionItem.position, ActionItem.title, ActionItem.owner, ActionItem.due_on,
                                   ActionItem.status).where(ActionItem.incident_key == key)
                            .order_by(ActionItem.position)).all()
    assert [tuple(r) for r in rows] == [
        (0, "pin the RPC provider version", "mei", date(2026, 11, 9), "open"),
        (1, "write the failover runbook", "amara", date(2026, 11, 16), "open"),   # commander; resolved + 14 days
    ]
    assert first["report"]["action_item_records"] == again["report"]["action_item_records"]
    assert [r["owner"] for r in first["report"]["action_item_records"]] == ["mei", "amara"]
    assert "## Action items tracked" in first["markdown"] and "| mei | 2026-11-09 | open |" in first["markdown"]


@pytest.mark.prefect
def test_overdue_items_are_reminded_daily_through_the_outbox_until_closed_by_the_owner(
        ops_flows, ops_store_engine, capsys):
    from tasks.action_items import record_action_items, sweep_action_item_reminders
    from vvops.cli import main
    from vvops.store.models import AuditEntry, NotificationOutbox

    key = _new_incident(ops_store_engine, commander="amara", resolved_at=datetime(2026, 11, 2, 10, tzinfo=UTC))
    [item] = record_action_items.fn(key=key, environment="devnet", items=["tune the rule @mei due 2026-11-20"])

    def reminders() -> list[str]:
        with ops_store_engine.connect() as conn:
            return conn.execute(select(NotificationOutbox.idempotency_key).where(
                NotificationOutbox.idempotency_key.like(f"action-item:{item['id']}:%"))
                .order_by(NotificationOutbox.id)).scalars().all()

    for hour in (8, 9, 17):   # the sweep runs every minute; one reminder a day
        sweep_action_item_reminders.fn(environment="devnet", now=datetime(2026, 11, 25, hour, tzinfo=UTC))
    assert reminders() == [f"action-item:{item['id']}:reminder:2026-11-25"]
    sweep_action_item_reminders.fn(environment="devnet", now=datetime(2026, 11, 26, 8, tzinfo=UTC))
    assert len(reminders()) == 2
    with ops_store_engine.connect() as conn:
        payload = conn.execute(select(NotificationOutbox.channel, NotificationOutbox.payload).where(
            NotificationOutbox.idempotency_key == reminders()[-1])).one()
    assert payload.channel == "#vv-ops" and "<@U01MEITAN1>" in payload.payload["blocks"][0]["text"]["text"]
    assert "6 days overdue" in payload.payload["text"]

    # lukas (sre) may not close mei's item; mei closes it with evidence; then it is closed for good
    assert main(["action-items", "done", str(item["id"]), "--by", "lukas", "--evidence", "https://x/1"]) == 1
    assert "may not close an item owned by mei" in capsys.readouterr().err
    assert main(["action-items", "done", str(item["id"]), "--by", "mei", "--evidence", " "]) == 1
    assert "--evidence is empty" in capsys.readouterr().err
    with freeze_time("2026-11-27 10:00:00"):
        assert main(["action-items", "done", str(item["id"]), "--by", "mei", "--evidence", "https://git/pr/7"]) == 0
    assert "closed: action item" in capsys.readouterr().out
    assert main(["action-items", "done", str(item["id"]), "--by", "mei", "--evidence", "again"]) == 1
    assert "already closed (by mei)" in capsys.readouterr().err
    assert main(["action-items", "list", "--incident", key, "--status", "all"]) == 0
    listed = capsys.readouterr().out
    assert "done" in listed and "closed by mei 2026-11-27: https://git/pr/7" in listed

    sweep_action_item_reminders.fn(environment="devnet", now=datetime(2026, 11, 28, 8, tzinfo=UTC))
    assert len(reminders()) == 2                                          # done: no more reminders
    with ops_store_engine.connect() as conn:
        audit = conn.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.details).where(
            AuditEntry.subject == f"action-item:{item['id']}").order_by(AuditEntry.id)).all()
    assert [(a.actor, a.action) for a in audit] == [
        ("lukas", "action_item.done.refused"), ("mei", "cli.refused"), ("mei", "action_item.done"),
        ("mei", "cli.refused")]
    assert audit[0].details["rule"] == "actions.action_item_close_other_roles"
    assert audit[2].details["evidence"] == "https://git/pr/7"


@pytest.mark.prefect
def test_weekly_review_lists_open_and_overdue_items_with_owners_from_the_table(ops_flows, ops_store_engine):
    from flows.weekly_review import weekly_review
    from tasks.action_items import record_action_items

    key = _new_incident(ops_store_engine, resolved_at=datetime(1993, 3, 2, 10, tzinfo=UTC))
    record_action_items.fn(key=key, environment="devnet", now=datetime(1993, 3, 2, 11, tzinfo=UTC),
                           items=["overdue one @lukas due 1993-03-05", "later one @mei due 1993-04-30"])
    weekly = weekly_review(environment="devnet", now=datetime(1993, 3, 15, 7, tzinfo=UTC), notify_slack=False)
    mine = [i for i in weekly["action_items"] if i["incident"] == key]
    assert [(i["item"], i["owner"], i["due"], bool(i["overdue"])) for i in mine] == [
        ("overdue one", "lukas", "1993-03-05", True), ("later one", "mei", "1993-04-30", False)]
    assert "overdue" in weekly["summary"]


@pytest.mark.prefect
def test_monthly_review_measures_process_improvement_from_the_store(ops_flows, ops_store_engine):
    from flows.monthly_review import monthly_review
    from tasks.action_items import record_action_items
    from vvops.store import session_scope
    from vvops.store.action_item_models import ActionItem

    # an empty stretch: every figure says "no data"
    empty = monthly_review(environment="devnet", as_of=datetime(1990, 6, 1, tzinfo=UTC), notify_slack=False)
    section = empty["process_improvement"]
    assert all(r["incidents"] == 0 for r in section["trend"]) and section["follow_through"]["on_time_pct"] is None
    md = open(f"{empty['report_dir']}/monthly-review.md").read()
    improvement = md.split("## Process improvement", 1)[1]
    assert improvement.count("no data") >= 3
    # the automation level of the playbook and whether the published matrix is current (read from the registry)
    from vvops.coverage.playbook import playbook_path

    coverage = md.split("## Playbook coverage", 1)[1]
    if playbook_path().is_file():
        assert "Automation level:" in coverage and "Published matrix (docs/playbook-coverage.md): current" in coverage
        assert empty["playbook_coverage"]["automated_or_assisted_pct"] > 0
    else:
        assert "No data: the operations playbook could not be read" in coverage

    a = _new_incident(ops_store_engine, resolved_at=datetime(1991, 5, 3, 10, tzinfo=UTC), root_cause="Stale cache")
    b = _new_incident(ops_store_engine, resolved_at=datetime(1991, 5, 20, 10, tzinfo=UTC), root_cause="stale cache.")
    [early] = record_action_items.fn(key=a, environment="devnet", now=datetime(1991, 5, 3, 11, tzinfo=UTC),
                                     items=["purge on deploy @mei due 1991-05-10"])
    record_action_items.fn(key=b, environment="devnet", now=datetime(1991, 5, 20, 11, tzinfo=UTC),
                           items=["alert on cache age @lukas due 1991-05-25"])
    with session_scope(ops_store_engine, immediate=True) as session:
        row = session.get(ActionItem, early["id"])
        row.status, row.done_by, row.done_at, row.evidence = "done", "mei", datetime(1991, 5, 9, tzinfo=UTC), "pr"
    monthly = monthly_review(environment="devnet", as_of=datetime(1991, 6, 1, tzinfo=UTC), notify_slack=False)
    pi = monthly["process_improvement"]
    assert pi["trend"][-1] == {"month": "1991-05", "incidents": 2, "mtta_min": 10.0, "mttr_min": 60.0}
    assert [(r["root cause"], r["incidents"]) for r in pi["repeats"]["repeats"]] == [("stale cache", 2)]
    ft = pi["follow_through"]
    assert (ft["due"], ft["on_time"], ft["open"], ft["on_time_pct"]) == (2, 1, 1, 50.0)
    assert "action items closed on time: 50 %" in monthly["summary"]


def test_the_daily_report_artifact_links_each_failing_checks_runbook():
    from tasks.daily_report import render_daily_report
    from vvops.checks import CheckOutcome
    from vvops.config import load_config

    outcomes = [CheckOutcome("maintenance.backups", "maintenance", "crit", "last backup 3 days old"),
                CheckOutcome("protocol.onchain_activity.vault", "protocol", "ok", "fine")]
    context = {"open_incidents": [], "pending_approvals": [], "planned": [], "handoff": []}
    md = render_daily_report(environment="devnet", started_at=datetime(2026, 11, 30, 6, tzinfo=UTC),
                             outcomes=outcomes, counts={"ok": 1, "unknown": 0, "warn": 0, "crit": 1, "error": 0},
                             store_run_id=1, context=context, runbooks=load_config().runbooks)
    assert "[backups](docs/runbooks.md#backups)" in md
