"""Deploy the VeritasVault reference contracts to a devnet and describe them in `.vvops/devnet.json`.

Roles (anvil's well-known dev accounts, mnemonic "test test ... junk" — public keys, never use on a real chain):
  0 deployer · 1 governance (timelock proposer + executor; stands in for the ops multisig) · 2 guardian ·
  3..7 users (minted vvUSD, approved to the vault, some deposited) · 8 attacker · 9 spare.
The vault proxy is owned by the Timelock; VaultV2 (and VaultV2Incompatible) implementations are deployed but
not activated, for the upgrade procedures.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import eth_abi
from eth_utils import to_checksum_address

from vvops import paths
from vvops.chain.abi import contract_abi
from vvops.chain.artifacts import bytecode_of
from vvops.devnet.chain import Chain, create_address

UNIT = 10**18

# (address, private key) of anvil's default accounts 0..9. Public, well known; devnet only.
ANVIL_ACCOUNTS: list[tuple[str, str]] = [
    ("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"),
    ("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"),
    ("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"),
    ("0x90F79bf6EB2c4f870365E785982E1f101E93b906", "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"),
    ("0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65", "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"),
    ("0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc", "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"),
    ("0x976EA74026E726554dB657fA54763abd0C3a0aa9", "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e"),
    ("0x14dC79964da2C08b23698B3D3cc7Ca32193d9955", "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356"),
    ("0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f", "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97"),
    ("0xa0Ee7A142d267C1f36714E4a8F75612F20a79720", "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"),
]

# Initial vault parameters (bounds are in VaultBase: fee 0..1000 bps, withdrawal limit 1..10M, cap 0..1B).
DEFAULT_FEE_BPS = 30
DEFAULT_WITHDRAWAL_LIMIT = 50_000 * UNIT
DEFAULT_DEPOSIT_CAP = 10_000_000 * UNIT
USER_MINT = 1_000_000 * UNIT
ATTACKER_MINT = 10_000 * UNIT
SEED_DEPOSITS = [100_000 * UNIT, 75_000 * UNIT, 50_000 * UNIT, 25_000 * UNIT, 10_000 * UNIT]
MAX_UINT256 = 2**256 - 1
ZERO_BYTES32 = b"\0" * 32

_GAS_DEPLOY = 4_000_000
_GAS_PROXY = 1_000_000
_GAS_CALL = 200_000


class DeployError(RuntimeError):
    """Deployment failed or produced an unexpected state."""


@dataclass(frozen=True)
class DevnetAccount:
    address: str
    private_key: str = field(repr=False)  # never logged

    def to_dict(self) -> dict[str, str]:
        return {"address": self.address, "private_key": self.private_key}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> "DevnetAccount":
        return cls(address=to_checksum_address(data["address"]), private_key=data["private_key"])


@dataclass(frozen=True)
class DevnetContracts:
    asset: str
    vault: str  # the ERC1967Proxy: the address everybody uses
    vault_v1_implementation: str
    vault_v2_implementation: str  # deployed, NOT activated
    timelock: str
    multicall3: str
    vault_v2_incompatible_implementation: str | None = None  # deployed, must never be activated


@dataclass(frozen=True)
class DevnetAccounts:
    deployer: DevnetAccount
    governance: DevnetAccount
    guardian: DevnetAccount
    users: list[DevnetAccount]
    attacker: DevnetAccount
    spare: DevnetAccount


@dataclass(frozen=True)
class DevnetInfo:
    rpc_url: str
    chain_id: int
    deployed_at_block: int
    timelock_delay: int
    contracts: DevnetContracts
    accounts: DevnetAccounts
    governance: str = "eoa"  # "safe": a Safe (section `safe`) holds the timelock's proposer role
    safe: dict[str, Any] | None = field(default=None, repr=False)  # vvops.devnet.safe_deploy (owner keys inside)

    def to_dict(self) -> dict[str, Any]:
        contracts = {k: v for k, v in asdict(self.contracts).items() if v is not None}
        acc = self.accounts
        return {
            "rpc_url": self.rpc_url,
            "chain_id": self.chain_id,
            "deployed_at_block": self.deployed_at_block,
            "timelock_delay": self.timelock_delay,
            "contracts": contracts,
            "accounts": {
                "deployer": acc.deployer.to_dict(),
                "governance": acc.governance.to_dict(),
                "guardian": acc.guardian.to_dict(),
                "users": [u.to_dict() for u in acc.users],
                "attacker": acc.attacker.to_dict(),
                "spare": acc.spare.to_dict(),
            },
            **({"governance": self.governance, "safe": self.safe} if self.safe else {}),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent) + ("\n" if indent else "")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DevnetInfo":
        c, a = data["contracts"], data["accounts"]
        if data.get("protocol") == "openzeppelin" and "vault" not in c:
            raise ValueError("this devnet runs the OpenZeppelin reference protocol (devnet.json protocol: "
                             "openzeppelin): use `-e devnet-oz`, or start ours with `vvops devnet up`")
        one = DevnetAccount.from_dict
        return cls(
            rpc_url=data["rpc_url"],
            chain_id=int(data["chain_id"]),
            deployed_at_block=int(data["deployed_at_block"]),
            timelock_delay=int(data["timelock_delay"]),
            contracts=DevnetContracts(**{k: to_checksum_address(v) for k, v in c.items()
                                         if k in DevnetContracts.__dataclass_fields__}),
            accounts=DevnetAccounts(
                deployer=one(a["deployer"]), governance=one(a["governance"]), guardian=one(a["guardian"]),
                users=[one(u) for u in a["users"]], attacker=one(a["attacker"]), spare=one(a["spare"]),
            ),
            governance=data.get("governance", "eoa"),
            safe=data.get("safe"),
        )

    @classmethod
    def from_json(cls, text: str | bytes | dict[str, Any]) -> "DevnetInfo":
        return cls.from_dict(text if isinstance(text, dict) else json.loads(text))

    def with_rpc_url(self, rpc_url: str) -> "DevnetInfo":
        from dataclasses import replace

        return replace(self, rpc_url=rpc_url)

    def summary(self) -> str:
        """Human-readable description (addresses and roles; never keys)."""
        c, a = self.contracts, self.accounts
        lines = [
            f"devnet {self.rpc_url} (chain id {self.chain_id}, deployed at block {self.deployed_at_block})",
            f"  vault (proxy)      {c.vault}",
            f"  vault V1 impl      {c.vault_v1_implementation}",
            f"  vault V2 impl      {c.vault_v2_implementation} (not activated)",
            f"  asset (vvUSD)      {c.asset}",
            f"  timelock           {c.timelock} (min delay {self.timelock_delay} s; owns the vault)",
            f"  multicall3         {c.multicall3}",
            f"  governance         {a.governance.address} (timelock "
            + ("executor; sends the Safe's execTransaction)" if self.safe else "proposer/executor)"),
            f"  guardian           {a.guardian.address}",
            f"  users              {', '.join(u.address for u in a.users)}",
            f"  attacker           {a.attacker.address}",
        ]
        if self.safe:
            lines.append(f"  safe               {self.safe['address']} (Safe {self.safe['version']}, "
                         f"{self.safe['threshold']} of {len(self.safe['owners'])}: "
                         + ", ".join(o.get("person") or o["address"] for o in self.safe["owners"])
                         + "; timelock proposer + executor)")
        return "\n".join(lines)


def write_devnet_file(info: DevnetInfo, path: Path | str | None = None) -> Path:
    """Write `info` atomically to `path` (default `.vvops/devnet.json`) and return the path."""
    target = Path(path) if path is not None else paths.devnet_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".devnet-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(info.to_json())
    os.replace(tmp, target)
    try:
        os.chmod(target, 0o600)
    except OSError:
        pass
    return target


def load_devnet_file(path: Path | str | None = None) -> DevnetInfo:
    """Read `.vvops/devnet.json` (or `path`); FileNotFoundError says to run `vvops devnet up`."""
    source = Path(path) if path is not None else paths.devnet_file()
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist: start a devnet with `vvops devnet up`")
    return DevnetInfo.from_json(source.read_text(encoding="utf-8"))


def _account(i: int) -> DevnetAccount:
    address, key = ANVIL_ACCOUNTS[i]
    return DevnetAccount(address=address, private_key=key)


def devnet_accounts() -> DevnetAccounts:
    return DevnetAccounts(
        deployer=_account(0), governance=_account(1), guardian=_account(2),
        users=[_account(i) for i in range(3, 8)], attacker=_account(8), spare=_account(9),
    )


def _deploy_data(name: str, types: list[str] | None = None, args: list | None = None) -> bytes:
    code = bytecode_of(name)
    return code + eth_abi.encode(types, args or []) if types else code


def deploy_devnet(
    rpc_url: str,
    *,
    timelock_delay: int = 3600,
    fee_bps: int = DEFAULT_FEE_BPS,
    withdrawal_limit: int = DEFAULT_WITHDRAWAL_LIMIT,
    deposit_cap: int = DEFAULT_DEPOSIT_CAP,
    seed_deposits: bool = True,
    timeout: float = 60.0,
    governance: str = "eoa",
) -> DevnetInfo:
    """Deploy MockAsset, VaultV1 (+ proxy owned by the Timelock), Timelock, Multicall3 and the (inactive) V2
    implementations; mint vvUSD to users and the attacker; users approve the vault and seed deposits.
    Works with automine and with --block-time (explicit nonces and gas; waits for receipts).
    `governance="safe"`: a Safe v1.4.1 (2 of 3 leads, vvops.devnet.safe_deploy) is deployed first and becomes the
    timelock's proposer and canceller (and an executor); the governance account keeps only the executor role."""
    if governance not in ("eoa", "safe"):
        raise DeployError(f"governance must be 'eoa' or 'safe', not {governance!r}")
    chain = Chain(rpc_url, timeout=max(10.0, timeout / 4))
    try:
        from vvops.devnet.safe_deploy import timelock_holders

        proposers, executors, safe = timelock_holders(chain, governance, devnet_accounts().governance.address,
                                                      timeout=timeout)
        info = _deploy(chain, timelock_delay, fee_bps, withdrawal_limit, deposit_cap, seed_deposits, timeout,
                       proposers=proposers, executors=executors)
        if safe:
            from dataclasses import replace

            info = replace(info, governance="safe", safe=safe)
        return info
    finally:
        chain.close()


def _deploy(chain: Chain, timelock_delay: int, fee_bps: int, withdrawal_limit: int, deposit_cap: int,
            seed_deposits: bool, timeout: float, proposers: list[str] | None = None,
            executors: list[str] | None = None) -> DevnetInfo:
    accounts = devnet_accounts()
    node_accounts = set(chain.accounts())
    everyone = [accounts.deployer, accounts.governance, accounts.guardian, *accounts.users, accounts.attacker,
                accounts.spare]
    missing = [a.address for a in everyone if a.address not in node_accounts]
    if missing:
        raise DeployError(f"the node at {chain.rpc_url} does not manage the well-known anvil accounts "
                          f"({', '.join(missing)}): start anvil with its default mnemonic")
    chain_id = chain.chain_id()
    deployer = accounts.deployer.address
    n0 = chain.nonce(deployer)
    addr = {name: create_address(deployer, n0 + i) for i, name in enumerate(
        ["asset", "v1", "timelock", "proxy", "multicall3", "v2", "v2_incompatible"])}

    vault_abi = contract_abi("VaultV1")
    init_data = vault_abi.encode_call("initialize", addr["asset"], addr["timelock"], accounts.guardian.address,
                                      fee_bps, withdrawal_limit, deposit_cap)
    gov = accounts.governance.address
    deploys = [
        (_deploy_data("MockAsset"), _GAS_DEPLOY),
        (_deploy_data("VaultV1"), _GAS_DEPLOY),
        (_deploy_data("Timelock", ["uint256", "address[]", "address[]", "address"],
                      [timelock_delay, proposers or [gov], executors or [gov], "0x" + "00" * 20]), _GAS_DEPLOY),
        (_deploy_data("ERC1967Proxy", ["address", "bytes"], [addr["v1"], init_data]), _GAS_PROXY),
        (_deploy_data("Multicall3"), _GAS_DEPLOY),
        (_deploy_data("VaultV2"), _GAS_DEPLOY),
        (_deploy_data("VaultV2Incompatible"), _GAS_DEPLOY),
    ]
    asset_abi = contract_abi("MockAsset")
    txs: list[dict[str, Any]] = [
        {"sender": deployer, "data": data, "gas": gas, "nonce": n0 + i} for i, (data, gas) in enumerate(deploys)
    ]
    nonce = n0 + len(deploys)
    mints = [(u.address, USER_MINT) for u in accounts.users] + [(accounts.attacker.address, ATTACKER_MINT)]
    for holder, amount in mints:
        txs.append({"sender": deployer, "to": addr["asset"], "data": asset_abi.encode_call("mint", holder, amount),
                    "gas": _GAS_CALL, "nonce": nonce})
        nonce += 1
    receipts = _send_and_wait(chain, txs, timeout, "deploy")
    deployed_at_block = int(receipts[0]["blockNumber"], 16)
    for key, receipt in zip(addr, receipts):
        if to_checksum_address(receipt["contractAddress"]) != addr[key]:
            raise DeployError(f"{key} deployed at {receipt['contractAddress']}, expected {addr[key]}")

    # users approve the vault (phase 2) and seed deposits (phase 3: after the approvals are mined)
    approve = asset_abi.encode_call("approve", addr["proxy"], MAX_UINT256)
    user_nonces = chain.batch([("eth_getTransactionCount", [u.address, "pending"]) for u in accounts.users])
    user_nonces = [int(n, 16) for n in user_nonces]
    txs = [{"sender": u.address, "to": addr["asset"], "data": approve, "gas": _GAS_CALL, "nonce": n}
           for u, n in zip(accounts.users, user_nonces)]
    _send_and_wait(chain, txs, timeout, "approve")
    if seed_deposits:
        # A separate round: within one JSON-RPC batch anvil may take nonce n+1 before n, and an automining
        # node leaves such a queued transaction unmined until another transaction arrives.
        txs = [{"sender": u.address, "to": addr["proxy"], "data": vault_abi.encode_call("deposit", amount),
                "gas": _GAS_CALL, "nonce": n + 1}
               for u, n, amount in zip(accounts.users, user_nonces, SEED_DEPOSITS)]
        _send_and_wait(chain, txs, timeout, "seed")

    info = DevnetInfo(
        rpc_url=chain.rpc_url,
        chain_id=chain_id,
        deployed_at_block=deployed_at_block,
        timelock_delay=timelock_delay,
        contracts=DevnetContracts(
            asset=addr["asset"], vault=addr["proxy"], vault_v1_implementation=addr["v1"],
            vault_v2_implementation=addr["v2"], timelock=addr["timelock"], multicall3=addr["multicall3"],
            vault_v2_incompatible_implementation=addr["v2_incompatible"],
        ),
        accounts=accounts,
    )
    _verify(chain, info)
    return info


def _send_and_wait(chain: Chain, txs: list[dict[str, Any]], timeout: float, phase: str) -> list[dict]:
    hashes = chain.send_many(txs)
    try:
        receipts = chain.wait_for_receipts(hashes, timeout=min(5.0, timeout))
    except TimeoutError:
        # A batch can reach anvil out of nonce order; the later nonce then waits in the pool for a block that an
        # automining node only makes when another transaction arrives. Mine one to flush it.
        chain.request("evm_mine", [])
        receipts = chain.wait_for_receipts(hashes, timeout=timeout)
    for tx, receipt in zip(txs, receipts):
        if int(receipt["status"], 16) != 1:
            chain.check_receipt(receipt, context=f"{phase}: tx from {tx['sender']} to {tx.get('to', '(create)')}: ")
    return receipts


def _verify(chain: Chain, info: DevnetInfo) -> None:
    vault = chain.contract("VaultV1", info.contracts.vault)
    checks = {
        "owner": (vault.call("owner"), info.contracts.timelock),
        "guardian": (vault.call("guardian"), info.accounts.guardian.address),
        "version": (vault.call("version"), "1.0.0"),
        "implementation": (vault.call("implementation"), info.contracts.vault_v1_implementation),
    }
    bad = {k: v for k, v in checks.items() if v[0] != v[1]}
    if bad:
        raise DeployError(f"unexpected vault state after deploy: {bad}")
