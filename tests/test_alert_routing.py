"""Routing tree (first match, continue, regex matchers, inheritance, default route) and alert rules."""

from __future__ import annotations

from datetime import timedelta

import pytest

from vvops.alerting import Matcher, Route, evaluate_event, evaluate_outcomes, fingerprint_labels, route_alert
from vvops.checks import CheckOutcome
from vvops.config import load_config
from vvops.config.alerting_schema import AlertRule


def tree() -> Route:
    return Route.model_validate({
        "channel": "alerts", "group_by": ["alertname"], "repeat_interval": "4h",
        "routes": [
            {"name": "p0-copy", "matchers": ['severity="P0"'], "channel": "ops", "continue": True},
            {"name": "security", "matchers": ['team="security"'], "channel": "incidents",
             "escalation_policy": "security", "routes": [
                 {"name": "mainnet", "matchers": ['chain=~"main.*"'], "repeat_interval": "30m"}]},
            {"name": "critical", "matchers": ['severity=~"P0|P1"'], "channel": "incidents"},
            {"name": "not-devnet", "matchers": ['environment!="devnet"', 'team!~"infra|security"'], "channel": "ops"},
        ]})


def ids(labels):
    return [m.route_id for m in route_alert(tree(), labels)]


def test_first_matching_child_wins():
    # a P1 security alert matches both `security` and `critical`: only the first one receives it
    assert ids({"severity": "P1", "team": "security", "chain": "devnet", "environment": "devnet"}) == ["root/security"]


def test_continue_lets_the_next_sibling_match_too():
    assert ids({"severity": "P0", "team": "protocol", "environment": "devnet"}) == ["root/p0-copy", "root/critical"]


def test_regex_matchers_are_anchored_and_children_inherit():
    [m] = route_alert(tree(), {"severity": "P2", "team": "security", "chain": "mainnet"})
    assert m.route_id == "root/security/mainnet"
    assert (m.channel, m.escalation_policy, m.repeat_interval) == ("incidents", "security", timedelta(minutes=30))
    assert m.group_by == ("alertname",)  # inherited from the root
    # `main.*` is anchored: "testmainnet" does not match, so the parent security route receives it
    assert ids({"severity": "P2", "team": "security", "chain": "testmainnet"}) == ["root/security"]


def test_negative_matchers_and_missing_labels():
    assert ids({"severity": "P3", "team": "protocol", "environment": "mainnet"}) == ["root/not-devnet"]
    # a missing label is the empty string: != "devnet" holds, !~ "infra|security" holds
    assert ids({"severity": "P3"}) == ["root/not-devnet"]
    assert ids({"severity": "P3", "team": "infra", "environment": "mainnet"}) == ["root"]


def test_default_route_catches_everything_else():
    [m] = route_alert(tree(), {"severity": "P3", "environment": "devnet"})
    assert (m.route_id, m.channel, m.escalation_policy) == ("root", "alerts", None)


@pytest.mark.parametrize("text,ok", [('a="b"', True), ("a=~b.*", True), ("a!~'x'", True), ("=x", False),
                                     ('a=~"("', False)])
def test_matcher_parsing(text, ok):
    if ok:
        Matcher.parse(text)
    else:
        with pytest.raises(Exception):
            Matcher.parse(text)


def test_shipped_alerting_config_routes_a_crit_contract_check():
    cfg = load_config(environment="devnet")
    sev = {c.id: c.severity.model_dump() for c in cfg.checks.checks}
    outcomes = [CheckOutcome("protocol.contract_state.vault.role.owner", "protocol", "crit", "owner is 0xabc",
                             threshold="0xdef"),
                CheckOutcome("protocol.contract_state.vault.paused", "protocol", "ok", "not paused"),
                CheckOutcome("protocol.contract_state.vault.read.x", "protocol", "error", "could not read")]
    ev = evaluate_outcomes(cfg.alerting.rules, outcomes, "devnet", check_severities=sev)
    [alert] = ev.firing
    assert alert.rule == "contract_state" and alert.severity == "P0"  # checks.yaml: crit → P0
    assert alert.labels["category"] == "contract_read" and alert.labels["chain"] == "devnet"
    assert alert.annotations["summary"] == "protocol.contract_state.vault.role.owner: owner is 0xabc"
    assert [c["check"] for c in ev.cleared] == ["protocol.contract_state.vault.paused"]  # error neither fires nor clears
    routes = [m.route_id for m in route_alert(cfg.alerting.route, alert.labels)]
    assert routes == ["root/p0-to-ops", "root/critical"]


def test_rule_match_filter_and_event_rules():
    cfg = load_config(environment="devnet")
    rpc = CheckOutcome("infrastructure.rpc_latency", "infrastructure", "crit", "timeout", value=5000.0, threshold=800)
    ev = evaluate_outcomes(cfg.alerting.rules, [rpc], "devnet")
    assert [a.rule for a in ev.firing] == ["rpc_down"]  # the `infrastructure` rule's match excludes it
    assert ev.firing[0].annotations["description"].startswith("latency 5000, threshold 800")
    [own] = evaluate_event(cfg.alerting.rules, "OwnershipTransferred", {"contract": "vault"}, "devnet",
                           message="0x1 → 0x2")
    assert own.severity == "P0" and own.annotations["summary"] == "Owner of vault on devnet changed"


def test_fingerprint_ignores_severity_and_label_order():
    a = fingerprint_labels({"alertname": "x", "chain": "devnet", "severity": "P3"})
    b = fingerprint_labels({"severity": "P1", "chain": "devnet", "alertname": "x"})
    assert a == b and a != fingerprint_labels({"alertname": "x", "chain": "mainnet"})


def test_event_rule_rejects_when():
    with pytest.raises(Exception, match="check sources only"):
        AlertRule.model_validate({"name": "x", "source": "event:Paused", "when": ["crit"]})


def test_config_errors_are_readable(config_copy):
    config_copy.set("alerting.yaml", "route.routes[1].escalation_policy", "securty")
    config_copy.set("alerting.yaml", "rules[0].source", "check:protocol.contract_stat")
    assert config_copy.problems() == [
        "alerting.yaml: route.routes[1].escalation_policy: unknown escalation policy 'securty' (did you mean 'security'?)",
        "alerting.yaml: rules[0].source: 'check:protocol.contract_stat' matches no check in checks.yaml "
        "(did you mean 'protocol.contract_state'?)",
    ]


def test_config_channel_and_duration_errors(config_copy):
    config_copy.set("alerting.yaml", "route.routes[0].channel", "alertz")
    config_copy.set("alerting.yaml", "route.group_interval", 5)
    problems = config_copy.problems()
    assert "alerting.yaml: route.routes[0].channel: 'alertz' is not allowed here (did you mean 'alerts'?)" in problems
    assert 'alerting.yaml: route.group_interval: 5 has no unit (write "5s" or "5m")' in problems
