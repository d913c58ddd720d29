"""Standard proxies, read and upgraded the way OpenZeppelin 5 builds them (ERC-1967).

Implementation, admin and beacon always come from their ERC-1967 storage slots (standard proxies have no getters
for them). An upgrade is one call, which the procedures send through the governance timelock:

| proxy kind    | the call                                              | sent to                                     |
| ------------- | ----------------------------------------------------- | ------------------------------------------- |
| `uups`        | `upgradeToAndCall(newImplementation, data)`           | the proxy (OZ 5 removed `upgradeTo`)         |
| `transparent` | `upgradeAndCall(proxy, newImplementation, data)`      | the ProxyAdmin in the proxy's admin slot    |
| `beacon`      | `upgradeTo(newImplementation)` (no call: data ignored)| the UpgradeableBeacon in the beacon slot    |
"""

from __future__ import annotations

from dataclasses import dataclass

import eth_abi
from eth_utils import keccak, to_checksum_address

from vvops.chain.rpc import RpcClient

PROXY_KINDS = ("uups", "transparent", "beacon", "none")
# bytes32(uint256(keccak256("eip1967.proxy.<name>")) - 1)
IMPLEMENTATION_SLOT = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc"
ADMIN_SLOT = "0xb53127684a568b3173ae13b9f8a6016e243e63b6e8ee1178d6a717850b5d6103"
BEACON_SLOT = "0xa3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6cb3582b35133d50"
ZERO_ADDRESS = "0x" + "00" * 20


class ProxyError(ValueError):
    """The contract cannot be upgraded as configured (no proxy, empty admin/beacon slot)."""


@dataclass(frozen=True)
class ProxySlots:
    """What the ERC-1967 slots of `address` say (None for an empty slot). For a beacon proxy `implementation` is
    the beacon's `implementation()`."""

    address: str
    kind: str
    implementation: str | None
    admin: str | None
    beacon: str | None


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def _word_address(word: str) -> str | None:
    address = to_checksum_address("0x" + word[-40:])
    return None if address == to_checksum_address(ZERO_ADDRESS) else address


def read_proxy_slots(rpc: RpcClient, address: str, kind: str = "uups", *, block: str = "latest") -> ProxySlots:
    """Read the implementation, admin and beacon slots (and, behind a beacon, the beacon's implementation)."""
    implementation = _word_address(rpc.call("eth_getStorageAt", [address, IMPLEMENTATION_SLOT, block]))
    admin = _word_address(rpc.call("eth_getStorageAt", [address, ADMIN_SLOT, block]))
    beacon = _word_address(rpc.call("eth_getStorageAt", [address, BEACON_SLOT, block]))
    if beacon is not None and implementation is None:
        raw = rpc.call("eth_call", [{"to": beacon, "data": "0x" + _selector("implementation()").hex()}, block])
        implementation = to_checksum_address(eth_abi.decode(["address"], bytes.fromhex(raw[2:]))[0])
    return ProxySlots(address=to_checksum_address(address), kind=kind, implementation=implementation, admin=admin,
                      beacon=beacon)


def upgrade_call(slots: ProxySlots, new_implementation: str, data: bytes = b"") -> tuple[str, bytes]:
    """(target, calldata) of the upgrade of the proxy described by `slots` to `new_implementation`."""
    new_implementation = to_checksum_address(new_implementation)
    if slots.kind == "uups":
        return slots.address, _selector("upgradeToAndCall(address,bytes)") + eth_abi.encode(
            ["address", "bytes"], [new_implementation, data])
    if slots.kind == "transparent":
        if slots.admin is None:
            raise ProxyError(f"{slots.address}: the ERC-1967 admin slot is empty (not a TransparentUpgradeableProxy?)")
        return slots.admin, _selector("upgradeAndCall(address,address,bytes)") + eth_abi.encode(
            ["address", "address", "bytes"], [slots.address, new_implementation, data])
    if slots.kind == "beacon":
        if slots.beacon is None:
            raise ProxyError(f"{slots.address}: the ERC-1967 beacon slot is empty (not a BeaconProxy?)")
        if data:
            raise ProxyError("a beacon upgrade cannot call an initializer: UpgradeableBeacon.upgradeTo takes no data")
        return slots.beacon, _selector("upgradeTo(address)") + eth_abi.encode(["address"], [new_implementation])
    raise ProxyError(f"{slots.address} is configured with `proxy: {slots.kind}`: it cannot be upgraded "
                     "(set proxy: uups | transparent | beacon in contracts.yaml)")
