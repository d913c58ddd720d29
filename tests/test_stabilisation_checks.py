"""Post-upgrade stabilisation: protocol-health every few minutes while the window is open, then back to daily."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from vvops.procedures.upgrades import stabilisation_check_due, stabilisation_window
from vvops.store.models import CheckResult, CheckRun

T = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)


def test_checks_are_due_every_interval_inside_the_window_only():
    window = stabilisation_window(completed_at=T, hours=24)
    due = dict(window=window, every_minutes=15)
    assert stabilisation_check_due(**due, last_run_at=None, now=T + timedelta(minutes=1))
    assert stabilisation_check_due(**due, last_run_at=T - timedelta(hours=3), now=T + timedelta(minutes=1))  # before
    assert not stabilisation_check_due(**due, last_run_at=T + timedelta(minutes=1), now=T + timedelta(minutes=15))
    assert stabilisation_check_due(**due, last_run_at=T + timedelta(minutes=1), now=T + timedelta(minutes=16))
    assert not stabilisation_check_due(**due, last_run_at=None, now=T + timedelta(hours=25))      # window closed
    assert not stabilisation_check_due(window=None, every_minutes=15, last_run_at=None, now=T)


@pytest.mark.devnet
@pytest.mark.prefect
def test_the_sweep_runs_protocol_health_during_stabilisation_and_not_after(ops_flows, ops_store_engine):
    from prefect.variables import Variable

    from flows.stabilisation_checks import stabilisation_checks
    from tasks.upgrades import STABILISATION_VARIABLE

    saved = Variable.get(STABILISATION_VARIABLE, default=None)
    now = datetime.now(timezone.utc)
    with ops_store_engine.begin() as conn:  # an earlier test's stabilisation run would make this one not yet due
        conn.execute(update(CheckRun).where(CheckRun.flow_name == "stabilisation-checks")
                     .values(started_at=now - timedelta(days=2)))
    try:
        Variable.set(STABILISATION_VARIABLE, {"devnet": {**stabilisation_window(completed_at=now - timedelta(minutes=5),
                                                                                  hours=24),
                                                         "change_id": "chg-stab", "contract": "vault"}},
                     overwrite=True)
        first = stabilisation_checks(environment="devnet")
        assert first["active"] and first["ran"] and first["change_id"] == "chg-stab"
        with ops_store_engine.connect() as conn:
            run = conn.execute(select(CheckRun).where(CheckRun.id == first["check_run_id"])).one()
            results = conn.execute(select(func.count()).select_from(CheckResult)
                                   .where(CheckResult.run_id == run.id)).scalar()
        assert run.flow_name == "stabilisation-checks" and run.environment == "devnet" and results > 0

        again = stabilisation_checks(environment="devnet")   # the next minute's sweep: not due for 15 minutes
        assert again["active"] and not again["ran"]

        Variable.set(STABILISATION_VARIABLE, {"devnet": stabilisation_window(completed_at=now - timedelta(days=2),
                                                                             hours=24)}, overwrite=True)
        assert stabilisation_checks(environment="devnet") == {"active": False}
    finally:
        Variable.set(STABILISATION_VARIABLE, saved or {}, overwrite=True)
