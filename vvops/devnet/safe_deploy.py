"""Deploy Safe v1.4.1 on the devnet from the compiled artifacts of the npm package `@safe-global/safe-contracts`.

`deploy_safe(chain, owners=[...], threshold=2)` deploys the Safe singleton, SafeProxyFactory,
CompatibilityFallbackHandler, MultiSend and MultiSendCallOnly from their own deployer account (an anvil key outside
the ten the devnet uses, impersonated and funded, so the reference contracts keep their addresses), then a Safe
proxy through the factory with `setup(owners, threshold, fallback handler)`. Returns the `safe` section of
devnet.json. The artifacts are built with solc 0.7.6 by Safe, so the addresses are not the canonical mainnet ones.

Devnet owners (the `--governance safe` profile): three leads of config/team.yaml, keyed by anvil's well-known
mnemonic at indices 10-12 (public keys, never use them on a real chain). `safe_owner_accounts()` lists them.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import eth_abi
from eth_utils import keccak, to_checksum_address

from vvops import paths
from vvops.devnet.chain import Chain

SAFE_PACKAGE = "@safe-global/safe-contracts"
SAFE_VERSION = "1.4.1"
# anvil mnemonic "test test ... junk", m/44'/60'/0'/0/10..13: well known, devnet only
SAFE_OWNER_KEYS: list[tuple[str, str, str]] = [
    ("amara", "0xBcd4042DE499D14e55001CcbB24a551F3b954096",
     "0xf214f2b2cd398c806f84e317254e0f0b801d0643303237d97a22a48e01628897"),
    ("daniel", "0x71bE63f3384f5fb98995898A86B02Fb2426c5788",
     "0x701b615bbdfb9de65240bc28bd21bbc0d996645a3dd57e7b12bc2bdf6f192c82"),
    ("kwame", "0xFABB0ac9d68B0B445fB7357272Ff202C5651694a",
     "0xa267530f49f8280200edf313ee7af6b827f2a8bce2897751d06a843f644967b1"),
]
SAFE_DEPLOYER = "0x1CBd3b2770909D4e10f157cABC84C7264073C9Ec"  # index 13; impersonated, never signs itself
_ARTIFACTS = {
    "singleton": "Safe.sol/Safe.json",
    "proxy_factory": "proxies/SafeProxyFactory.sol/SafeProxyFactory.json",
    "fallback_handler": "handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json",
    "multi_send": "libraries/MultiSend.sol/MultiSend.json",
    "multi_send_call_only": "libraries/MultiSendCallOnly.sol/MultiSendCallOnly.json",
}
_PROXY_CREATION = "0x" + keccak(text="ProxyCreation(address,address)").hex()


class SafeDeployError(RuntimeError):
    """The Safe could not be deployed (missing npm package, revert)."""


def safe_artifacts_dir() -> Path:
    return paths.node_modules_dir() / SAFE_PACKAGE / "build" / "artifacts" / "contracts"


@functools.lru_cache(maxsize=None)
def safe_artifact(kind: str) -> dict[str, Any]:
    path = safe_artifacts_dir() / _ARTIFACTS[kind]
    if not path.is_file():
        raise SafeDeployError(f"{path} is missing: run `npm ci` (package.json pins {SAFE_PACKAGE}@{SAFE_VERSION})")
    return json.loads(path.read_text(encoding="utf-8"))


def safe_owner_accounts() -> list[dict[str, str]]:
    """The devnet Safe owners: [{person, address, private_key}] (anvil mnemonic indices 10-12)."""
    return [{"person": p, "address": a, "private_key": k} for p, a, k in SAFE_OWNER_KEYS]


def _deploy(chain: Chain, code: str, timeout: float) -> str:
    receipt = chain.transact(sender=SAFE_DEPLOYER, data=code, gas=8_000_000, timeout=timeout)
    return to_checksum_address(receipt["contractAddress"])


def deploy_safe(chain: Chain, *, owners: list[str] | None = None, threshold: int = 2, salt_nonce: int = 0,
                timeout: float = 60.0) -> dict[str, Any]:
    """Deploy the Safe infrastructure and one Safe proxy; returns devnet.json's `safe` section (with owner keys)."""
    owner_accounts = safe_owner_accounts()
    owners = [to_checksum_address(o) for o in (owners or [a["address"] for a in owner_accounts])]
    if not 1 <= threshold <= len(owners):
        raise SafeDeployError(f"threshold {threshold} needs 1..{len(owners)} owners")
    chain.request("anvil_setBalance", [SAFE_DEPLOYER, hex(10**21)])
    chain.request("anvil_impersonateAccount", [SAFE_DEPLOYER])
    try:
        addr = {kind: _deploy(chain, safe_artifact(kind)["bytecode"], timeout) for kind in _ARTIFACTS}
        zero = "0x" + "00" * 20
        setup = "0x" + keccak(text="setup(address[],uint256,address,bytes,address,address,uint256,address)")[:4].hex() \
            + eth_abi.encode(["address[]", "uint256", "address", "bytes", "address", "address", "uint256", "address"],
                             [owners, threshold, zero, b"", addr["fallback_handler"], zero, 0, zero]).hex()
        create = "0x" + keccak(text="createProxyWithNonce(address,bytes,uint256)")[:4].hex() \
            + eth_abi.encode(["address", "bytes", "uint256"],
                             [addr["singleton"], bytes.fromhex(setup[2:]), salt_nonce]).hex()
        receipt = chain.transact(sender=SAFE_DEPLOYER, to=addr["proxy_factory"], data=create, gas=1_000_000,
                                 timeout=timeout)
    finally:
        chain.request("anvil_stopImpersonatingAccount", [SAFE_DEPLOYER])
    created = [log for log in receipt["logs"] if log["topics"] and log["topics"][0].lower() == _PROXY_CREATION]
    if not created:
        raise SafeDeployError("SafeProxyFactory did not emit ProxyCreation")
    log = created[0]
    # ProxyCreation(SafeProxy indexed proxy, address singleton) in 1.4.1
    safe = to_checksum_address("0x" + (log["topics"][1][-40:] if len(log["topics"]) > 1 else log["data"][26:66]))
    for account in owner_accounts:  # owners pay gas when they execute "in the Safe UI" (tests simulate that)
        chain.request("anvil_setBalance", [account["address"], hex(10**20)])
    people = {a["address"]: a for a in owner_accounts}
    return {"address": safe, "version": SAFE_VERSION, "threshold": threshold, **addr,
            "owners": [{"person": people[o]["person"], "address": o, "private_key": people[o]["private_key"]}
                       if o in people else {"address": o} for o in owners]}


def timelock_holders(chain: Chain, governance: str, governance_address: str, *, timeout: float = 60.0,
                     safe: dict[str, Any] | None = None
                     ) -> tuple[list[str] | None, list[str] | None, dict[str, Any] | None]:
    """(proposers, executors, safe section) for a timelock deployed next: under `governance="safe"` the Safe is
    deployed first and becomes proposer (+ canceller) and executor beside the governance account (which keeps only
    the executor role); under "eoa" (None, None, None): the deployer's defaults. Any reference protocol's deploy
    (ours, OpenZeppelin's TimelockController) calls this so both run under the Safe profile. `safe`: the section of
    a Safe already on this chain (both protocols on one node share one Safe, as devnet.json has one) instead of a
    new one."""
    if governance == "eoa":
        return None, None, None
    if governance != "safe":
        raise SafeDeployError(f"governance must be 'eoa' or 'safe', not {governance!r}")
    if safe is not None:
        if not chain.get_code(safe["address"]):
            raise SafeDeployError(f"no Safe at {safe['address']} on {chain.rpc_url}")
    else:
        safe = deploy_safe(chain, timeout=timeout)
    return [safe["address"]], [safe["address"], to_checksum_address(governance_address)], safe
