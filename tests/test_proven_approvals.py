"""The attacks of issue 13, tried the way an attacker would: plain HTTP to the Prefect API of the real (test)
server, and the CLI against the real store. Identity rules are those of a real environment (no typed names);
the devnet chain and, for the decision tests, the roster's devnet keys stand in for the leads' wallets.

Before: a resume with `approver: "daniel"` executed a fee change; a proposer could be anybody; `--by` was a
roster lookup. After: each attempt is refused, the refusal is audited with its reason, nothing reaches the chain.
"""

from __future__ import annotations

import time

import pytest
from eth_account import Account
from eth_utils import keccak
from prefect import flow
from sqlalchemy import select

from tests.fixtures import prefect_http as prefect_api_http
from tests.fixtures.approval_fixtures import (approval_run_id, open_request_id, person_key, signed_answer,
                                              signed_proposal)
from vvops.identity.keys import sign_statement
from vvops.store.models import ApprovalDecision, AuditEntry, ChainAction

pytestmark = [pytest.mark.prefect]


def _raw_resume(api: str, run_id: str, run_input: dict) -> dict:
    """What anybody who reaches the Prefect API can send (no client library, no credentials)."""
    return prefect_api_http.post(f"{api}/flow_runs/{run_id}/resume", json={"run_input": run_input}, timeout=30).json()


def _refusals(engine, request_id: int) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [(d["refusal_reason"], d.get("proof")) for d in conn.execute(
            select(AuditEntry.details).where(AuditEntry.subject == f"approval:{request_id}",
                                             AuditEntry.action == "approval.decision.refused")
            .order_by(AuditEntry.id)).scalars()]


def _fee(chain, devnet) -> int:
    return chain.contract("VaultV1", devnet.contracts.vault).call("feeBps")


@pytest.mark.devnet
def test_forged_decisions_through_the_bare_api_are_refused_audited_and_send_nothing(
        strict_identity, no_recent_parameter_changes, ops_flows, ops_store_engine, prefect_api, devnet, fresh_devnet_state, flow_in_thread,
        monkeypatch):
    from flows.parameter_change import parameter_change
    from vvops.cli import main

    params = dict(parameter="feeBps", new_value=40, proposer="kwame", justification="attack test")
    run = flow_in_thread(parameter_change, **params, environment="devnet", approval_poll_interval=0.5,
                         **signed_proposal(parameter_change, "parameter_change", "kwame", params))
    run_id = approval_run_id(ops_store_engine, "vault.feeBps: 30 → 40")
    key = run.wait_paused(run_id, timeout=120)
    rid = open_request_id(ops_store_engine, run_id)

    # 1. the old attack: a typed approver. The form has no such field and needs a signature: Prefect refuses it
    typed = _raw_resume(prefect_api, run_id, {"decision": "approve", "approver": "daniel", "reason": "lgtm"})
    assert typed["status"] == "REJECT" and "approver" in typed["details"]["reason"], typed
    # 2..6: inputs Prefect accepts, each refused by the flow (audited) before the run pauses again
    from dataclasses import replace

    from vvops.approvals import service

    other_request = signed_answer(ops_store_engine, rid, "daniel")
    elsewhere = replace(service.get_state(ops_store_engine, rid), id=rid + 1000)
    other_request["signature"] = sign_statement(service.statement_for(elsewhere, "approve"), person_key("daniel"))
    attempts = [
        {"decision": "approve", "reason": "lgtm", "signature": "recorded:slack"},   # "Slack already recorded it"
        {"decision": "approve", "reason": "lgtm", "signature": "0x" + "11" * 65},   # not a signature
        signed_answer(ops_store_engine, rid, "mallory"),                           # a key on no roster
        other_request,                                                              # daniel's, for another request
        signed_answer(ops_store_engine, rid, "kwame"),                             # the proposer himself
        signed_answer(ops_store_engine, rid, "sofia"),                             # support: not an ops_lead
    ]
    for attempt in attempts:
        assert _raw_resume(prefect_api, run_id, attempt)["status"] == "ACCEPT"
        key = run.wait_paused(run_id, after=key, timeout=120)
    assert service.get_state(ops_store_engine, rid).status == "pending"
    assert _fee(fresh_devnet_state, devnet) == 30
    with ops_store_engine.connect() as conn:
        assert conn.execute(select(ChainAction.id).where(ChainAction.idempotency_key.like(f"parameter_change:{run_id}:%"))).first() is None
    assert [r for r, _ in _refusals(ops_store_engine, rid)] == [
        "bad_signature", "unknown_signer", "unknown_signer", "self_approval", "missing_role"]

    # a lead at a terminal: `vvops approve` signs with a key (here the devnet key the config trusts) and wakes the run
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    monkeypatch.setenv("VVOPS_STORE_URL", str(ops_store_engine.url))
    assert main(["approve", str(rid), "--decision", "approve", "--reason", "bounds and impact checked",
                 "--as", "daniel"]) == 0
    result = run.join(timeout=180)
    assert result["status"] == "applied" and result["approvers"] == ["daniel"]
    assert _fee(fresh_devnet_state, devnet) == 40
    with ops_store_engine.connect() as conn:
        accepted = conn.execute(select(AuditEntry.details).where(
            AuditEntry.subject == f"approval:{rid}", AuditEntry.action == "approval.decision.accepted")).scalar_one()
        rows = conn.execute(select(ApprovalDecision.approver, ApprovalDecision.accepted)
                            .where(ApprovalDecision.request_id == rid).order_by(ApprovalDecision.id)).all()
    assert (accepted["proof"], accepted["signer"]) == ("eip712", strict_identity.get("team.yaml", "people[1].address"))
    assert [tuple(r) for r in rows][-1] == ("daniel", True) and [r[1] for r in rows].count(True) == 1


@flow(name="proposal-probe")
def proposal_probe(parameter: str, new_value: int, proposer: str, proposal_signature: str = "",
                   proposal_expires: int = 0, environment: str = "devnet") -> dict:
    from tasks.approvals import prove_proposer

    return prove_proposer(procedure="parameter_change", flow_fn=proposal_probe, values=locals(), proposer=proposer,
                          environment=environment, signature=proposal_signature, expires=proposal_expires)


def _proposal_refusals(engine) -> list[str]:
    with engine.connect() as conn:
        return [d["refusal_reason"] for d in conn.execute(
            select(AuditEntry.details).where(AuditEntry.action == "proposal.refused").order_by(AuditEntry.id)).scalars()]


def test_a_proposer_must_be_proven_and_a_signed_proposal_starts_one_run(strict_identity, ops_flows, ops_store_engine,
                                                                        prefect_api, monkeypatch):
    from flows.parameter_change import parameter_change
    from tasks.approvals import ProposerNotProven

    before = len(_proposal_refusals(ops_store_engine))
    change = dict(parameter="feeBps", new_value=40)
    # a typed proposer (the old `proposer=amara`), someone off the roster, a signature by someone else, an old one
    with pytest.raises(ProposerNotProven, match="no_proof"):
        parameter_change(**change, proposer="amara", environment="devnet")
    attempts = {"unknown_signer": ("mallory", "mallory", 600), "wrong_signer": ("amara", "priya", 600),
                "signature_expired": ("priya", "priya", -5)}
    for reason, (claimed, signer, ttl) in attempts.items():
        proof = signed_proposal(proposal_probe, "parameter_change", signer, {**change, "proposer": claimed}, ttl_s=ttl)
        if claimed != signer:   # the signer signs a statement naming someone else as proposer
            from vvops.identity.statements import flow_proposal

            st = flow_proposal(flow_fn=proposal_probe, values={**change, "proposer": claimed},
                               procedure="parameter_change", proposer=claimed, environment="devnet", chain_id=31337,
                               expires=proof["proposal_expires"])
            proof["proposal_signature"] = sign_statement(st, person_key(signer))
        with pytest.raises(ProposerNotProven, match=reason):
            proposal_probe(**change, proposer=claimed, **proof)
    # signed parameters are what runs: the same signature for another value does not verify
    good = signed_proposal(proposal_probe, "parameter_change", "priya", {**change, "proposer": "priya"})
    with pytest.raises(ProposerNotProven, match="unknown_signer"):
        proposal_probe(parameter="feeBps", new_value=999, proposer="priya", **good)
    assert proposal_probe(**change, proposer="priya", **good)["signer"] == Account.from_key(person_key("priya")).address
    with pytest.raises(ProposerNotProven, match="replayed"):   # one signed proposal starts one run
        proposal_probe(**change, proposer="priya", **good)
    assert _proposal_refusals(ops_store_engine)[before:] == [
        "no_proof", "unknown_signer", "wrong_signer", "signature_expired", "unknown_signer", "replayed"]

    # `vvops propose` signs the flow's parameters and starts it (here it stops at the bounds, after the proof)
    from vvops.cli import main

    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    assert main(["propose", "parameter-change", "--as", "priya", "-p", "parameter=feeBps", "-p", "new_value=5000"]) != 0
    with ops_store_engine.connect() as conn:
        actor, details = conn.execute(select(AuditEntry.actor, AuditEntry.details).where(
            AuditEntry.action == "proposal.proven").order_by(AuditEntry.id.desc()).limit(1)).one()
        last = conn.execute(select(AuditEntry.action).order_by(AuditEntry.id.desc()).limit(1)).scalar()
    assert (actor, details["proof"], details["signer"]) == ("priya", "eip712", Account.from_key(person_key("priya")).address)
    assert last == "parameter_change.refused"


# ---------------------------------------------------------------------------- CLI actions


REAL_KEYS = {person: keccak(f"{person}-hardware-wallet".encode()) for person in ("oscar", "sofia", "amara")}


@pytest.fixture
def strict_cli(config_copy, monkeypatch, tmp_path):
    """A real environment's rules for the CLI: no typed names, no devnet keys; oscar, sofia and amara have
    their own keys (in variables, as a terminal session would)."""
    config_copy.set("environments.yaml", "environments.devnet.identity", {"proofs": ["eip712", "slack"],
                                                                          "devnet_keys": False})
    people = config_copy.get("team.yaml", "people")
    for i, p in enumerate(people):
        if p["id"] in REAL_KEYS:
            config_copy.set("team.yaml", f"people[{i}].address", Account.from_key(REAL_KEYS[p["id"]]).address)
            monkeypatch.setenv(f"KEY_{p['id'].upper()}", "0x" + REAL_KEYS[p["id"]].hex())
    monkeypatch.setenv("VVOPS_CONFIG_DIR", str(config_copy.dir))
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    monkeypatch.setenv("VVOPS_STORE_URL", url)
    from vvops.store import make_engine

    return make_engine(url)


def _cli(capsys, *argv: str) -> tuple[int, str]:
    from vvops.cli import main

    code = main(list(argv))
    out = capsys.readouterr()
    return code, (out.out + out.err).strip()


def _cli_refusals(engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return [(a, actor, d["rule"]) for a, actor, d in conn.execute(
            select(AuditEntry.action, AuditEntry.actor, AuditEntry.details)
            .where(AuditEntry.action.like("%.refused")).order_by(AuditEntry.id))]


def test_cli_actions_are_proven_and_limited_by_role(strict_cli, capsys):
    mute_all = ['severity=~"P0|P1|P2|P3"', "--for", "3650d", "--reason", "too noisy"]
    # `--by` alone is a claim, not a proof
    code, out = _cli(capsys, "silence", "add", *mute_all, "--by", "oscar")
    assert code == 1 and "must prove who they are" in out
    # a key that is not the claimed person's
    code, out = _cli(capsys, "silence", "add", *mute_all, "--by", "oscar", "--key-env", "KEY_SOFIA")
    assert code == 1 and "proven to be sofia, not oscar" in out
    # support muting P0 for 10 years
    code, out = _cli(capsys, "silence", "add", *mute_all, "--by", "sofia", "--key-env", "KEY_SOFIA")
    assert code == 1 and "sofia (support) may not silence P0" in out
    # security_ops may, but not for 10 years
    code, out = _cli(capsys, "silence", "add", *mute_all, "--by", "oscar", "--key-env", "KEY_OSCAR")
    assert code == 1 and "lasts at most 4h" in out
    # a silence that mutes everything (Alertmanager refuses it): refused before anyone signs
    code, out = _cli(capsys, "silence", "add", 'alertname=~".*"', "--for", "1h", "--reason", "x", "--by", "oscar",
                     "--key-env", "KEY_OSCAR")
    assert code == 1 and "mutes everything" in out
    # a support engineer signing off a security item, releasing a contract slot
    code, out = _cli(capsys, "checklist", "confirm", _security_item(), "--by", "sofia", "--key-env", "KEY_SOFIA")
    assert code == 1 and "may not sign off an item owned by security_ops" in out
    code, out = _cli(capsys, "slots", "release", "vault", "--by", "sofia", "--key-env", "KEY_SOFIA", "--reason", "x")
    assert code == 1 and "may not release a contract slot" in out
    assert _cli_refusals(strict_cli) == [
        ("silence.created.refused", "oscar", "identity.no_proof"),
        ("silence.created.refused", "oscar", "identity.wrong_signer"),
        ("silence.created.refused", "sofia", "silence_policy.roles"),
        ("silence.created.refused", "oscar", "silence_policy.max_duration"),
        ("checklist.confirm.refused", "sofia", "actions.checklist_signoff_other_role"),
        ("contract_slot.force_released.refused", "sofia", "actions.slot_release")]

    # allowed: oscar for 4 h with his key; amara signing with an external wallet (typed data printed, then signed)
    code, out = _cli(capsys, "silence", "add", 'severity=~"P0|P1|P2|P3"', "--for", "4h", "--reason", "drill",
                     "--by", "oscar", "--key-env", "KEY_OSCAR")
    assert code == 0, out
    expires = str(int(time.time()) + 300)
    matcher = ['alertname="rpc_down"', "--for", "2h", "--reason", "provider migration", "--by", "amara"]
    with pytest.raises(SystemExit) as printed:
        _cli(capsys, "silence", "add", *matcher, "--expires", expires, "--print-typed-data")
    assert printed.value.code == 0
    import json

    typed = json.loads(capsys.readouterr().out)
    signature = Account.sign_typed_data(REAL_KEYS["amara"], full_message=typed).signature
    code, out = _cli(capsys, "silence", "add", *matcher, "--expires", expires, "--signature", "0x" + bytes(signature).hex())
    assert code == 0, out
    with strict_cli.connect() as conn:
        created = conn.execute(select(AuditEntry.actor, AuditEntry.details)
                               .where(AuditEntry.action == "silence.created").order_by(AuditEntry.id)).all()
    assert [(a, d["proof"], d["signer"]) for a, d in created] == [
        ("oscar", "eip712", Account.from_key(REAL_KEYS["oscar"]).address),
        ("amara", "eip712", Account.from_key(REAL_KEYS["amara"]).address)]


def _security_item() -> str:
    from vvops.coverage.checklists import checklist_for

    return next(i.id for c in ("daily", "weekly", "monthly") for i in checklist_for(c) if i.owner_role == "security_ops")


def test_a_drill_record_is_proven_like_every_cli_action(strict_cli, capsys):
    drill = ["drill", "record", "--kind", "tabletop", "--scenario", "guardian key lost", "--participant", "oscar",
             "--finding", "no backup guardian", "--at", "2026-11-20T14:00"]
    code, out = _cli(capsys, *drill, "--by", "oscar")                             # a claim, not a proof
    assert code == 1 and "must prove who they are" in out
    code, out = _cli(capsys, *drill, "--by", "oscar", "--key-env", "KEY_SOFIA")   # someone else's key
    assert code == 1 and "proven to be sofia, not oscar" in out
    code, out = _cli(capsys, *drill, "--by", "oscar", "--key-env", "KEY_OSCAR")
    assert code == 0 and "tabletop drill #1" in out, out
    assert [(a, r) for a, _, r in _cli_refusals(strict_cli)] == [
        ("drill.record.refused", "identity.no_proof"), ("drill.record.refused", "identity.wrong_signer")]
    with strict_cli.connect() as conn:
        actor, details = conn.execute(select(AuditEntry.actor, AuditEntry.details)
                                      .where(AuditEntry.action == "drill.record")).one()
    assert (actor, details["proof"], details["signer"]) == ("oscar", "eip712",
                                                            Account.from_key(REAL_KEYS["oscar"]).address)
