"""The reference contracts on a real anvil: roles, bounds, pause, timelock, upgrades, events, artifacts."""

from __future__ import annotations

import json

import pytest

from vvops import paths
from vvops.devnet import CallReverted, TxReverted
from vvops.chain.abi import decode_param_name, encode_param_name, error_selector_map
from vvops.chain.artifacts import (
    artifact_names,
    compute_source_hash,
    load_artifact,
    stale_artifacts,
    storage_layout_summary,
)
from vvops.devnet.deploy import DEFAULT_DEPOSIT_CAP, DEFAULT_FEE_BPS, DEFAULT_WITHDRAWAL_LIMIT, SEED_DEPOSITS
from vvops.devnet.timetravel import chain_time, get_storage_at, increase_time

pytestmark = pytest.mark.devnet

IMPL_SLOT = 0x360894A13BA1A3210667C828492DB98DCA3E2076CC3735A920A3CA505D382BBC
ZERO32 = b"\0" * 32
UNIT = 10**18


def _vault(chain, devnet, name="VaultV1"):
    return chain.contract(name, devnet.contracts.vault)


def _timelock(chain, devnet):
    return chain.contract("Timelock", devnet.contracts.timelock)


def _through_timelock(chain, devnet, data: bytes, *, salt: bytes = ZERO32, target: str | None = None) -> dict:
    """Schedule `data` on the vault (or target) with the min delay, wait it out, execute; return the receipt."""
    tl = _timelock(chain, devnet)
    gov = devnet.accounts.governance.address
    target = target or devnet.contracts.vault
    tl.transact(gov, "schedule", target, 0, data, ZERO32, salt, devnet.timelock_delay)
    increase_time(chain, devnet.timelock_delay + 1)
    return tl.transact(gov, "execute", target, 0, data, ZERO32, salt)


# ---------------------------------------------------------------------------------------------- roles and params
def test_deployed_roles_and_parameters(devnet, devnet_chain):
    chain = devnet_chain
    vault = _vault(chain, devnet)
    assert vault.call("owner") == devnet.contracts.timelock
    assert vault.call("guardian") == devnet.accounts.guardian.address
    assert vault.call("asset") == devnet.contracts.asset
    assert vault.call("version") == "1.0.0"
    assert vault.call("paused") is False
    assert vault.call("initialized") is True
    assert vault.call("feeBps") == DEFAULT_FEE_BPS
    assert vault.call("withdrawalLimit") == DEFAULT_WITHDRAWAL_LIMIT
    assert vault.call("depositCap") == DEFAULT_DEPOSIT_CAP
    assert vault.call("feeBpsBounds") == (0, 1000)
    assert vault.call("withdrawalLimitBounds") == (UNIT, 10_000_000 * UNIT)
    assert vault.call("depositCapBounds") == (0, 1_000_000_000 * UNIT)
    assert vault.call("parameterBounds", encode_param_name("feeBps")) == (0, 1000)
    # implementation slot (ERC-1967) holds the V1 implementation
    slot = get_storage_at(chain, devnet.contracts.vault, IMPL_SLOT)
    assert "0x" + slot[12:].hex() == devnet.contracts.vault_v1_implementation.lower()
    assert vault.call("implementation") == devnet.contracts.vault_v1_implementation
    # TVL seeded, invariant holds
    assert vault.call("totalShares") == sum(SEED_DEPOSITS)
    assert vault.call("totalAssets") == vault.call("totalLiabilities") == sum(SEED_DEPOSITS)
    for user, amount in zip(devnet.accounts.users, SEED_DEPOSITS):
        assert vault.call("balanceOf", user.address) == vault.call("sharesOf", user.address) == amount
    # timelock roles and delay
    tl = _timelock(chain, devnet)
    gov = devnet.accounts.governance.address
    for role in ("PROPOSER_ROLE", "EXECUTOR_ROLE", "CANCELLER_ROLE"):
        assert tl.call("hasRole", tl.call(role), gov) is True
        assert tl.call("hasRole", tl.call(role), devnet.accounts.attacker.address) is False
    assert tl.call("hasRole", ZERO32, devnet.contracts.timelock) is True  # self-administered
    assert tl.call("hasRole", ZERO32, devnet.accounts.deployer.address) is False
    assert tl.call("minDelay") == tl.call("getMinDelay") == devnet.timelock_delay
    # the asset and multicall
    asset = chain.contract("MockAsset", devnet.contracts.asset)
    assert (asset.call("name"), asset.call("symbol"), asset.call("decimals")) == ("VeritasVault USD", "vvUSD", 18)
    mc = chain.contract("Multicall3", devnet.contracts.multicall3)
    assert mc.call("getBlockNumber") == chain.block_number()
    assert mc.call("getEthBalance", devnet.accounts.spare.address) == chain.balance(devnet.accounts.spare.address)


def test_implementations_are_locked_and_v2_inactive(devnet, devnet_chain):
    chain = devnet_chain
    v2 = chain.contract("VaultV2", devnet.contracts.vault_v2_implementation)
    assert v2.call("version") == "2.0.0"
    assert v2.call("initialized") is True  # nobody can initialize a bare implementation
    with pytest.raises(CallReverted) as exc:
        v2.call("initialize", devnet.contracts.asset, devnet.accounts.attacker.address,
                devnet.accounts.attacker.address, 0, UNIT, 0, sender=devnet.accounts.attacker.address)
    assert exc.value.error.name == "AlreadyInitialized"
    with pytest.raises(CallReverted) as exc:  # the proxy cannot be re-initialized either
        _vault(chain, devnet).call("initialize", devnet.contracts.asset, devnet.accounts.attacker.address,
                                   devnet.accounts.attacker.address, 0, UNIT, 0)
    assert exc.value.error.name == "AlreadyInitialized"


def test_multicall_aggregate3(devnet, devnet_chain):
    chain = devnet_chain
    vault = _vault(chain, devnet)
    mc = chain.contract("Multicall3", devnet.contracts.multicall3)
    calls = [(vault.address, False, vault.encode("feeBps")), (vault.address, False, vault.encode("version")),
             (vault.address, True, vault.encode("setFeeBps", 1))]  # NotOwner, allowed to fail
    results = mc.call("aggregate3", calls)
    assert results[0][0] is True and vault.abi.decode_output("feeBps", results[0][1]) == DEFAULT_FEE_BPS
    assert vault.abi.decode_output("version", results[1][1]) == "1.0.0"
    assert results[2][0] is False


# ---------------------------------------------------------------------------------------------- pause
def test_guardian_pauses_but_cannot_unpause(devnet, fresh_devnet_state):
    chain = fresh_devnet_state
    vault = _vault(chain, devnet)
    guardian = devnet.accounts.guardian.address
    with pytest.raises(TxReverted) as exc:  # an attacker can't pause
        vault.transact(devnet.accounts.attacker.address, "pause")
    assert exc.value.error.name == "NotGuardian"

    receipt = vault.transact(guardian, "pause")
    (event,) = vault.events(receipt)
    assert (event.name, event.args) == ("Paused", {"account": guardian})
    assert vault.call("paused") is True

    with pytest.raises(TxReverted) as exc:
        vault.transact(guardian, "unpause")
    assert exc.value.error.name == "NotOwner"
    # deposits and withdrawals are blocked while paused
    user = devnet.accounts.users[0].address
    for fn in ("deposit", "withdraw"):
        with pytest.raises(CallReverted) as exc:
            vault.call(fn, UNIT, sender=user)
        assert exc.value.error.name == "EnforcedPause"

    # the owner (timelock) unpauses
    receipt = _through_timelock(chain, devnet, vault.encode("unpause"))
    assert [e.name for e in vault.events(receipt)] == ["Unpaused"]
    assert vault.events(receipt)[0].args["account"] == devnet.contracts.timelock
    assert vault.call("paused") is False


def test_revert_mined_with_status_zero_is_decoded(devnet, fresh_devnet_state):
    chain = fresh_devnet_state
    vault = _vault(chain, devnet)
    with pytest.raises(TxReverted) as exc:  # explicit gas: no estimation, the tx is mined and fails
        vault.transact(devnet.accounts.guardian.address, "unpause", gas=100_000)
    assert exc.value.receipt is not None and exc.value.receipt["status"] == "0x0"
    assert exc.value.error.name == "NotOwner"
    selectors = error_selector_map()
    assert selectors[exc.value.error.selector] == "NotOwner()"


# ---------------------------------------------------------------------------------------------- timelock
def test_timelock_enforces_delay_for_set_fee(devnet, fresh_devnet_state):
    chain = fresh_devnet_state
    vault, tl = _vault(chain, devnet), _timelock(chain, devnet)
    gov = devnet.accounts.governance.address
    data = vault.encode("setFeeBps", 45)
    salt = b"fee-45".ljust(32, b"\0")
    op_id = tl.call("hashOperation", vault.address, 0, data, ZERO32, salt)

    with pytest.raises(TxReverted) as exc:  # only proposers schedule
        tl.transact(devnet.accounts.attacker.address, "schedule", vault.address, 0, data, ZERO32, salt, 3600)
    assert exc.value.error.name == "AccessControlUnauthorizedAccount"
    with pytest.raises(TxReverted) as exc:  # delay below the minimum
        tl.transact(gov, "schedule", vault.address, 0, data, ZERO32, salt, 60)
    assert exc.value.error.name == "TimelockInsufficientDelay"

    receipt = tl.transact(gov, "schedule", vault.address, 0, data, ZERO32, salt, devnet.timelock_delay)
    scheduled = tl.events(receipt, "CallScheduled")[0]
    assert scheduled.args["id"] == op_id and scheduled.args["delay"] == devnet.timelock_delay
    assert scheduled.args["target"] == vault.address and scheduled.args["data"] == data
    assert tl.call("isOperationPending", op_id) and not tl.call("isOperationReady", op_id)
    assert tl.call("getTimestamp", op_id) == chain_time(chain) + devnet.timelock_delay

    with pytest.raises(TxReverted) as exc:  # too early
        tl.transact(gov, "execute", vault.address, 0, data, ZERO32, salt)
    assert exc.value.error.name == "TimelockOperationNotReady"
    assert vault.call("feeBps") == DEFAULT_FEE_BPS

    increase_time(chain, devnet.timelock_delay + 1)
    assert tl.call("isOperationReady", op_id)
    with pytest.raises(TxReverted) as exc:  # only executors execute
        tl.transact(devnet.accounts.attacker.address, "execute", vault.address, 0, data, ZERO32, salt)
    assert exc.value.error.name == "AccessControlUnauthorizedAccount"
    receipt = tl.transact(gov, "execute", vault.address, 0, data, ZERO32, salt)
    (changed,) = vault.events(receipt, "ParameterChanged")
    assert decode_param_name(changed.args["name"]) == "feeBps"
    assert (changed.args["oldValue"], changed.args["newValue"]) == (DEFAULT_FEE_BPS, 45)
    assert tl.events(receipt, "CallExecuted")[0].args["id"] == op_id
    assert vault.call("feeBps") == 45
    assert tl.call("isOperationDone", op_id)


def test_timelock_cancel_and_update_delay_only_via_itself(devnet, fresh_devnet_state):
    chain = fresh_devnet_state
    vault, tl = _vault(chain, devnet), _timelock(chain, devnet)
    gov = devnet.accounts.governance.address
    data = vault.encode("setFeeBps", 10)
    tl.transact(gov, "schedule", vault.address, 0, data, ZERO32, ZERO32, devnet.timelock_delay)
    op_id = tl.call("hashOperation", vault.address, 0, data, ZERO32, ZERO32)
    receipt = tl.transact(gov, "cancel", op_id)
    assert tl.events(receipt, "Cancelled")[0].args["id"] == op_id
    assert not tl.call("isOperation", op_id)

    with pytest.raises(TxReverted) as exc:
        tl.transact(gov, "updateDelay", 10)
    assert exc.value.error.name == "TimelockUnauthorizedCaller"
    receipt = _through_timelock(chain, devnet, tl.encode("updateDelay", 7200), target=tl.address)
    (change,) = tl.events(receipt, "MinDelayChange")
    assert change.args == {"oldDuration": devnet.timelock_delay, "newDuration": 7200}
    assert tl.call("getMinDelay") == 7200


def test_setters_only_by_owner_and_within_bounds(devnet, fresh_devnet_state):
    chain = fresh_devnet_state
    vault = _vault(chain, devnet)
    with pytest.raises(TxReverted) as exc:
        vault.transact(devnet.accounts.guardian.address, "setFeeBps", 10)
    assert exc.value.error.name == "NotOwner"
    # an out-of-bounds value reverts with OutOfBounds, even through the timelock (reverts are bubbled up)
    with pytest.raises(TxReverted) as exc:
        _through_timelock(chain, devnet, vault.encode("setFeeBps", 1001))
    err = exc.value.error
    assert err.name == "OutOfBounds"
    assert decode_param_name(err.args["name"]) == "feeBps"
    assert (err.args["value"], err.args["min"], err.args["max"]) == (1001, 0, 1000)
    with pytest.raises(CallReverted) as exc:
        vault.call("setWithdrawalLimit", 0, sender=devnet.contracts.timelock)
    assert exc.value.error.name == "OutOfBounds"
    assert decode_param_name(exc.value.error.args["name"]) == "withdrawalLimit"


def test_ownership_and_guardian_changes_emit_events(devnet, fresh_devnet_state):
    chain = fresh_devnet_state
    vault = _vault(chain, devnet)
    spare = devnet.accounts.spare.address
    receipt = _through_timelock(chain, devnet, vault.encode("setGuardian", spare))
    (ev,) = vault.events(receipt, "GuardianChanged")
    assert ev.args == {"previousGuardian": devnet.accounts.guardian.address, "newGuardian": spare}
    receipt = _through_timelock(chain, devnet, vault.encode("transferOwnership", spare), salt=b"\1" * 32)
    (ev,) = vault.events(receipt, "OwnershipTransferred")
    assert ev.args == {"previousOwner": devnet.contracts.timelock, "newOwner": spare}
    assert vault.call("owner") == spare


# ---------------------------------------------------------------------------------------------- user flows
def test_deposit_and_withdraw_events_and_limits(devnet, fresh_devnet_state):
    chain = fresh_devnet_state
    vault = _vault(chain, devnet)
    asset = chain.contract("MockAsset", devnet.contracts.asset)
    user = devnet.accounts.users[4].address
    shares_before, wallet_before = vault.call("sharesOf", user), asset.call("balanceOf", user)

    receipt = vault.transact(user, "deposit", 1_000 * UNIT)
    (dep,) = vault.events(receipt, "Deposit")
    assert dep.args == {"user": user, "assets": 1_000 * UNIT, "shares": 1_000 * UNIT}
    assert vault.call("sharesOf", user) == shares_before + 1_000 * UNIT

    receipt = vault.transact(user, "withdraw", 500 * UNIT)
    (wd,) = vault.events(receipt, "Withdraw")
    fee = 500 * UNIT * DEFAULT_FEE_BPS // 10_000
    assert wd.args == {"user": user, "assets": 500 * UNIT, "shares": 500 * UNIT, "fee": fee}
    assert vault.call("feesAccrued") == fee
    assert asset.call("balanceOf", user) == wallet_before - 1_000 * UNIT + 500 * UNIT - fee
    assert vault.call("totalAssets") >= vault.call("totalLiabilities")

    limit = vault.call("withdrawalLimit")
    with pytest.raises(TxReverted) as exc:
        vault.transact(devnet.accounts.users[0].address, "withdraw", limit + 1)
    assert exc.value.error.name == "AboveWithdrawalLimit"
    assert exc.value.error.args == {"assets": limit + 1, "limit": limit}
    with pytest.raises(TxReverted) as exc:
        vault.transact(devnet.accounts.attacker.address, "withdraw", UNIT)
    assert exc.value.error.name == "InsufficientShares"


# ---------------------------------------------------------------------------------------------- upgrades
def test_upgrade_v1_to_v2_through_timelock_keeps_state(devnet, fresh_devnet_state):
    chain = fresh_devnet_state
    vault = _vault(chain, devnet)
    users = [u.address for u in devnet.accounts.users]
    vault.transact(users[0], "withdraw", 100 * UNIT)  # some fees accrued
    _through_timelock(chain, devnet, vault.encode("setFeeBps", 55))
    before = {
        "balances": [vault.call("balanceOf", u) for u in users],
        "totalShares": vault.call("totalShares"),
        "feeBps": vault.call("feeBps"),
        "feesAccrued": vault.call("feesAccrued"),
        "owner": vault.call("owner"),
        "guardian": vault.call("guardian"),
    }
    with pytest.raises(TxReverted) as exc:  # only the owner upgrades
        vault.transact(devnet.accounts.attacker.address, "upgradeTo", devnet.contracts.vault_v2_implementation)
    assert exc.value.error.name == "NotOwner"

    receipt = _through_timelock(chain, devnet, vault.encode("upgradeTo", devnet.contracts.vault_v2_implementation),
                                salt=b"upgrade-v2".ljust(32, b"\0"))
    (up,) = vault.events(receipt, "Upgraded")
    assert up.args["implementation"] == devnet.contracts.vault_v2_implementation

    v2 = _vault(chain, devnet, "VaultV2")
    assert v2.call("version") == "2.0.0"
    slot = get_storage_at(chain, devnet.contracts.vault, IMPL_SLOT)
    assert "0x" + slot[12:].hex() == devnet.contracts.vault_v2_implementation.lower()
    after = {
        "balances": [v2.call("balanceOf", u) for u in users],
        "totalShares": v2.call("totalShares"),
        "feeBps": v2.call("feeBps"),
        "feesAccrued": v2.call("feesAccrued"),
        "owner": v2.call("owner"),
        "guardian": v2.call("guardian"),
    }
    assert after == before
    assert v2.call("lastActivityBlock") == 0
    receipt = v2.transact(users[1], "deposit", 10 * UNIT)  # the new feature works
    assert v2.call("lastActivityBlock") == int(receipt["blockNumber"], 16)


def test_storage_layouts_v2_appends_and_incompatible_shifts():
    v1, v2, bad = (storage_layout_summary(n) for n in ("VaultV1", "VaultV2", "VaultV2Incompatible"))
    assert v2[: len(v1)] == v1 and len(v2) == len(v1) + 1
    assert v2[-1][0] == "lastActivityBlock"
    assert bad[: len(v1)] != v1
    assert bad[0][0] == "migrationEpoch" and bad[0][1] == 0


def test_upgrade_rejects_non_uups_implementation(devnet, fresh_devnet_state):
    chain = fresh_devnet_state
    vault = _vault(chain, devnet)
    with pytest.raises(TxReverted) as exc:
        _through_timelock(chain, devnet, vault.encode("upgradeTo", devnet.contracts.asset))
    assert exc.value.error.name == "InvalidImplementation"


# ---------------------------------------------------------------------------------------------- artifacts
def test_artifacts_complete_and_up_to_date():
    names = artifact_names()
    for required in ("MockAsset", "VaultV1", "VaultV2", "VaultV2Incompatible", "ERC1967Proxy", "Timelock",
                     "Multicall3"):
        assert required in names
        art = load_artifact(required)
        assert list(art) == ["contractName", "sourceName", "abi", "bytecode", "deployedBytecode",
                             "immutableReferences", "storageLayout", "compiler", "sourceHash"]
        assert art["contractName"] == required
        assert art["bytecode"].startswith("0x6") and len(art["deployedBytecode"]) > 100
        assert "storage" in art["storageLayout"]
        assert art["compiler"]["evmVersion"] == "cancun"
        assert art["compiler"]["optimizer"] == {"enabled": True, "runs": 200}
        assert art["compiler"]["version"].startswith("0.8.")
        assert art["sourceHash"] == compute_source_hash()
    assert stale_artifacts() == [], "run `npm run build:contracts`"
    # every artifact is pretty JSON with a trailing newline (stable diffs)
    text = (paths.artifacts_dir() / "VaultV1.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2) + "\n"
