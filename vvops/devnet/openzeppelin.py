"""The OpenZeppelin reference protocol on a devnet (`vvops devnet up --protocol openzeppelin`).

What a real team deploys: OpenZeppelin 5 contracts unchanged (TimelockController, ERC1967Proxy,
TransparentUpgradeableProxy + its ProxyAdmin, UpgradeableBeacon + BeaconProxy) around our `OZVaultV1`, an ERC-4626
vault built from OpenZeppelin's upgradeable contracts (AccessControl roles DEFAULT_ADMIN/GOVERNANCE/GUARDIAN,
Pausable, UUPS), and Multicall3 at its canonical address (0xcA11…CA11, put there with `anvil_setCode`).

- the UUPS vault (`oz_vault`, an ERC1967Proxy) is the one users deposit into;
- `oz_vault_transparent` is the same implementation behind a TransparentUpgradeableProxy whose ProxyAdmin
  (`oz_proxy_admin`, created by the proxy) is owned by the timelock;
- `oz_vault_beacon` is a BeaconProxy whose `oz_beacon` is owned by the timelock;
- every vault: DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE held by the timelock, GUARDIAN_ROLE by the guardian account;
- the timelock: proposer/canceller and executor = the governance account, no extra admin (self-administered);
  under `--governance safe` (vvops.devnet.safe_deploy.timelock_holders, as for our protocol) a Safe v1.4.1 (2 of 3
  leads) is proposer/canceller and executor, the governance account only an executor (it sends execTransaction).

The addresses go into devnet.json under `contracts.oz_*` (beside ours when both run on one node) so that the
`devnet-oz` environment of config/contracts.yaml reads them with `from-devnet:oz_vault` and so on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import eth_abi
from eth_utils import to_checksum_address

from vvops import paths
from vvops.chain.abi import contract_abi
from vvops.chain.artifacts import bytecode_of, deployed_bytecode_of
from vvops.devnet.chain import Chain, create_address
from vvops.devnet.deploy import (
    DEFAULT_DEPOSIT_CAP,
    DEFAULT_FEE_BPS,
    MAX_UINT256,
    SEED_DEPOSITS,
    USER_MINT,
    DeployError,
    DevnetAccounts,
    _send_and_wait,
    devnet_accounts,
    write_devnet_file,
)

PROTOCOL = "openzeppelin"
CANONICAL_MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11"
ADMIN_SLOT = "0xb53127684a568b3173ae13b9f8a6016e243e63b6e8ee1178d6a717850b5d6103"
IMPLEMENTATION_SLOT = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc"
ROLE_NAMES = ("DEFAULT_ADMIN_ROLE", "GOVERNANCE_ROLE", "GUARDIAN_ROLE")

_GAS_DEPLOY = 6_000_000
_GAS_CALL = 300_000


@dataclass(frozen=True)
class OzDevnetInfo:
    rpc_url: str
    chain_id: int
    deployed_at_block: int
    timelock_delay: int
    contracts: dict[str, str]  # oz_* keys → address
    accounts: DevnetAccounts
    governance: str = "eoa"  # "safe": a Safe (section `safe`) holds the timelock's proposer role
    safe: dict[str, Any] | None = field(default=None, repr=False)  # vvops.devnet.safe_deploy (owner keys inside)

    def contracts_json(self) -> dict[str, str]:
        return dict(self.contracts)

    def summary(self) -> str:
        c, a = self.contracts, self.accounts
        return "\n".join([
            f"OpenZeppelin protocol on {self.rpc_url} (chain id {self.chain_id}, deployed at block {self.deployed_at_block})",
            f"  vault (UUPS ERC1967Proxy)        {c['oz_vault']}",
            f"  vault (TransparentUpgradeable)   {c['oz_vault_transparent']} (ProxyAdmin {c['oz_proxy_admin']})",
            f"  vault (BeaconProxy)              {c['oz_vault_beacon']} (UpgradeableBeacon {c['oz_beacon']})",
            f"  OZVaultV1 / V2 implementations   {c['oz_vault_v1_implementation']} / {c['oz_vault_v2_implementation']} (V2 not activated)",
            f"  asset                            {c['oz_asset']}",
            f"  TimelockController               {c['oz_timelock']} (min delay {self.timelock_delay} s; "
            "holds DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE, owns the ProxyAdmin and the beacon)",
            f"  Multicall3 (canonical)           {c['multicall3_canonical']}",
            f"  governance                       {a.governance.address} (timelock "
            + ("executor; sends the Safe's execTransaction)" if self.safe else "proposer/canceller/executor)"),
            f"  guardian                         {a.guardian.address} (GUARDIAN_ROLE)",
        ] + ([f"  safe                             {self.safe['address']} (Safe {self.safe['version']}, "
              f"{self.safe['threshold']} of {len(self.safe['owners'])}: "
              + ", ".join(o.get("person") or o["address"] for o in self.safe["owners"])
              + "; timelock proposer/canceller + executor)"] if self.safe else []))


def _deploy_data(name: str, types: list[str] | None = None, args: list | None = None) -> bytes:
    code = bytecode_of(name)
    return code + eth_abi.encode(types, args or []) if types else code


def deploy_openzeppelin(rpc_url: str, *, timelock_delay: int = 3600, fee_bps: int = DEFAULT_FEE_BPS,
                        deposit_cap: int = DEFAULT_DEPOSIT_CAP, seed_deposits: bool = True,
                        timeout: float = 60.0, governance: str = "eoa", safe: dict[str, Any] | None = None
                        ) -> OzDevnetInfo:
    """Deploy the OpenZeppelin reference protocol on the node at `rpc_url` (which manages anvil's accounts).
    `governance="safe"`: the Safe profile of our protocol (`deploy_devnet`): a Safe v1.4.1 holds the
    TimelockController's PROPOSER_ROLE and CANCELLER_ROLE and, beside the governance account, EXECUTOR_ROLE.
    `safe`: reuse the Safe of that devnet.json section (already on this node) instead of deploying one."""
    if governance not in ("eoa", "safe"):
        raise DeployError(f"governance must be 'eoa' or 'safe', not {governance!r}")
    from vvops.devnet.safe_deploy import timelock_holders

    chain = Chain(rpc_url, timeout=max(10.0, timeout / 4))
    try:
        proposers, executors, safe = timelock_holders(chain, governance, devnet_accounts().governance.address,
                                                      timeout=timeout, safe=safe)
        info = _deploy(chain, timelock_delay, fee_bps, deposit_cap, seed_deposits, timeout,
                       proposers=proposers, executors=executors)
        if safe:
            info = replace(info, governance="safe", safe=safe)
            _verify_safe_roles(chain, info)
        return info
    finally:
        chain.close()


def _deploy(chain: Chain, timelock_delay: int, fee_bps: int, deposit_cap: int, seed_deposits: bool,
            timeout: float, proposers: list[str] | None = None, executors: list[str] | None = None) -> OzDevnetInfo:
    accounts = devnet_accounts()
    deployer, gov, guardian = accounts.deployer.address, accounts.governance.address, accounts.guardian.address
    n0 = chain.nonce(deployer)
    order = ["oz_asset", "oz_vault_v1_implementation", "oz_timelock", "oz_vault", "oz_vault_v2_implementation",
             "oz_vault_v2_incompatible_implementation", "oz_vault_transparent", "oz_beacon", "oz_vault_beacon"]
    addr = {name: create_address(deployer, n0 + i) for i, name in enumerate(order)}
    addr["oz_proxy_admin"] = create_address(addr["oz_vault_transparent"], 1)  # the proxy's own first CREATE

    vault_abi = contract_abi("OZVaultV1")
    init = vault_abi.encode_call("initialize", addr["oz_asset"], addr["oz_timelock"], addr["oz_timelock"], guardian,
                                 fee_bps, deposit_cap)
    timelock = addr["oz_timelock"]
    deploys = [
        _deploy_data("MockAsset"),
        _deploy_data("OZVaultV1"),
        _deploy_data("TimelockController", ["uint256", "address[]", "address[]", "address"],
                     [timelock_delay, proposers or [gov], executors or [gov], "0x" + "00" * 20]),
        _deploy_data("OZERC1967Proxy", ["address", "bytes"], [addr["oz_vault_v1_implementation"], init]),
        _deploy_data("OZVaultV2"),
        _deploy_data("OZVaultV2Incompatible"),
        _deploy_data("TransparentUpgradeableProxy", ["address", "address", "bytes"],
                     [addr["oz_vault_v1_implementation"], timelock, init]),
        _deploy_data("UpgradeableBeacon", ["address", "address"], [addr["oz_vault_v1_implementation"], timelock]),
        _deploy_data("BeaconProxy", ["address", "bytes"], [addr["oz_beacon"], init]),
    ]
    txs: list[dict[str, Any]] = [{"sender": deployer, "data": d, "gas": _GAS_DEPLOY, "nonce": n0 + i}
                                 for i, d in enumerate(deploys)]
    asset_abi = contract_abi("MockAsset")
    nonce = n0 + len(deploys)
    for user in accounts.users:
        txs.append({"sender": deployer, "to": addr["oz_asset"], "gas": _GAS_CALL, "nonce": nonce,
                    "data": asset_abi.encode_call("mint", user.address, USER_MINT)})
        nonce += 1
    receipts = _send_and_wait(chain, txs, timeout, "deploy openzeppelin")
    deployed_at_block = int(receipts[0]["blockNumber"], 16)
    for key, receipt in zip(order, receipts):
        if to_checksum_address(receipt["contractAddress"]) != addr[key]:
            raise DeployError(f"{key} deployed at {receipt['contractAddress']}, expected {addr[key]}")

    chain.request("anvil_setCode", [CANONICAL_MULTICALL3, "0x" + deployed_bytecode_of("Multicall3").hex()])
    addr["multicall3_canonical"] = CANONICAL_MULTICALL3

    vaults = [addr["oz_vault"], addr["oz_vault_transparent"], addr["oz_vault_beacon"]]
    user_nonces = [int(n, 16) for n in chain.batch([("eth_getTransactionCount", [u.address, "pending"])
                                                    for u in accounts.users])]
    # One transaction per sender per round: within one JSON-RPC batch anvil may take nonce n+1 before n and then
    # leave it queued on an automining node (see deploy._send_and_wait).
    for i, v in enumerate(vaults):
        _send_and_wait(chain, [{"sender": u.address, "to": addr["oz_asset"], "gas": _GAS_CALL, "nonce": n + i,
                                "data": asset_abi.encode_call("approve", v, MAX_UINT256)}
                               for u, n in zip(accounts.users, user_nonces)], timeout, "approve")
    if seed_deposits:
        # every user into the UUPS vault; the first two also into the transparent and beacon variants
        for i, v in enumerate(vaults):
            depositors = list(zip(accounts.users, user_nonces, SEED_DEPOSITS))[: None if i == 0 else 2]
            _send_and_wait(chain, [{"sender": u.address, "to": v, "gas": _GAS_CALL, "nonce": n + len(vaults) + i,
                                    "data": vault_abi.encode_call("deposit", amount, u.address)}
                                   for u, n, amount in depositors], timeout, "seed")

    info = OzDevnetInfo(rpc_url=chain.rpc_url, chain_id=chain.chain_id(), deployed_at_block=deployed_at_block,
                        timelock_delay=timelock_delay, contracts=addr, accounts=accounts)
    _verify(chain, info)
    return info


def _slot_address(chain: Chain, address: str, slot: str) -> str:
    return to_checksum_address("0x" + chain.get_storage_at(address, slot)[-20:].hex())


def _verify(chain: Chain, info: OzDevnetInfo) -> None:
    c = info.contracts
    if _slot_address(chain, c["oz_vault_transparent"], ADMIN_SLOT) != c["oz_proxy_admin"]:
        raise DeployError("the TransparentUpgradeableProxy's admin slot does not hold the expected ProxyAdmin")
    for key in ("oz_vault", "oz_vault_transparent"):
        if _slot_address(chain, c[key], IMPLEMENTATION_SLOT) != c["oz_vault_v1_implementation"]:
            raise DeployError(f"{key}: ERC-1967 implementation slot does not hold OZVaultV1")
    vault = chain.contract("OZVaultV1", c["oz_vault"])
    governance = vault.call("GOVERNANCE_ROLE")
    if not vault.call("hasRole", governance, c["oz_timelock"]) or vault.call("version") != "1.0.0":
        raise DeployError("the OpenZeppelin vault is not governed by its TimelockController after deploy")
    if not chain.get_code(CANONICAL_MULTICALL3):
        raise DeployError("no code at the canonical Multicall3 address")


def _verify_safe_roles(chain: Chain, info: OzDevnetInfo) -> None:
    """Under the Safe profile the Safe proposes and cancels (the governance account does not) and both execute."""
    timelock = chain.contract("TimelockController", info.contracts["oz_timelock"])
    safe, gov = info.safe["address"], info.accounts.governance.address
    expected = {("PROPOSER_ROLE", safe): True, ("CANCELLER_ROLE", safe): True, ("EXECUTOR_ROLE", safe): True,
                ("EXECUTOR_ROLE", gov): True, ("PROPOSER_ROLE", gov): False, ("CANCELLER_ROLE", gov): False}
    wrong = [f"{role} {'missing for' if want else 'held by'} {who}" for (role, who), want in expected.items()
             if bool(timelock.call("hasRole", timelock.call(role), who)) != want]
    if wrong:
        raise DeployError("the TimelockController's roles under the Safe profile: " + "; ".join(wrong))


def devnet_json_of(info: OzDevnetInfo) -> dict[str, Any]:
    """The devnet.json of a node that runs only the OpenZeppelin protocol."""
    acc = info.accounts
    return {
        "protocol": PROTOCOL,
        "rpc_url": info.rpc_url,
        "chain_id": info.chain_id,
        "deployed_at_block": info.deployed_at_block,
        "timelock_delay": info.timelock_delay,
        "contracts": info.contracts_json(),
        "accounts": {"deployer": acc.deployer.to_dict(), "governance": acc.governance.to_dict(),
                     "guardian": acc.guardian.to_dict(), "users": [u.to_dict() for u in acc.users],
                     "attacker": acc.attacker.to_dict(), "spare": acc.spare.to_dict()},
        # who proposes on the timelock in this profile: contracts.yaml's expected role holders read it
        # (from-devnet:roles.oz_timelock_proposer), so the access review holds under both profiles
        "roles": {"oz_timelock_proposer": info.safe["address"] if info.safe else acc.governance.address},
        **({"governance": info.governance, "safe": info.safe} if info.safe else {}),
    }


def write_openzeppelin_devnet_file(info: OzDevnetInfo, path: Path | str | None = None, *, merge: bool = False) -> Path:
    """Write devnet.json for the OpenZeppelin protocol; with `merge`, add its `oz_*` contracts to the devnet.json
    already there (both protocols on one node, as the tests run them). Merged, both protocols must share one
    governance profile: one Safe (deploy with `safe=` that devnet.json's section) or none, since the file has one
    `safe` section and every environment on it reads that."""
    target = Path(path) if path is not None else paths.devnet_file()
    data = devnet_json_of(info)
    if merge and target.exists():
        existing = json.loads(target.read_text(encoding="utf-8"))
        theirs, ours = (existing.get("safe") or {}).get("address"), (info.safe or {}).get("address")
        if theirs != ours:
            raise DeployError(f"{target} is governed by {'Safe ' + theirs if theirs else 'the governance account'}, "
                              f"the OpenZeppelin protocol by {'Safe ' + ours if ours else 'the governance account'}: "
                              "deploy both under one profile (deploy_openzeppelin(..., safe=<its safe section>))")
        existing.setdefault("contracts", {}).update(data["contracts"])
        existing.setdefault("roles", {}).update(data["roles"])
        existing["protocols"] = sorted({*existing.get("protocols", ["veritasvault"]), PROTOCOL})
        data = existing
    return write_devnet_file(_RawDevnetJson(data), target)


class _RawDevnetJson:
    """Adapter so write_devnet_file's atomic write serves a plain dict."""

    def __init__(self, data: dict[str, Any]):
        self._data = data

    def to_json(self) -> str:
        return json.dumps(self._data, indent=2) + "\n"
