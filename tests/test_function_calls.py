"""Gas per call and errors by function with decoded revert reasons, as the daily tx-error check records them:
pure decoding (custom errors from the ABI, Error(string), Panic(uint256)) and the live path on both protocols
(real anvil: a successful call and a revert above the withdrawal limit, read back from receipts and traces)."""

from __future__ import annotations

import eth_abi
import pytest

from vvops.chain.abi import Abi, contract_abi, selector
from vvops.chain.calls import NO_REASON, function_names, function_of, reason_text

UNIT = 10**18


def test_revert_reasons_are_decoded_from_the_abi_error_string_and_panic():
    vault = contract_abi("VaultV1")
    limit = "0x" + (selector("AboveWithdrawalLimit(uint256,uint256)") + eth_abi.encode(["uint256", "uint256"], [5, 4])).hex()
    assert reason_text(limit, vault) == "AboveWithdrawalLimit"
    error = "0x08c379a0" + eth_abi.encode(["string"], ["Multicall3: call failed"]).hex()
    assert reason_text(error, vault) == "Error: Multicall3: call failed"
    assert reason_text("0x4e487b71" + eth_abi.encode(["uint256"], [0x11]).hex(), vault) == "Panic 0x11"
    assert reason_text("0x", vault) == NO_REASON
    assert reason_text("0xdeadbeef", Abi([])) == "<unknown 0xdeadbeef>"


def test_function_names_come_from_the_calldata_selector():
    names = function_names(contract_abi("OZVaultV1"))
    assert function_of("0x" + selector("withdraw(uint256,address,address)").hex() + "00" * 96, names) == "withdraw"
    assert function_of("0x", names) == "receive"
    assert function_of("0x12345678", names) == "unknown"


def _rejected_withdrawal(environment: str, chain, request) -> tuple[str, str]:
    """Send a withdrawal the vault refuses (mined with status 0). Returns (tx hash, expected reason)."""
    if environment == "devnet":
        devnet = request.getfixturevalue("devnet")
        vault = chain.contract("VaultV1", devnet.contracts.vault)
        user = devnet.accounts.users[0].address
        vault.transact(user, "deposit", 10 * UNIT)
        vault.transact(user, "withdraw", UNIT)
        limit = vault.call("withdrawalLimit")
        tx = chain.send(sender=user, to=devnet.contracts.vault, gas=200_000, data=vault.encode("withdraw", limit + UNIT))
        return tx, "AboveWithdrawalLimit"
    oz = request.getfixturevalue("oz_devnet")
    vault = chain.contract("OZVaultV1", oz.contracts["oz_vault"])
    user = oz.accounts.users[0].address
    vault.transact(user, "withdraw", UNIT, user, user)
    tx = chain.send(sender=user, to=oz.contracts["oz_vault"], gas=300_000,
                    data=vault.encode("withdraw", 10**12 * UNIT, user, user))
    return tx, "ERC4626ExceededMaxWithdraw"


@pytest.mark.devnet
def test_the_daily_error_check_records_gas_and_reverts_by_function(protocol_env, ops_home, fresh_devnet_state, request):
    from tasks.chain import tx_error_outcomes
    from tasks.runtime import ops_config
    from vvops.chain.activity import window_blocks
    from vvops.chain.rpc import RpcClient

    chain = fresh_devnet_state
    tx, expected = _rejected_withdrawal(protocol_env, chain, request)
    assert int(chain.wait_for_receipt(tx)["status"], 16) == 0
    watched = [c.name for c in ops_config(protocol_env).contracts.deployed_in(protocol_env) if c.kind in ("vault", "timelock")]
    with RpcClient([chain.rpc_url]) as rpc:
        result = tx_error_outcomes(rpc, environment=protocol_env, contracts=watched,
                                   window=window_blocks(rpc, window_hours=1))

    outcome = result["outcomes"][0]
    failed = next(f for f in outcome.details["failed_txs"] if f["tx"] == tx)
    assert (failed["function"], failed["reason"]) == ("withdraw", expected)
    assert expected in outcome.message and "withdraw" in outcome.message
    vault = "vault" if protocol_env == "devnet" else "oz_vault"
    rows = {(r["contract"], r["function"]): r for r in outcome.details["by_function"]}
    withdraw = rows[(vault, "withdraw")]
    assert withdraw["failed"] >= 1 and withdraw["reasons"][expected] >= 1 and withdraw["mean_gas"] > 20_000
    points = {(p.name, tuple(sorted(p.labels.items()))): p.value for p in result["metrics"]}
    labels = (("chain", protocol_env), ("contract", vault), ("function", "withdraw"))
    assert points[("gas_per_call", labels)] == pytest.approx(withdraw["mean_gas"], abs=1)
    assert points[("protocol.reverts_by_reason", tuple(sorted((*labels, ("reason", expected)))))] >= 1
    assert points[("withdrawal_limit_hits", (("chain", protocol_env), ("contract", vault)))] >= 1
