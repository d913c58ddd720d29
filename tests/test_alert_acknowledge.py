"""Acknowledging an alert, from a Slack page's button or from the Prefect UI, stops its escalation."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from tests.test_slack_interactions import SECRET, post
from vvops.checks import CheckOutcome
from vvops.store.models import Alert, AuditEntry

pytestmark = [pytest.mark.prefect]


def _firing_alert(engine, cfg) -> int:
    from vvops.alerting.service import AlertService

    check_id = "protocol.contract_state.vault.paused"
    outcome = CheckOutcome(check_id, "protocol", "crit", f"paused outside an open incident {uuid.uuid4().hex[:6]}")
    AlertService(engine, cfg).process_outcomes([outcome], "devnet", datetime.now(timezone.utc))
    with engine.connect() as conn:
        rows = conn.execute(select(Alert.id, Alert.labels).where(Alert.status == "firing")).all()
    return max(row.id for row in rows if row.labels.get("check") == check_id)


def _ack_button(alert_id: int, slack_user: str) -> bytes:
    import json
    import time
    from urllib.parse import urlencode

    payload = {"type": "block_actions", "user": {"id": slack_user},
               "actions": [{"action_id": "alert_acknowledge", "value": str(alert_id), "type": "button",
                            "action_ts": f"{time.time():.6f}"}]}
    return urlencode({"payload": json.dumps(payload)}).encode()


def test_the_acknowledge_button_on_a_page_acknowledges_as_the_roster_person(ops_flows, quiet_store, ops_store_engine,
                                                                            slack_endpoint):
    from tasks.runtime import ops_config
    from vvops.notify.messages import render

    cfg = ops_config("devnet")
    alert_id = _firing_alert(ops_store_engine, cfg)
    page = render("escalation_page", subject="vault paused", severity="P1", target_name="Amara", alert_id=alert_id)
    button = page["blocks"][-1]["elements"][0]
    assert (button["action_id"], button["value"]) == ("alert_acknowledge", str(alert_id))

    base = slack_endpoint(signing_secret=SECRET, environment="devnet", engine=ops_store_engine, people=cfg.people)
    stranger = post(base, _ack_button(alert_id, "U0NOTONROSTER"))
    person = cfg.people[0]
    answer = post(base, _ack_button(alert_id, person.slack_user_id))

    assert stranger.json()["results"][0]["error"] == "not_on_roster"
    assert answer.json()["results"][0]["ok"] is True
    with ops_store_engine.connect() as conn:
        alert = conn.execute(select(Alert).where(Alert.id == alert_id)).one()
        audits = conn.execute(select(AuditEntry.action, AuditEntry.actor)).all()
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", person.id)
    assert ("alert.ack_refused", "slack:U0NOTONROSTER") in audits


def test_acknowledging_from_the_ui_flow(ops_flows, quiet_store, ops_store_engine):
    from flows.acknowledge_alert import acknowledge_alert_flow
    from tasks.runtime import ops_config

    cfg = ops_config("devnet")
    alert_id = _firing_alert(ops_store_engine, cfg)

    result = acknowledge_alert_flow(alert=str(alert_id), acknowledged_by=cfg.people[1].id, environment="devnet")

    assert result["acknowledged_by"] == cfg.people[1].id
    with ops_store_engine.connect() as conn:
        alert = conn.execute(select(Alert).where(Alert.id == alert_id)).one()
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", cfg.people[1].id)


def test_outside_the_devnet_an_acknowledgement_from_the_ui_must_be_signed(ops_flows, quiet_store, ops_store_engine,
                                                                          strict_identity):
    """Issue 13: `acknowledged_by` was a name anyone could type. Where typed names are not trusted, the person signs
    the run's parameters (what `vvops propose acknowledge-alert --as PERSON` does); a refusal is audited."""
    from flows.acknowledge_alert import acknowledge_alert_flow
    from tasks.approvals import ProposerNotProven
    from tasks.runtime import ops_config
    from tests.fixtures.approval_fixtures import signed_proposal

    alert_id = _firing_alert(ops_store_engine, ops_config("devnet"))
    values = dict(alert=str(alert_id), acknowledged_by="lukas")
    with pytest.raises(ProposerNotProven, match="no_proof"):
        acknowledge_alert_flow(**values, environment="devnet")
    forged = signed_proposal(acknowledge_alert_flow, "acknowledge_alert", "mei", values)  # mei's key, lukas's name
    with pytest.raises(ProposerNotProven):
        acknowledge_alert_flow(**values, environment="devnet", **forged)
    with ops_store_engine.connect() as conn:
        assert conn.execute(select(Alert.status).where(Alert.id == alert_id)).scalar() == "firing"
        refused = conn.execute(select(AuditEntry.actor).where(AuditEntry.action == "proposal.refused")
                               .order_by(AuditEntry.id.desc()).limit(2)).scalars().all()
    assert refused == ["lukas", "lukas"]

    result = acknowledge_alert_flow(**values, environment="devnet",
                                    **signed_proposal(acknowledge_alert_flow, "acknowledge_alert", "lukas", values))
    assert (result["acknowledged_by"], result["proof"]) == ("lukas", "eip712")
    with ops_store_engine.connect() as conn:
        assert conn.execute(select(Alert.status).where(Alert.id == alert_id)).scalar() == "acknowledged"
