"""OpenZeppelin AccessControl, read the two ways that together cannot be fooled:

- `hasRole(role, account)` for every holder config expects (a missing grant is found at once);
- `RoleGranted`/`RoleRevoked` (both standard, all arguments indexed) replayed from the contract's deployment
  block: the current holders, so a role granted to an account nobody expects is found too.

Roles are named as in Solidity (`GOVERNANCE_ROLE` → keccak256("GOVERNANCE_ROLE"), `DEFAULT_ADMIN_ROLE` → 0x00) or
given as a 0x bytes32 id.
"""

from __future__ import annotations

from typing import Any, Iterable

from eth_utils import keccak, to_checksum_address

from vvops.chain.logs import fetch_logs
from vvops.chain.rpc import RpcClient

DEFAULT_ADMIN_ROLE = "DEFAULT_ADMIN_ROLE"
ROLE_GRANTED = "0x" + keccak(text="RoleGranted(bytes32,address,address)").hex()
ROLE_REVOKED = "0x" + keccak(text="RoleRevoked(bytes32,address,address)").hex()
#: Role names used by OpenZeppelin's own contracts and the usual protocol roles: how unknown ids are named.
WELL_KNOWN_ROLES = ("DEFAULT_ADMIN_ROLE", "PROPOSER_ROLE", "EXECUTOR_ROLE", "CANCELLER_ROLE", "GOVERNANCE_ROLE",
                    "GUARDIAN_ROLE", "PAUSER_ROLE", "UPGRADER_ROLE", "MINTER_ROLE", "BURNER_ROLE", "ADMIN_ROLE",
                    "OPERATOR_ROLE", "KEEPER_ROLE", "MANAGER_ROLE", "STRATEGIST_ROLE")


def role_id(name: str) -> bytes:
    """The bytes32 id of a role name (or of a 0x id given as is)."""
    if name == DEFAULT_ADMIN_ROLE:
        return b"\0" * 32
    if name.startswith("0x") and len(name) == 66:
        return bytes.fromhex(name[2:])
    return keccak(text=name)


def role_names(extra: Iterable[str] = ()) -> dict[str, str]:
    """0x role id → name for the well-known roles plus `extra`."""
    return {"0x" + role_id(n).hex(): n for n in (*WELL_KNOWN_ROLES, *extra)}


def replay_role_logs(logs: Iterable[dict[str, Any]]) -> dict[str, set[str]]:
    """Current holders per 0x role id from RoleGranted/RoleRevoked logs in chain order."""
    holders: dict[str, dict[str, str]] = {}
    for log in logs:
        topics = log.get("topics") or []
        if len(topics) < 3 or topics[0] not in (ROLE_GRANTED, ROLE_REVOKED):
            continue
        role = "0x" + topics[1][2:].rjust(64, "0").lower()
        account = to_checksum_address("0x" + topics[2][-40:])
        members = holders.setdefault(role, {})
        if topics[0] == ROLE_GRANTED:
            members[account.lower()] = account
        else:
            members.pop(account.lower(), None)
    return {role: set(m.values()) for role, m in holders.items()}


def read_role_holders(rpc: RpcClient, *, address: str | list[str], from_block: int, to_block: int | None = None
                      ) -> dict[str, dict[str, set[str]]]:
    """{contract address: {0x role id: current holders}} by replaying the contracts' role events."""
    head = to_block if to_block is not None else int(rpc.call("eth_blockNumber", []), 16)
    addresses = [address] if isinstance(address, str) else list(address)
    logs = fetch_logs(rpc, address=addresses, from_block=from_block, to_block=head,
                      topics=[[ROLE_GRANTED, ROLE_REVOKED]])
    by_contract: dict[str, list[dict[str, Any]]] = {to_checksum_address(a): [] for a in addresses}
    for log in logs:
        by_contract.setdefault(to_checksum_address(log["address"]), []).append(log)
    return {addr: replay_role_logs(items) for addr, items in by_contract.items()}
