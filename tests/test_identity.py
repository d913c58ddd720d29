"""Proofs of who decided: EIP-712 statements and their verifiers, roles for CLI actions, Alertmanager's
silence and matcher rules. Plain functions (no server); the HTTP-level attacks are in test_proven_approvals.py."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import pytest
from eth_account import Account
from eth_utils import keccak

from vvops.config import load_config
from vvops.config.alerting_schema import Matcher, Route, SilenceSpec
from vvops.identity import (Eip712Proof, IdentityContext, Proven, Refused, SlackProof, TypedNameProof,
                            decision_statement, prove, register_verifier)
from vvops.identity.actions import ActionRefused, authorize_checklist, authorize_silence, silence_severities
from vvops.identity.keys import devnet_address, devnet_key, sign_statement
from vvops.identity.proofs import VERIFIERS

CFG = load_config(environment="devnet")
STRICT = replace(IdentityContext.from_config(CFG), proofs=("eip712", "slack"))
MAINNET = IdentityContext.from_config(load_config(environment="mainnet"))


def _decision(decision="approve", expires=None, request_id=7, chain_id=31337):
    return decision_statement(request_id=request_id, procedure="parameter_change", subject="vault.feeBps: 30 → 50",
                              decision=decision, environment="devnet", chain_id=chain_id,
                              execution_hash="0x" + "ab" * 32, expires=expires or int(time.time()) + 600)


def test_a_signature_by_the_rosters_address_proves_the_person_and_cast_can_sign_the_same_json():
    statement = _decision()
    typed = statement.typed_data()
    assert typed["primaryType"] == "Decision" and typed["domain"] == {"name": "VeritasVault Ops", "version": "1",
                                                                       "chainId": 31337}
    assert [f["name"] for f in typed["types"]["Decision"]] == ["requestId", "procedure", "subject", "decision",
                                                               "environment", "chainId", "executionHash", "expires"]
    # what any EIP-712 signer computes from the same JSON (eth_account's full-message path, as cast does)
    signed = Account.sign_typed_data(devnet_key("daniel"), full_message=typed)
    assert "0x" + bytes(signed.message_hash).hex() == statement.digest()
    outcome = prove(Eip712Proof("0x" + bytes(signed.signature).hex()), statement, STRICT)
    assert isinstance(outcome, Proven) and (outcome.person, outcome.kind) == ("daniel", "eip712")
    assert outcome.evidence["signer"] == devnet_address("daniel")


@pytest.mark.parametrize("case, reason", [
    ("garbage", "bad_signature"),
    ("other_decision", "unknown_signer"),     # a signature of `approve` does not count for `reject`
    ("other_chain", "unknown_signer"),
    ("stranger", "unknown_signer"),
    ("claims_someone_else", "wrong_signer"),
    ("expired", "signature_expired"),
])
def test_every_bad_signature_is_refused_with_its_reason(case, reason):
    statement = _decision()
    key = devnet_key("daniel")
    sig = {"garbage": "0x" + "11" * 65,
           "other_decision": sign_statement(_decision("reject"), key),
           "other_chain": sign_statement(_decision(chain_id=1), key),
           "stranger": sign_statement(statement, keccak(b"mallory")),
           "claims_someone_else": sign_statement(statement, key),
           "expired": sign_statement(_decision(expires=int(time.time()) - 1), key)}[case]
    target = _decision(expires=int(time.time()) - 1) if case == "expired" else statement
    outcome = prove(Eip712Proof(sig, claimed="kwame" if case == "claims_someone_else" else None), target, STRICT)
    assert isinstance(outcome, Refused) and outcome.reason == reason, outcome


def test_typed_names_and_devnet_keys_count_only_where_config_says_so():
    statement = _decision()
    assert prove(TypedNameProof("daniel"), statement, IdentityContext.from_config(CFG)).ok   # devnet config
    refused = prove(TypedNameProof("daniel"), statement, STRICT)
    assert (refused.ok, refused.reason) == (False, "proof_not_accepted")
    # mainnet trusts no public devnet key, even when the roster (wrongly) lists it
    mainnet_statement = _decision(chain_id=1)
    on_mainnet = prove(Eip712Proof(sign_statement(mainnet_statement, devnet_key("daniel"))), mainnet_statement, MAINNET)
    assert (on_mainnet.ok, on_mainnet.reason) == (False, "devnet_key_not_trusted")
    assert prove(None, statement, STRICT).reason == "no_proof"


def test_slack_proofs_map_the_user_id_to_the_roster():
    assert prove(SlackProof("U01KWAMEM1"), _decision(), STRICT).person == "kwame"
    assert prove(SlackProof("U09STRANGER"), _decision(), STRICT).reason == "unknown_person"


def test_another_kind_of_proof_plugs_in_by_registering_a_verifier():
    class Attestation:
        kind = "attestation"

    register_verifier("attestation", lambda proof, statement, ctx, now: Proven("amara", "attestation", {}))
    try:
        ctx = replace(STRICT, proofs=("eip712", "slack", "attestation"))
        assert prove(Attestation(), _decision(), ctx).person == "amara"
        assert prove(Attestation(), _decision(), STRICT).reason == "proof_not_accepted"
    finally:
        VERIFIERS.pop("attestation")


def test_a_safe_owner_confirmation_proves_the_person_whose_safe_owner_it_is():
    from vvops.identity.proofs import SafeOwnerProof

    ctx = IdentityContext.from_config(CFG)
    owner = CFG.person("amara").safe_owner["devnet"]
    assert prove(SafeOwnerProof("amara", owner, "0x01"), _decision(), ctx).person == "amara"
    assert prove(SafeOwnerProof("daniel", owner, "0x01"), _decision(), ctx).reason == "wrong_signer"
    assert prove(SafeOwnerProof("amara", owner, "0x01"), _decision(), STRICT).reason == "proof_not_accepted"


# ---------------------------------------------------------------------------- roles for CLI actions


def _m(*texts):
    return [Matcher.parse(t) for t in texts]


def test_who_may_silence_what_and_for_how_long():
    sofia, oscar, mei = CFG.person("sofia"), CFG.person("oscar"), CFG.person("mei")
    everything = _m('severity=~"P0|P1|P2|P3"')
    assert silence_severities(everything, CFG.alerting) == ["P0", "P1", "P2", "P3"]
    assert silence_severities(_m('alertname="rpc_down"'), CFG.alerting) == ["P1"]   # the rule's fixed severity
    assert silence_severities(_m('severity="P3"', 'team="infra"'), CFG.alerting) == ["P3"]
    with pytest.raises(ActionRefused, match="sofia .* may not silence P0") as refused:
        authorize_silence(sofia, matchers=everything, duration=timedelta(hours=1), reason="noisy", alerting=CFG.alerting)
    assert refused.value.rule == "silence_policy.roles"
    with pytest.raises(ActionRefused, match="at most 4h") as too_long:
        authorize_silence(oscar, matchers=everything, duration=timedelta(days=3650), reason="x", alerting=CFG.alerting)
    assert too_long.value.rule == "silence_policy.max_duration"
    with pytest.raises(ActionRefused, match="needs a reason"):
        authorize_silence(oscar, matchers=everything, duration=timedelta(hours=1), reason=" ", alerting=CFG.alerting)
    assert authorize_silence(oscar, matchers=everything, duration=timedelta(hours=4), reason="drill",
                             alerting=CFG.alerting)["severities"] == ["P0", "P1", "P2", "P3"]
    assert authorize_silence(mei, matchers=_m('severity="P3"'), duration=timedelta(days=2), reason="flappy",
                             alerting=CFG.alerting)
    with pytest.raises(ActionRefused):      # an SRE may not mute the P1 rpc_down rule
        authorize_silence(mei, matchers=_m('alertname="rpc_down"'), duration=timedelta(hours=1), reason="x",
                          alerting=CFG.alerting)


def test_signing_off_another_roles_checklist_item_needs_a_lead():
    actions = CFG.procedures.actions
    assert authorize_checklist(CFG.person("oscar"), owner_role="security_ops", actions=actions)["own_role"]
    assert not authorize_checklist(CFG.person("amara"), owner_role="security_ops", actions=actions)["own_role"]
    with pytest.raises(ActionRefused, match="sofia .* may not sign off an item owned by security_ops"):
        authorize_checklist(CFG.person("sofia"), owner_role="security_ops", actions=actions)


# ---------------------------------------------------------------------------- Alertmanager's rules


@pytest.mark.parametrize("text, value", [
    (r'a="x\"y"', 'x"y'), (r'a="x\\y"', "x\\y"), (r'a="x\ny"', "x\ny"), (r"a=x\ny", "x\ny"), (r"a=x\\y", "x\\y"),
    (r'a=x\"y', 'x"y'), (r'a="x\qy"', "x\\qy"), ('a=""', ""), ("a=", ""), ("a = b ", "b"), (r"a=trail\\", "trail\\"),
])
def test_matcher_values_are_unescaped_like_alertmanager_in_quoted_and_unquoted_values(text, value):
    assert Matcher.parse(text).value == value
    assert Matcher.parse(str(Matcher.parse(text))).value == value   # printing round-trips


@pytest.mark.parametrize("text", ['a="x"y"', 'a="open', 'a=x"y', 'a="x\\"'])
def test_unescaped_quotes_are_refused(text):
    with pytest.raises(ValueError):
        Matcher.parse(text)


def test_a_silence_whose_matchers_all_match_the_empty_string_is_refused():
    base = {"starts_at": "2026-01-01T00:00:00+00:00", "ends_at": "2026-01-01T01:00:00+00:00", "created_by": "mei",
            "reason": "x"}
    for matchers in (['foo=~".*"'], ['env=""'], ['x!="y"', 'severity=~"P0|"']):
        with pytest.raises(ValueError, match="mutes everything"):
            SilenceSpec.model_validate({**base, "matchers": matchers})
    assert SilenceSpec.model_validate({**base, "matchers": ['foo=~".*"', 'alertname="rpc_down"']})


def test_routes_need_positive_intervals_and_the_root_no_continue(config_copy):
    with pytest.raises(ValueError, match="group_interval must be above zero"):
        Route.model_validate({"channel": "alerts", "group_interval": "0s"})
    with pytest.raises(ValueError, match="repeat_interval must be above zero"):
        Route.model_validate({"channel": "alerts", "repeat_interval": "0m"})
    config_copy.set("alerting.yaml", "route.continue", True)
    assert any("root route cannot have continue" in p for p in config_copy.problems())


def test_the_devnet_key_command_prints_a_rosters_public_devnet_address(capsys):
    from vvops.cli import main

    assert main(["identity", "devnet-key", "daniel"]) == 0
    assert capsys.readouterr().out.split()[0] == CFG.person("daniel").address == devnet_address("daniel")
    assert main(["identity", "devnet-key", "mallory"]) == 1
