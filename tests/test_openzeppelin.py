"""The OpenZeppelin reference protocol (environment devnet-oz): daily checks, roles, activity, proxies.

Each test that names an issue-12 failure would fail on the code before it: AccessControl roles silently skipped,
ERC-4626 events raising KeyError('user'), `implementation()` getters that standard proxies lack.
"""

from __future__ import annotations

import pytest

from vvops.cli import monitoring_exit_code, run_summary

pytestmark = [pytest.mark.devnet, pytest.mark.prefect, pytest.mark.timeout(900)]

ENV = "devnet-oz"
ENVIRONMENT_DEPENDENT = ("infrastructure.host",)


def _statuses(summary: dict) -> dict[str, str]:
    return {check["id"]: check["status"] for check in summary["checks"]}


def _as(chain, account: str):
    chain.request("anvil_impersonateAccount", [account])
    chain.request("anvil_setBalance", [account, hex(10**20)])


def test_daily_checks_on_a_healthy_openzeppelin_protocol_are_ok(ops_flows, oz_ops_home, quiet_store, oz_devnet,
                                                                 fresh_devnet_state):
    from flows.daily_checks import daily_checks

    vault = fresh_devnet_state.contract("OZVaultV1", oz_devnet.contracts["oz_vault"])
    user = oz_devnet.accounts.users[0].address
    vault.transact(user, "withdraw", 10**18, user, user)  # an ERC-4626 Withdraw in the window
    state = daily_checks(environment=ENV, return_state=True)
    summary = run_summary(state, state.result())
    statuses = _statuses(summary)
    problems = {k: v for k, v in statuses.items() if v != "ok" and not k.startswith(ENVIRONMENT_DEPENDENT)}
    # like the devnet, devnet-oz configures no access logs or vulnerability reports: unknown, never ok
    assert problems == {"security.access_logs": "unknown", "security.vulnerability_reports": "unknown",
                        "security.tls_certs": "unknown", "security.credentials": "unknown"}
    for expected in ("protocol.contract_state.oz_vault.role.GOVERNANCE_ROLE",
                     "protocol.contract_state.oz_vault.role.GUARDIAN_ROLE",
                     "protocol.contract_state.oz_timelock.role.PROPOSER_ROLE",
                     "protocol.contract_state.oz_vault.implementation",
                     "protocol.contract_state.oz_vault_transparent.implementation",
                     "protocol.contract_state.oz_vault_beacon.implementation",
                     "protocol.contract_state.oz_vault.parameter.feeBps",
                     "protocol.onchain_activity.oz_vault"):
        assert any(k.startswith(expected) for k in statuses), expected
    assert monitoring_exit_code(summary) in (0, 1, 2)  # not 3: every check could run (host load may be crit)


def test_a_role_granted_to_a_stranger_is_crit(ops_flows, oz_ops_home, quiet_store, oz_devnet, fresh_devnet_state):
    """Issue 12: `roles` only knew getter → address; a GUARDIAN_ROLE granted to a stranger was never reported."""
    from flows.daily_checks import daily_checks

    chain = fresh_devnet_state
    timelock = oz_devnet.contracts["oz_timelock"]
    vault = chain.contract("OZVaultV1", oz_devnet.contracts["oz_vault"])
    _as(chain, timelock)
    vault.transact(timelock, "grantRole", vault.call("GUARDIAN_ROLE"), oz_devnet.accounts.attacker.address)
    summary = daily_checks(environment=ENV)
    checks = {c["id"]: c for c in summary["checks"]}
    guardian = checks["protocol.contract_state.oz_vault.role.GUARDIAN_ROLE"]
    assert guardian["status"] == "crit"
    assert oz_devnet.accounts.attacker.address in guardian["message"]
    assert monitoring_exit_code(summary) == 2


def test_an_expected_holder_that_lost_its_role_is_crit(ops_flows, oz_ops_home, quiet_store, oz_devnet,
                                                         fresh_devnet_state):
    from flows.daily_checks import daily_checks

    chain = fresh_devnet_state
    guardian = oz_devnet.accounts.guardian.address
    vault = chain.contract("OZVaultV1", oz_devnet.contracts["oz_vault"])
    vault.transact(guardian, "renounceRole", vault.call("GUARDIAN_ROLE"), guardian)
    statuses = _statuses(daily_checks(environment=ENV))
    assert statuses["protocol.contract_state.oz_vault.role.GUARDIAN_ROLE"] == "crit"


def test_a_rogue_implementation_behind_the_uups_proxy_exits_crit(ops_flows, oz_ops_home, quiet_store, oz_devnet,
                                                                  fresh_devnet_state):
    from flows.daily_checks import daily_checks
    from vvops.chain.proxies import IMPLEMENTATION_SLOT

    rogue = "0x000000000000000000000000000000000000bAD2"
    fresh_devnet_state.request("anvil_setCode", [rogue, "0x60006000fd"])
    fresh_devnet_state.request("anvil_setStorageAt", [oz_devnet.contracts["oz_vault"], IMPLEMENTATION_SLOT,
                                                      "0x" + rogue[2:].lower().rjust(64, "0")])
    state = daily_checks(environment=ENV, return_state=True)
    summary = run_summary(state, state.result(raise_on_failure=False))
    assert _statuses(summary)["protocol.contract_state.oz_vault.implementation"] == "crit"
    assert monitoring_exit_code(summary) == 2


def test_the_access_review_replays_the_roles_of_every_access_control_contract(ops_flows, oz_ops_home, oz_devnet,
                                                                              fresh_devnet_state):
    """Issue 12: expected timelock proposers/executors could not be configured off the devnet, and a role granted
    to a stranger on a vault was never reported. Here: every role of the OpenZeppelin contracts is as configured
    except one GUARDIAN_ROLE granted to the attacker on the transparent vault, which is the only flagged row."""
    from prefect import flow

    from tasks.reviews import read_access_state
    from vvops.reviews.access import access_section

    chain = fresh_devnet_state
    timelock, attacker = oz_devnet.contracts["oz_timelock"], oz_devnet.accounts.attacker.address
    vault = chain.contract("OZVaultV1", oz_devnet.contracts["oz_vault_transparent"])
    _as(chain, timelock)
    vault.transact(timelock, "grantRole", vault.call("GUARDIAN_ROLE"), attacker)

    @flow(name="access-review-probe")
    def probe() -> dict:
        return read_access_state(environment=ENV)

    section = access_section(probe())
    assert section["available"]
    flagged = [(r["contract"], r["role"], r["holder"]) for r in section["rows"] if not r["ok"]]
    assert flagged == [("oz_vault_transparent", "GUARDIAN_ROLE", attacker)]
    contracts = {r["contract"] for r in section["rows"]}
    assert {"oz_timelock", "oz_vault", "oz_vault_transparent", "oz_vault_beacon"} <= contracts or \
        {"timelock", "oz_vault", "oz_vault_transparent", "oz_vault_beacon"} <= contracts


def test_watcher_rules_fire_on_the_openzeppelin_contracts(oz_ops_home, oz_devnet, fresh_devnet_state,
                                                          sqlite_store_url):
    """The watcher decodes the OpenZeppelin contracts with the ABIs contracts.yaml names: an unapproved fee change
    through the timelock's powers is P0, a role granted to a stranger P1, a guardian pause P1."""
    import threading

    from tests.watcher_helpers import wait_until
    from vvops.chain.abi import encode_param_name
    from vvops.watcher import ListSink, load_watcher_config, run_watcher

    chain = fresh_devnet_state
    c = oz_devnet.contracts
    sink, stop, following = ListSink(), threading.Event(), threading.Event()
    wcfg = load_watcher_config(overrides={"follower": {"poll_interval_s": 0.2, "rpc_timeout_s": 2.0}})
    kwargs = dict(environment=ENV, stop_event=stop, store_url=sqlite_store_url, rpc_urls=[oz_devnet.rpc_url],
                  contracts={"oz_vault": c["oz_vault"], "oz_timelock": c["oz_timelock"]}, chain_id=31337,
                  confirmations=1, watcher_config=wcfg, sinks=[sink], emit_events=False,
                  on_block=lambda block, alerts: following.set())
    errors: list[BaseException] = []

    def watch() -> None:
        try:
            run_watcher(**kwargs)
        except BaseException as error:  # noqa: BLE001 - surfaced below
            errors.append(error)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        # the watcher starts at the head: let it follow a block before the changes are made
        wait_until(lambda: chain.request("evm_mine", []) is not None and following.wait(0.5), timeout=60,
                   what="the watcher following the chain")
        vault = chain.contract("OZVaultV1", c["oz_vault"])
        _as(chain, c["oz_timelock"])
        vault.transact(c["oz_timelock"], "setFeeBps", 37)
        vault.transact(c["oz_timelock"], "grantRole", vault.call("GUARDIAN_ROLE"), oz_devnet.accounts.attacker.address)
        vault.transact(oz_devnet.accounts.guardian.address, "pause")
        for _ in range(3):
            chain.request("evm_mine", [])

        def rules():
            return {(a.rule, a.severity, a.contract) for a in sink.alerts}

        wait_until(lambda: {("unapproved_parameter_change", "P0", "oz_vault"), ("role_granted", "P1", "oz_vault"),
                            ("vault_paused", "P1", "oz_vault")} <= rules(), timeout=60,
                   what=f"OZ watcher alerts (so far {sorted(rules())}; watcher errors {errors})")
        fee = next(a for a in sink.alerts if a.rule == "unapproved_parameter_change")
        assert "feeBps" in fee.annotations["summary"] and "37" in fee.annotations["summary"]
        assert encode_param_name("feeBps")  # the vault writes names the same way as ours
    finally:
        stop.set()
        thread.join(15)
