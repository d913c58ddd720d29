"""README "Point it at your protocol", followed step by step against the OpenZeppelin devnet as if it were a real
team's chain: its own environment (a plain RPC URL, no from-devnet), ABIs read where a Foundry/Hardhat build
writes them (nothing copied into contracts/artifacts), AccessControl role holders, a keystore signer, then
`config check -e` and the protocol health checks."""

from __future__ import annotations

import json
import os

import pytest

from vvops.chain.artifacts import load_artifact

pytestmark = [pytest.mark.devnet, pytest.mark.prefect, pytest.mark.timeout(900)]

ENV = "my-chain"


def _write(path, document) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return str(path)


@pytest.fixture
def my_protocol_config(config_copy, oz_devnet, tmp_path):
    c, acc = oz_devnet.contracts, oz_devnet.accounts
    # step 1: the team's build output, in the formats their tools write
    vault_art, timelock_art = load_artifact("OZVaultV1"), load_artifact("TimelockController")
    foundry = _write(tmp_path / "my-protocol/out/OZVaultV1.sol/OZVaultV1.json",
                     {"abi": vault_art["abi"], "bytecode": {"object": vault_art["bytecode"]},
                      "deployedBytecode": {"object": vault_art["deployedBytecode"]}, "methodIdentifiers": {}})
    hardhat = _write(tmp_path / "my-protocol/artifacts/TimelockController.json",
                     {"_format": "hh-sol-artifact-1", "contractName": "TimelockController",
                      "sourceName": "@openzeppelin/contracts/governance/TimelockController.sol",
                      "abi": timelock_art["abi"], "bytecode": timelock_art["bytecode"], "linkReferences": {}})
    plain = _write(tmp_path / "my-protocol/abi/Multicall3.json", load_artifact("Multicall3")["abi"])
    # step 2: the chain
    config_copy.set("environments.yaml", f"environments.{ENV}",
                    {"chain_id": 31337, "rpc_urls": [oz_devnet.rpc_url], "confirmations": 1, "block_time_s": 1})
    # step 3: the contracts (only these are deployed in my-chain)
    guardian = acc.guardian.address
    config_copy.append("contracts.yaml", "contracts", {
        "name": "my_vault", "kind": "vault", "abi": foundry, "proxy": "uups", "access": "access-control",
        "deployments": {ENV: {"address": c["oz_vault"], "deployed_block": 0,
                              "role_holders": {"DEFAULT_ADMIN_ROLE": [c["oz_timelock"]],
                                               "GOVERNANCE_ROLE": [c["oz_timelock"]], "GUARDIAN_ROLE": [guardian]},
                              "approved_implementations": [c["oz_vault_v1_implementation"]],
                              "expect": {"paused": False}}},
        "getters": ["paused", "totalAssets", "totalSupply"],
        "parameters": {"feeBps": {"getter": "feeBps", "setter": "setFeeBps", "min": 0, "max": 1000}},
        "activity": {"deposit": {"event": "Deposit", "user": "owner", "amount": "assets"},
                     "withdraw": {"event": "Withdraw", "user": "owner", "amount": "assets"}}})
    config_copy.append("contracts.yaml", "contracts", {
        "name": "my_timelock", "kind": "timelock", "abi": hardhat, "access": "access-control",
        "deployments": {ENV: {"address": c["oz_timelock"],
                              "role_holders": {"PROPOSER_ROLE": [acc.governance.address],
                                               "EXECUTOR_ROLE": [acc.governance.address],
                                               "CANCELLER_ROLE": [acc.governance.address],
                                               "DEFAULT_ADMIN_ROLE": [c["oz_timelock"]]}}}})
    config_copy.append("contracts.yaml", "contracts", {
        "name": "multicall3", "kind": "multicall", "abi": plain,
        "deployments": {ENV: {"address": "0xcA11bde05977b3631167028862bE2a173976CA11"}}})
    return config_copy


def test_following_the_readme_on_an_openzeppelin_protocol(my_protocol_config, ops_flows, oz_devnet, tmp_path,
                                                          monkeypatch):
    from eth_account import Account

    from flows.daily.protocol_health import protocol_health
    from vvops.chain.signing import signer_for_role
    from vvops.config import check_config, load_config

    # step 5a: the environment validates alone, and nothing was copied into contracts/artifacts
    assert check_config(my_protocol_config.dir, ENV) == []
    cfg = load_config(my_protocol_config.dir, environment=ENV)
    assert cfg.contract_for("governance-timelock").name == "my_timelock"
    assert cfg.contract_for("pause-target").name == "my_vault"
    assert cfg.contract_for("multicall").name == "multicall3"

    # step 4: the governance signer from a keystore
    keystore = tmp_path / "governance.json"
    keystore.write_text(json.dumps(Account.encrypt(oz_devnet.accounts.governance.private_key, "pw")))
    monkeypatch.setenv("VVOPS_SIGNER_GOVERNANCE_KEYSTORE", str(keystore))
    monkeypatch.setenv("VVOPS_SIGNER_GOVERNANCE_PASSWORD_ENV", "MY_GOVERNANCE_PASSWORD")
    monkeypatch.setenv("MY_GOVERNANCE_PASSWORD", "pw")
    assert signer_for_role(ENV, "governance", chain_id=31337).address == oz_devnet.accounts.governance.address

    # step 5b: the protocol health checks on it
    monkeypatch.setenv("VVOPS_CONFIG_DIR", str(my_protocol_config.dir))
    outcomes = protocol_health(environment=ENV)
    by_id = {o.id: o for o in outcomes}
    state = {k: o.status for k, o in by_id.items() if k.startswith("protocol.contract_state.")}
    assert state and set(state.values()) == {"ok"}, state
    for role in ("DEFAULT_ADMIN_ROLE", "GOVERNANCE_ROLE", "GUARDIAN_ROLE"):
        assert by_id[f"protocol.contract_state.my_vault.role.{role}"].status == "ok"
    assert by_id["protocol.contract_state.my_timelock.role.PROPOSER_ROLE"].status == "ok"
    assert by_id["protocol.contract_state.my_vault.implementation"].status == "ok"
    activity = [o for k, o in by_id.items() if k.startswith("protocol.onchain_activity.my_vault")]
    assert activity and all(o.status != "error" for o in activity), [(o.id, o.message) for o in activity]
    assert os.environ["VVOPS_CONFIG_DIR"] == str(my_protocol_config.dir)
