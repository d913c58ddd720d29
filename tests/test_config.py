"""The shipped config loads; every kind of broken config gives one exact, readable line."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from pydantic import ValidationError

from tests.fixtures.config_fixtures import SHIPPED_CONFIG
from vvops.config import (
    ConfigError,
    ConfigProblem,
    DevnetRefError,
    EnvVarError,
    SecretStr,
    check_config,
    devnet_address,
    devnet_rpc_url,
    load_config,
    load_devnet_json,
    mask_url,
    resolve_deployment,
    resolve_env,
)
from vvops.config.schema import Threshold
from vvops.config.secrets import is_secret_key

SECRET_ENV = ("VVOPS_MAINNET_RPC_KEY", "VVOPS_MAINNET_BACKUP_RPC_KEY", "VVOPS_STORE_URL", "SLACK_BOT_TOKEN",
              "VVOPS_ENVIRONMENT")


@pytest.fixture(autouse=True)
def _no_secrets_in_env(monkeypatch):
    for name in SECRET_ENV:
        monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------------------- the shipped config

@pytest.mark.parametrize("environment", ["devnet", "mainnet"])
def test_shipped_config_loads_without_any_secret_set(environment):
    cfg = load_config(SHIPPED_CONFIG, environment=environment)
    assert cfg.environment == environment
    assert cfg.env.chain_id == {"devnet": 31337, "mainnet": 1}[environment]
    assert len(cfg.people) >= 8
    assert len(cfg.people_with_role("ops_lead")) >= 2
    assert cfg.check("protocol.contract_state").enabled
    assert cfg.contract("vault").deployment(environment) is not None


def test_check_config_validates_every_environment():
    assert check_config(SHIPPED_CONFIG) == []
    assert check_config(SHIPPED_CONFIG, "mainnet") == []


def test_shipped_values():
    cfg = load_config(SHIPPED_CONFIG)
    assert cfg.env.rpc_urls == ("from-devnet",)
    mainnet = cfg.environments.environments["mainnet"]
    assert mainnet.confirmations == 12
    assert "${VVOPS_MAINNET_RPC_KEY}" in mainnet.rpc_urls[0] and len(mainnet.rpc_urls) == 2
    assert cfg.prefect.api_url == "http://127.0.0.1:4200/api"
    vault = cfg.contract("vault")
    assert (vault.parameters["feeBps"].min, vault.parameters["feeBps"].max) == (0, 1000)
    assert str(vault.invariants[0]) == "totalAssets >= totalLiabilities"
    assert vault.invariants[0].holds(10, 9) and not vault.invariants[0].holds(9, 10)
    assert vault.deployment("devnet").roles["owner"] == "from-devnet:timelock"
    assert cfg.severity("P0").update_interval_minutes == 15
    assert set(cfg.slack.channels.model_dump()) == {"ops", "alerts", "incidents", "approvals", "reports", "audit"}
    assert cfg.slack.bot_token_env == "SLACK_BOT_TOKEN"
    tls = cfg.check("security.tls_certs").thresholds["days_to_expiry"]
    assert (tls.warn, tls.crit, tls.direction) == (30, 7, "below")
    assert [t.evaluate(v) for t, v in [(tls, 40), (tls, 30), (tls, 7)]] == ["ok", "warn", "crit"]


def test_per_environment_overrides():
    devnet = load_config(SHIPPED_CONFIG, environment="devnet")
    mainnet = load_config(SHIPPED_CONFIG, environment="mainnet")
    assert devnet.approval_policy("upgrade_rollout").quorum == 1
    assert mainnet.approval_policy("upgrade_rollout").quorum == 2
    assert devnet.approval_policy("unpause").quorum == 2
    assert devnet.approval_policy("emergency_pause").auto_approves("P0")
    assert not devnet.approval_policy("emergency_pause").auto_approves("P1")
    assert devnet.approval_policy("parameter_change").proposer_excluded
    names = [e.name for e in mainnet.check("infrastructure.http_endpoints").typed_params().endpoints]
    assert names == ["prefect-api", "public-api"]
    assert [e.name for e in devnet.check("infrastructure.http_endpoints").typed_params().endpoints] == ["prefect-api"]
    assert devnet.check("protocol.network_conditions").thresholds["block_lag_s"].warn == 86400


def test_config_is_frozen():
    cfg = load_config(SHIPPED_CONFIG)
    with pytest.raises(ValidationError):
        cfg.environment = "mainnet"
    with pytest.raises(ValidationError):
        cfg.people[0].name = "Mallory"


def test_store_url_defaults_to_state_dir_and_only_env_overrides(tmp_path, monkeypatch):
    cfg = load_config(SHIPPED_CONFIG)
    monkeypatch.setenv("VVOPS_HOME", str(tmp_path))
    monkeypatch.delenv("VVOPS_STORE_URL", raising=False)
    url = cfg.store.resolved_url()
    assert url.get_secret_value() == f"sqlite:///{tmp_path.resolve()}/ops.db"
    monkeypatch.setenv("VVOPS_STORE_URL", "postgresql://ops:pw@db/ops")
    pg = cfg.store.resolved_url()
    assert pg.get_secret_value() == "postgresql://ops:pw@db/ops"
    assert "pw" not in repr(pg) and str(pg) == "********"


# ---------------------------------------------------------------------------- broken configs: exact lines

def test_missing_key(config_copy):
    config_copy.delete("environments.yaml", "environments.devnet.chain_id")
    assert config_copy.problems() == [
        "environments.yaml: environments.devnet.chain_id: required key is missing "
        "(add `chain_id:` under environments.devnet)"]


def test_wrong_type(config_copy):
    config_copy.set("environments.yaml", "environments.mainnet.confirmations", "twelve")
    assert config_copy.problems() == [
        "environments.yaml: environments.mainnet.confirmations: expected a whole number, got 'twelve' "
        "(write a number such as 12, without quotes or units)"]


def test_bad_address_checksum(config_copy):
    config_copy.set("contracts.yaml", "contracts[0].deployments.mainnet.address",
                    "0x5a17000000000000000000000000000000000002")
    assert config_copy.problems() == [
        "contracts.yaml: contracts[0].deployments.mainnet.address: address fails the EIP-55 checksum "
        "(write it as 0x5A17000000000000000000000000000000000002)"]


def test_not_an_address(config_copy):
    config_copy.set("contracts.yaml", "contracts[0].deployments.mainnet.roles.guardian", "0x1234")
    assert config_copy.problems() == [
        "contracts.yaml: contracts[0].deployments.mainnet.roles.guardian: '0x1234' is not an address "
        "(write a 0x-prefixed 40-hex-digit checksummed address or from-devnet:<key>)"]


def test_unknown_role(config_copy):
    config_copy.set("team.yaml", "people[2].roles[0]", "sre_lead")
    assert config_copy.problems() == [
        "team.yaml: people[2].roles[0]: unknown role 'sre_lead' (did you mean 'ops_lead'?)"]


def test_unknown_role_in_escalation_target(config_copy):
    config_copy.set("oncall.yaml", "escalation_policies[0].steps[2].notify", "role:opslead")
    assert config_copy.problems() == [
        "oncall.yaml: escalation_policies[0].steps[2].notify[0]: unknown role 'opslead' "
        "(did you mean 'ops_lead'?)"]


def test_duplicate_person_id(config_copy):
    twin = dict(config_copy.get("team.yaml", "people[2]"), slack_user_id="U09MEI0002", email="mei2@vv.example")
    config_copy.append("team.yaml", "people", twin)
    assert config_copy.problems() == [
        "team.yaml: people[10].id: duplicate person id 'mei' (already used by people[2])"]


def test_duplicate_check_id(config_copy):
    config_copy.append("checks.yaml", "checks", config_copy.get("checks.yaml", "checks[0]"))
    assert config_copy.problems() == [
        "checks.yaml: checks[17].id: duplicate check id 'protocol.contract_state' (already used by checks[0])"]


def test_duplicate_contract_name(config_copy):
    config_copy.set("contracts.yaml", "contracts[3].name", "asset")
    assert config_copy.problems() == [
        "contracts.yaml: contracts[3].name: duplicate contract name 'asset' (already used by contracts[2])"]


def test_warn_above_crit(config_copy):
    config_copy.set("checks.yaml", "checks[2].thresholds.base_fee_gwei.warn", 300)
    assert config_copy.problems() == [
        "checks.yaml: checks[2].thresholds.base_fee_gwei.warn: warn (300) must be below crit (200) when "
        "direction is above (with direction: above a higher value is worse, so warn < crit)"]


def test_warn_below_crit_for_direction_below(config_copy):
    config_copy.set("checks.yaml", "checks[9].thresholds.days_to_expiry.warn", 5)
    assert config_copy.problems() == [
        "checks.yaml: checks[9].thresholds.days_to_expiry.warn: warn (5) must be above crit (7) when "
        "direction is below (with direction: below a lower value is worse, so warn > crit)"]


def test_secret_in_yaml(config_copy):
    config_copy.set("slack.yaml", "bot_token", "xoxb-1234-abcd")
    lines = config_copy.problems()
    assert lines == [
        "slack.yaml: bot_token: secrets come only from environment variables (use `bot_token_env: NAME`)"]
    assert "xoxb" not in "\n".join(lines)


def test_private_key_in_free_form_params(config_copy):
    config_copy.set("checks.yaml", "checks[12].params.credentials[0].private_key", "0x" + "ab" * 32)
    assert config_copy.problems() == [
        "checks.yaml: checks[12].params.credentials[0].private_key: secrets come only from environment "
        "variables (use `private_key_env: NAME`)"]


def test_url_with_credentials(config_copy):
    config_copy.set("environments.yaml", "store.url", "postgresql://ops:hunter2@db.internal/ops")
    lines = config_copy.problems()
    assert lines == [
        "environments.yaml: store.url: URL contains embedded credentials (user:password@) "
        "(set the VVOPS_STORE_URL environment variable instead)"]
    assert "hunter2" not in "\n".join(lines)


def test_url_with_credentials_elsewhere(config_copy):
    config_copy.set("checks.yaml", "checks[5].params.endpoints[0].url", "https://bob:s3cret@status.example/health")
    assert config_copy.problems() == [
        "checks.yaml: checks[5].params.endpoints[0].url: URL contains embedded credentials (user:password@) "
        "(take credentials from the environment: write user:${PASSWORD_VAR}@ or put the URL in a variable)"]


def test_literal_api_key_in_rpc_url(config_copy):
    config_copy.set("environments.yaml", "environments.mainnet.rpc_urls[0]",
                    "https://eth-mainnet.example/v2/aB3dE5fG7hJ9kL1mN3pQ5rS7")
    lines = config_copy.problems()
    assert lines == [
        "environments.yaml: environments.mainnet.rpc_urls[0]: URL contains what looks like a literal API key "
        "(use ${VVOPS_MAINNET_RPC_KEY} in the URL and set the variable at run time)"]
    assert "aB3dE5" not in "\n".join(lines)


def test_unknown_person_in_rotation(config_copy):
    config_copy.set("oncall.yaml", "rotations[0].members[1]", "lucas")
    assert config_copy.problems() == [
        "oncall.yaml: rotations[0].members[1]: unknown person 'lucas' (did you mean 'lukas'?)"]


def test_unknown_person_in_override(config_copy):
    config_copy.set("oncall.yaml", "rotations[0].overrides[0].person", "nobody")
    assert config_copy.problems() == [
        "oncall.yaml: rotations[0].overrides[0].person: unknown person 'nobody' "
        "(person ids are defined in team.yaml)"]


def test_unknown_escalation_policy(config_copy):
    config_copy.set("oncall.yaml", "severities.P1.escalation_policy", "hihg")
    assert config_copy.problems() == [
        "oncall.yaml: severities.P1.escalation_policy: unknown escalation policy 'hihg' (did you mean 'high'?)"]


def test_unknown_escalation_policy_in_procedures(config_copy):
    config_copy.set("procedures.yaml", "approvals.unpause.escalation_policy", "nobody-home")
    assert config_copy.problems() == [
        "procedures.yaml: approvals.unpause.escalation_policy: unknown escalation policy 'nobody-home' "
        "(escalation policies are defined in oncall.yaml: critical, high, standard, security, approvals)"]


def test_unknown_rotation_in_escalation(config_copy):
    config_copy.set("oncall.yaml", "escalation_policies[1].steps[0].notify", "rotation:primery")
    assert config_copy.problems() == [
        "oncall.yaml: escalation_policies[1].steps[0].notify[0]: unknown rotation 'primery' "
        "(did you mean 'primary'?)"]


def test_quorum_larger_than_eligible_people(config_copy):
    config_copy.set("procedures.yaml", "approvals.unpause.quorum", 4)
    assert config_copy.problems() == [
        "procedures.yaml: approvals.unpause.quorum: quorum 4 is larger than the 3 people with role ops_lead "
        "(lower the quorum or give ops_lead to more people in team.yaml)"]


def test_quorum_in_environment_override(config_copy):
    config_copy.set("procedures.yaml", "approvals.upgrade_rollout.environments.mainnet.quorum", 5)
    assert config_copy.problems() == [
        "procedures.yaml: approvals.upgrade_rollout.environments.mainnet.quorum: quorum 5 is larger than the "
        "3 people with role ops_lead (lower the quorum or give ops_lead to more people in team.yaml)"]


def test_unknown_key_with_did_you_mean(config_copy):
    config_copy.set("slack.yaml", "incident_mod", "thread").delete("slack.yaml", "incident_mode")
    assert config_copy.problems() == [
        "slack.yaml: incident_mod: unknown key 'incident_mod' (did you mean 'incident_mode'?)"]


def test_unknown_key_inside_check_params(config_copy):
    config_copy.rename_key("checks.yaml", "checks[1].params.window_hours", "window_hour")
    assert config_copy.problems() == [
        "checks.yaml: checks[1].params.window_hour: unknown key 'window_hour' (did you mean 'window_hours'?)"]


def test_renamed_required_key_reports_both_sides(config_copy):
    config_copy.rename_key("team.yaml", "people[0].email", "emial")
    assert config_copy.problems() == [
        "team.yaml: people[0].email: required key is missing (add `email:` under people[0])",
        "team.yaml: people[0].emial: unknown key 'emial' (did you mean 'email'?)"]


def test_yaml_syntax_error_names_file_and_line(config_copy):
    config_copy.replace_text("slack.yaml", "incident_mode: thread", "incident_mode: thread: channel")
    line = 1 + config_copy.path("slack.yaml").read_text().splitlines().index(
        "incident_mode: thread: channel          # thread: one thread per incident in #incidents; channel: a "
        "channel each")
    # libyaml (used when installed) and pure-Python PyYAML word this differently
    what = "mapping values are not allowed " + ("in this context" if yaml.__with_libyaml__ else "here")
    assert config_copy.problems() == [
        f"slack.yaml: line {line}, column 22: invalid YAML: {what} "
        "(check indentation, colons and quotes around that line)"]


def test_duplicate_yaml_key(config_copy):
    config_copy.replace_text("slack.yaml", "max_retries: 3", "max_retries: 3\nmax_retries: 5")
    line = len(config_copy.path("slack.yaml").read_text().splitlines())
    assert config_copy.problems() == [
        f"slack.yaml: line {line}: duplicate key 'max_retries' "
        "(a key may appear once in a mapping; the later one would silently win)"]


def test_missing_file(config_copy):
    config_copy.remove("oncall.yaml")
    assert config_copy.problems() == [
        f"oncall.yaml: (file): file is missing (expected oncall.yaml in {config_copy.dir}: "
        "rotations, escalation policies and the severity matrix)"]


def test_bad_timezone(config_copy):
    config_copy.set("team.yaml", "people[1].timezone", "America/NewYork")
    assert config_copy.problems() == [
        "team.yaml: people[1].timezone: unknown time zone 'America/NewYork' (did you mean 'America/New_York'?)"]


def test_unquoted_time_is_explained(config_copy):
    config_copy.replace_text("oncall.yaml", 'handoff_time: "10:00"', "handoff_time: 10:00")
    assert config_copy.problems() == [
        'oncall.yaml: rotations[1].handoff_time: a time must be quoted (write it as "10:00")']


def test_weekly_start_not_on_handoff_day(config_copy):
    config_copy.set("oncall.yaml", "rotations[0].start", "2025-01-07")
    assert config_copy.problems() == [
        "oncall.yaml: rotations[0].start: start 2025-01-07 is a tuesday but handoff_day is monday "
        "(use start: 2025-01-13)"]


def test_bad_choice(config_copy):
    config_copy.set("checks.yaml", "checks[3].thresholds.error_rate_pct.direction", "abvoe")
    assert config_copy.problems() == [
        "checks.yaml: checks[3].thresholds.error_rate_pct.direction: 'abvoe' is not allowed here "
        "(did you mean 'above'?)"]


def test_environment_referenced_but_not_defined(config_copy):
    config_copy.set("procedures.yaml", "approvals.upgrade_rollout.environments.mainet", {"quorum": 2})
    assert config_copy.problems() == [
        "procedures.yaml: approvals.upgrade_rollout.environments.mainet: unknown environment 'mainet' "
        "(did you mean 'mainnet'?)"]


def test_requested_environment_not_defined(config_copy):
    assert config_copy.problems("staging") == [
        "environments.yaml: environments: unknown environment 'staging' "
        "(environments are defined in environments.yaml: devnet, devnet-oz, mainnet)"]


def test_new_environment_needs_contracts(config_copy):
    config_copy.set("environments.yaml", "environments.sepolia",
                    {"chain_id": 11155111, "rpc_urls": ["https://sepolia.example/${VVOPS_SEPOLIA_RPC_KEY}"]})
    assert config_copy.problems() == [
        "contracts.yaml: contracts: no contract is deployed in environment 'sepolia' "
        "(add deployments.sepolia.address to the contracts that run there)"]


def test_an_environment_runs_only_the_contracts_deployed_there_and_is_validated_alone(config_copy):
    """Issue 12: `config check -e X` failed on problems of other environments."""
    config_copy.set("contracts.yaml", "contracts[0].deployments.mainnet.address", "from-devnet:vault")
    assert config_copy.problems("devnet") == []
    assert config_copy.problems("devnet-oz") == []
    assert len(config_copy.problems("mainnet")) == 1


def test_from_devnet_only_on_devnet(config_copy):
    config_copy.set("contracts.yaml", "contracts[0].deployments.mainnet.address", "from-devnet:vault")
    assert config_copy.problems() == [
        "contracts.yaml: contracts[0].deployments.mainnet.address: 'from-devnet:vault' only works in an "
        "environment whose rpc_urls is from-devnet (write the checksummed address deployed there)"]


def test_getter_checked_against_abi(config_copy):
    config_copy.set("contracts.yaml", "contracts[0].invariants[0].right", "totalLiabilites")
    assert config_copy.problems() == [
        "contracts.yaml: contracts[0].invariants[0].right: 'totalLiabilites' is not a function of VaultV1 "
        "(did you mean 'totalLiabilities'?)"]


def test_missing_artifact(config_copy):
    config_copy.set("contracts.yaml", "contracts[1].artifact", "TimeLock")
    assert config_copy.problems() == [
        "contracts.yaml: contracts[1].artifact: artifact 'TimeLock' not found "
        "(expected artifacts/TimeLock.json; build the contracts)"]


def test_unknown_contract_in_check_params(config_copy):
    config_copy.set("checks.yaml", "checks[0].params.contracts[0]", "vaults")
    assert config_copy.problems() == [
        "checks.yaml: checks[0].params.contracts[0]: unknown contract 'vaults' (did you mean 'vault'?)"]


def test_problems_across_files_are_all_collected(config_copy):
    config_copy.set("team.yaml", "people[1].timezone", "Mars/Olympus")
    config_copy.set("slack.yaml", "incident_mode", "threads")
    config_copy.set("checks.yaml", "checks[2].thresholds.base_fee_gwei.crit", 10)
    config_copy.remove("procedures.yaml")
    lines = config_copy.problems()
    files = sorted({line.split(":")[0] for line in lines})
    assert files == ["checks.yaml", "procedures.yaml", "slack.yaml", "team.yaml"]
    with pytest.raises(ConfigError) as exc:
        config_copy.load()
    assert [str(p) for p in exc.value.problems] == lines
    assert str(exc.value).splitlines()[1:] == lines


def test_problem_format():
    p = ConfigProblem("team.yaml", "people[3].roles[0]", "unknown role 'x'", "did you mean 'sre'?")
    assert str(p) == "team.yaml: people[3].roles[0]: unknown role 'x' (did you mean 'sre'?)"
    assert dataclasses.is_dataclass(p)


# ---------------------------------------------------------------------------- secrets

def test_no_secret_value_ever_printed(config_copy, monkeypatch):
    known = "sk-live-K3y-VALUE-0123456789abcdef"
    monkeypatch.setenv("VVOPS_MAINNET_RPC_KEY", known)
    monkeypatch.setenv("VVOPS_STORE_URL", f"postgresql://ops:{known}@db/ops")
    monkeypatch.setenv("SLACK_BOT_TOKEN", known)
    # a broken config mentioning the variable: the value is not in the lines
    config_copy.set("environments.yaml", "environments.mainnet.confirmations", "${VVOPS_MAINNET_RPC_KEY}")
    text = "\n".join(config_copy.problems())
    assert "confirmations" in text and known not in text
    # a valid config: resolve at use time; the resolved URLs print masked
    cfg = load_config(SHIPPED_CONFIG, environment="mainnet")
    with pytest.raises(EnvVarError) as exc:  # the backup key is not set
        cfg.env.resolve_rpc_urls(name="mainnet")
    assert exc.value.variable == "VVOPS_MAINNET_BACKUP_RPC_KEY"
    assert str(exc.value) == (
        "environments.yaml: environments.mainnet.rpc_urls[1]: environment variable VVOPS_MAINNET_BACKUP_RPC_KEY "
        "is not set (export VVOPS_MAINNET_BACKUP_RPC_KEY=... before running, or put it in the deployment's "
        "environment)")
    assert known not in str(exc.value) and known not in repr(exc.value)
    monkeypatch.setenv("VVOPS_MAINNET_BACKUP_RPC_KEY", "backup-" + known)
    urls = cfg.env.resolve_rpc_urls(name="mainnet")
    assert urls[0].get_secret_value() == f"https://eth-mainnet.example/v2/{known}"
    for shown in (repr(urls), str(urls[0]), f"{urls[0]}", repr(cfg), str(cfg.store.resolved_url()),
                  repr(cfg.slack.bot_token()), repr(cfg.env)):
        assert known not in shown
    assert str(urls[0]) == "********"


def test_resolve_env():
    assert resolve_env("https://x/${A}/${B:-b}", environ={"A": "a"}) == "https://x/a/b"
    with pytest.raises(EnvVarError) as exc:
        resolve_env("${MISSING_ONE}", environ={})
    assert "MISSING_ONE is not set" in str(exc.value)
    with pytest.raises(EnvVarError):
        resolve_env("${MISSING_TWO}", environ={"MISSING_TWO": ""})


def test_secret_str():
    s = SecretStr("hunter2")
    assert str(s) == "********" and repr(s) == "SecretStr('********')" and f"{s:>20}" == "********"
    assert s.get_secret_value() == "hunter2" and s == SecretStr("hunter2")
    assert mask_url("postgresql://ops:hunter2@db/ops") == "postgresql://********@db/ops"


@pytest.mark.parametrize("key, secret", [
    ("password", True), ("bot_token", True), ("apiKey", True), ("private_key", True), ("mnemonic", True),
    ("client_secret", True), ("db_password", True), ("bot_token_env", False), ("signing_secret_env", False),
    ("token_block", False), ("rotation_days", False), ("name", False), ("credentials", False),
])
def test_secret_key_detection(key, secret):
    assert is_secret_key(key) is secret


# ---------------------------------------------------------------------------- devnet references

def test_devnet_address(fake_devnet_json):
    devnet_json = fake_devnet_json
    assert devnet_address("from-devnet:vault", fake_devnet_json) == devnet_json["contracts"]["vault"]
    assert devnet_address("from-devnet:accounts.guardian", fake_devnet_json) == \
        devnet_json["accounts"]["guardian"]["address"]
    assert devnet_address("0x5a17000000000000000000000000000000000002") == \
        "0x5A17000000000000000000000000000000000002"
    with pytest.raises(DevnetRefError) as exc:
        devnet_address("from-devnet:vualt", fake_devnet_json)
    assert str(exc.value) == "devnet.json: vualt: no address for 'from-devnet:vualt' in devnet.json " \
                             "(did you mean 'vault'?)"
    assert devnet_rpc_url(fake_devnet_json) == "http://127.0.0.1:8545"


def test_missing_devnet_json_says_what_to_run(tmp_path):
    with pytest.raises(DevnetRefError) as exc:
        load_devnet_json(tmp_path / "devnet.json")
    assert str(exc.value) == f"devnet.json: (file): {tmp_path / 'devnet.json'} not found (run `vvops devnet up` first)"


def test_resolve_deployment_and_rpc(fake_devnet_json):
    devnet_json = fake_devnet_json
    cfg = load_config(SHIPPED_CONFIG)
    dep = resolve_deployment(cfg, "vault", fake_devnet_json)
    assert dep.address == devnet_json["contracts"]["vault"]
    assert dep.roles == {"owner": devnet_json["contracts"]["timelock"],
                         "guardian": devnet_json["accounts"]["guardian"]["address"]}
    assert dep.approved_implementations == (devnet_json["contracts"]["vault_v1_implementation"],)
    assert dep.expect == {"paused": False}
    assert [u.get_secret_value() for u in cfg.env.resolve_rpc_urls(devnet_json=fake_devnet_json)] == \
        ["http://127.0.0.1:8545"]
    for name in ("timelock", "asset", "multicall"):
        resolve_deployment(cfg, name, fake_devnet_json)


def test_threshold_model_rules():
    with pytest.raises(ValidationError):
        Threshold(direction="above", unit="ms")
    t = Threshold(crit=1, direction="above", unit="findings")
    assert (t.evaluate(0), t.evaluate(1)) == ("ok", "crit")


@pytest.mark.devnet
def test_shipped_config_matches_the_real_devnet(devnet, devnet_json_path, devnet_chain):
    """Every from-devnet reference resolves in a real devnet.json, and the deployed vault is in the
    expected state: roles, implementation, parameters within bounds, invariants."""
    cfg = load_config(SHIPPED_CONFIG)
    data = load_devnet_json(devnet_json_path)
    assert [u.get_secret_value() for u in cfg.resolve_rpc_urls(devnet_json=data)] == [devnet.rpc_url]
    contract = cfg.contract("vault")
    dep = resolve_deployment(cfg, "vault", data)
    for name in ("timelock", "asset", "multicall"):
        resolve_deployment(cfg, name, data)
    vault = devnet_chain.contract(contract.artifact, dep.address)
    for getter, expected in dep.roles.items():
        assert str(vault.call(getter)).lower() == expected.lower()
    assert str(vault.call("implementation")).lower() in [a.lower() for a in dep.approved_implementations]
    for getter, expected in dep.expect.items():
        assert vault.call(getter) == expected
    for param in contract.parameters.values():
        assert param.allows(int(vault.call(param.getter)))
    for inv in contract.invariants:
        right = vault.call(inv.right) if inv.right else inv.right_value
        assert inv.holds(int(vault.call(inv.left)), int(right))
