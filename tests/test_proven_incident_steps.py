"""Issue 13: the incident response's human steps (acknowledge, resolve) are proven like approval decisions.

Before: the acknowledgement and resolution forms took a typed `person` / `resolved_by` that anyone could write.
After: a real environment's rules (signatures only) refuse and audit a typed name, a garbage signature, a key off
the roster and someone's signature of another incident, and the run keeps waiting; a signature by the roster
address is accepted. The devnet (config: typed names trusted) takes a roster id and refuses one off the roster.
Answers go through plain HTTP to the real Prefect test server, as anyone who reaches the API could send them.
"""

from __future__ import annotations

import uuid

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from sqlalchemy import select

from tests.fixtures import prefect_http as prefect_api_http
from tests.fixtures.approval_fixtures import person_key
from vvops.identity.keys import sign_statement
from vvops.identity.statements import incident_statement
from vvops.store.models import AuditEntry, Incident, IncidentEvent

pytestmark = [pytest.mark.prefect, pytest.mark.devnet]


def _resume(api: str, run_id: str, run_input: dict) -> dict:
    """What anybody who reaches the Prefect API can send."""
    response = prefect_api_http.post(f"{api}/flow_runs/{run_id}/resume", json={"run_input": run_input}, timeout=30)
    assert response.status_code < 500, f"resume of {run_id}: {response.status_code} {response.text[:300]}"
    return response.json()


def _incident(engine, marker: str, timeout: float = 60) -> tuple[str, str]:
    """(incident key, flow run id) of the incident whose title holds `marker`, once opened."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            row = conn.execute(select(Incident.key, IncidentEvent.data).join(IncidentEvent).where(
                Incident.title.contains(marker), IncidentEvent.kind == "opened")).first()
        if row is not None:
            return row[0], row[1]["flow_run_id"]
        time.sleep(0.1)
    raise AssertionError(f"no incident {marker} opened")


def _signed(engine, key: str, step: str, person: str) -> str:
    """`person`'s signature (devnet key; an off-roster key for others) of the statement the form shows."""
    with engine.connect() as conn:
        typed = conn.execute(select(IncidentEvent.data).join(Incident).where(
            Incident.key == key, IncidentEvent.kind == f"awaiting_{step}").order_by(IncidentEvent.id.desc())).scalar()
    signed = Account.sign_message(encode_typed_data(full_message=typed["typed_data"]), person_key(person))
    return "0x" + bytes(signed.signature).hex()


def _audited(engine, key: str, action: str) -> list[tuple[str, dict]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(AuditEntry.actor, AuditEntry.details).where(
            AuditEntry.subject == key, AuditEntry.action == action).order_by(AuditEntry.id))]


def _form(run_id: str, pause_key: str) -> tuple[dict, str]:
    """The schema and the description of the form the paused run shows."""
    from prefect.input.run_input import read_flow_run_input

    return (read_flow_run_input(f"paused-{pause_key}-schema", flow_run_id=uuid.UUID(run_id)),
            read_flow_run_input(f"paused-{pause_key}-description", flow_run_id=uuid.UUID(run_id)))


def test_forged_acknowledgements_are_refused_audited_and_a_signed_one_is_accepted(
        strict_identity, ops_flows, ops_store_engine, prefect_api, flow_in_thread):
    from flows.incident_response import incident_response

    marker = uuid.uuid4().hex[:8]
    # the old way: the acknowledger named by a parameter. A typed name proves nothing here: refused, the run waits
    run = flow_in_thread(incident_response, title=f"slow RPC {marker}", severity="P2", incident_type="technical",
                         opened_by="mei", acknowledged_by="amara", poll_interval=0.5)
    key, run_id = _incident(ops_store_engine, marker)
    pause = run.wait_paused(run_id, timeout=120)
    schema, description = _form(run_id, pause)
    assert "signature" in schema["required"] and "person" not in schema["properties"]
    assert f'"incident": "{key}"' in description and '"step": "acknowledge"' in description

    other = incident_statement(incident="INC-9999", step="acknowledge", title=f"slow RPC {marker}",
                               environment="devnet", chain_id=31337, expires=2**40)
    assert _resume(prefect_api, run_id, {"person": "daniel", "note": "typed"})["status"] == "REJECT"
    attempts = [{"signature": "0x" + "11" * 65},                                        # not a signature
                {"signature": _signed(ops_store_engine, key, "acknowledge", "erin")},   # a key on no roster
                {"signature": sign_statement(other, person_key("daniel"))}]             # daniel's, another incident
    for attempt in attempts:
        assert _resume(prefect_api, run_id, attempt)["status"] == "ACCEPT"
        pause = run.wait_paused(run_id, after=pause, timeout=120)
    with ops_store_engine.connect() as conn:
        assert conn.execute(select(Incident.acknowledged_at).where(Incident.key == key)).scalar() is None
    assert [d["refusal_reason"] for _, d in _audited(ops_store_engine, key, "incident.acknowledge.refused")] == [
        "proof_not_accepted", "bad_signature", "unknown_signer", "unknown_signer"]
    assert "unknown_signer" in _form(run_id, pause)[1]   # the form says why the last answer was refused

    answer = {"signature": _signed(ops_store_engine, key, "acknowledge", "daniel"), "note": "on it"}
    assert _resume(prefect_api, run_id, answer)["status"] == "ACCEPT"
    pause = run.wait_paused(run_id, after=pause, timeout=120)   # next: the resolution form, signed too
    schema, _ = _form(run_id, pause)
    assert {"impact", "root_cause", "signature"} <= set(schema["required"])
    ack_signature = answer["signature"]   # an acknowledgement's signature does not resolve
    assert _resume(prefect_api, run_id, {"impact": "none", "root_cause": "provider", "signature": ack_signature}
                   )["status"] == "ACCEPT"
    pause = run.wait_paused(run_id, after=pause, timeout=120)
    assert _resume(prefect_api, run_id, {"impact": "none", "root_cause": "provider",
                                         "signature": _signed(ops_store_engine, key, "resolve", "mei")}
                   )["status"] == "ACCEPT"
    result = run.join(timeout=120)

    assert result["status"] == "resolved"
    [(actor, proven)] = _audited(ops_store_engine, key, "incident.acknowledge.proven")
    assert (actor, proven["proof"]) == ("daniel", "eip712")
    assert proven["signer"] == strict_identity.get("team.yaml", "people[1].address")
    assert [a for a, _ in _audited(ops_store_engine, key, "incident.resolve.proven")] == ["mei"]
    assert [d["refusal_reason"] for _, d in _audited(ops_store_engine, key, "incident.resolve.refused")] == [
        "unknown_signer"]
    with ops_store_engine.connect() as conn:
        actors = dict(conn.execute(select(IncidentEvent.kind, IncidentEvent.actor).join(Incident).where(
            Incident.key == key, IncidentEvent.kind.in_(("acknowledged", "resolved")))).all())
    assert actors == {"acknowledged": "daniel", "resolved": "mei"}


def test_the_devnet_takes_a_typed_roster_id_and_refuses_one_off_the_roster(
        ops_flows, ops_store_engine, prefect_api, flow_in_thread):
    from flows.incident_response import incident_response

    marker = uuid.uuid4().hex[:8]
    run = flow_in_thread(incident_response, title=f"disk filling {marker}", severity="P3", incident_type="technical",
                         opened_by="mei", poll_interval=0.5)
    key, run_id = _incident(ops_store_engine, marker)
    pause = run.wait_paused(run_id, timeout=120)
    schema, description = _form(run_id, pause)
    assert "person" in schema["properties"] and "typed names" in description   # the form says what it trusts
    assert _resume(prefect_api, run_id, {"person": "erin"})["status"] == "ACCEPT"
    pause = run.wait_paused(run_id, after=pause, timeout=120)
    assert _resume(prefect_api, run_id, {"person": "priya", "note": "looking"})["status"] == "ACCEPT"
    pause = run.wait_paused(run_id, after=pause, timeout=120)
    assert _resume(prefect_api, run_id, {"person": "priya", "impact": "none", "root_cause": "log rotation"}
                   )["status"] == "ACCEPT"
    assert run.join(timeout=120)["status"] == "resolved"
    assert [d["refusal_reason"] for _, d in _audited(ops_store_engine, key, "incident.acknowledge.refused")] == [
        "unknown_person"]
    assert [(a, d["proof"]) for a, d in _audited(ops_store_engine, key, "incident.acknowledge.proven")] == [
        ("priya", "typed_name")]
