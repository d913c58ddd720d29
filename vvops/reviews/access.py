"""Access review (monthly Security review, pure): on-chain roles versus what config expects.

Inputs are plain values read elsewhere (`tasks.reviews.read_access_state`): the vault's role getters
(owner, guardian), its ERC-1967 implementation, and the Timelock's role holders (replayed from its
`RoleGranted`/`RoleRevoked` events and confirmed with `hasRole`). Every row is one holder/role with what config
expects and whether it matches; a holder nobody expects, an expected holder that is missing, a wrong owner or
an unapproved implementation is `ok: False`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eth_utils import keccak

#: Timelock role names → bytes32 role ids (DEFAULT_ADMIN_ROLE is 0x00)
TIMELOCK_ROLES: dict[str, bytes] = {
    "DEFAULT_ADMIN_ROLE": b"\x00" * 32,
    "PROPOSER_ROLE": keccak(text="PROPOSER_ROLE"),
    "EXECUTOR_ROLE": keccak(text="EXECUTOR_ROLE"),
    "CANCELLER_ROLE": keccak(text="CANCELLER_ROLE"),
}
ROLE_NAMES: dict[bytes, str] = {v: k for k, v in TIMELOCK_ROLES.items()}
#: the address that stands for "anyone" (an executor role granted to address(0) opens execution to all)
ZERO_ADDRESS = "0x" + "00" * 20


def role_name(role: bytes | str) -> str:
    raw = role if isinstance(role, bytes) else bytes.fromhex(str(role).removeprefix("0x").rjust(64, "0"))
    return ROLE_NAMES.get(raw, "0x" + raw.hex())


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and str(a).lower() == str(b).lower()


def replay_role_events(events: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Current holders per role name from RoleGranted/RoleRevoked events in chain order.

    Each event: {"name": "RoleGranted"|"RoleRevoked", "role": bytes32, "account": address}."""
    holders: dict[str, dict[str, str]] = {}
    for e in events:
        role = role_name(e["role"])
        account = str(e["account"])
        members = holders.setdefault(role, {})
        if e["name"] == "RoleGranted":
            members[account.lower()] = account
        elif e["name"] == "RoleRevoked":
            members.pop(account.lower(), None)
    return {role: sorted(m.values()) for role, m in holders.items()}


def _row(contract: str, role: str, holder: str | None, expected: str, ok: bool, note: str = "") -> dict[str, Any]:
    return {"contract": contract, "role": role, "holder": holder or "—", "expected": expected or "—",
            "ok": bool(ok), "note": note}


def access_review(
    *,
    vault_roles: Mapping[str, str | None],
    expected_roles: Mapping[str, str],
    implementation: str | None,
    approved_implementations: Sequence[str],
    timelock_holders: Mapping[str, Sequence[str]],
    expected_timelock_holders: Mapping[str, Sequence[str]],
    labels: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One row per holder/role: contract, role, holder, expected, ok, note.

    vault_roles: getter → observed holder (None: not readable); expected_roles: getter → expected address
    (contracts.yaml `roles`). implementation / approved_implementations: the proxy's ERC-1967 implementation
    versus contracts.yaml `approved_implementations` (no row when neither is known). timelock_holders: role
    name → current holders; expected_timelock_holders: role name → the accounts config expects (a role absent
    from the mapping expects nobody). labels: address → a readable name for the note.
    """
    names = {k.lower(): v for k, v in (labels or {}).items()}

    def label(addr: str | None) -> str:
        return names.get(str(addr).lower(), "") if addr else ""

    rows: list[dict[str, Any]] = []
    for role in dict.fromkeys([*expected_roles, *vault_roles]):
        holder, expected = vault_roles.get(role), expected_roles.get(role)
        if expected is None:
            rows.append(_row("vault", role, holder, "", False, "no expectation in contracts.yaml"))
        elif holder is None:
            rows.append(_row("vault", role, None, expected, False, "could not be read"))
        else:
            ok = _same(holder, expected)
            rows.append(_row("vault", role, holder, expected, ok,
                             label(holder) if ok else f"expected {label(expected) or expected}; holder "
                             f"{label(holder) or 'unknown to config'}"))
    if implementation is not None or approved_implementations:
        ok = any(_same(implementation, a) for a in approved_implementations)
        rows.append(_row("vault", "implementation (ERC-1967)", implementation, ", ".join(approved_implementations),
                         ok, "" if ok else "not an approved implementation" if implementation else "could not be read"))
    for role in dict.fromkeys([*expected_timelock_holders, *timelock_holders]):
        expected = list(expected_timelock_holders.get(role, ()))
        held = list(timelock_holders.get(role, ()))
        exp_text = ", ".join(expected)
        for holder in held:
            ok = any(_same(holder, e) for e in expected)
            note = label(holder) if ok else ("anyone may act (address(0))" if _same(holder, ZERO_ADDRESS)
                                             else f"not in config{': ' + label(holder) if label(holder) else ''}")
            rows.append(_row("timelock", role, holder, exp_text, ok, note))
        for e in expected:
            if not any(_same(h, e) for h in held):
                rows.append(_row("timelock", role, None, e, False, f"expected holder {label(e) or e} lacks the role"))
    return rows


def access_control_rows(contract: str, *, expected: Mapping[str, Sequence[str]], holders: Mapping[str, Sequence[str]],
                        labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Rows for one AccessControl contract: every current holder (replayed RoleGranted/RoleRevoked) against the
    holders contracts.yaml expects (`role_holders`), and every expected holder that lacks its role."""
    names = {k.lower(): v for k, v in (labels or {}).items()}
    rows: list[dict[str, Any]] = []
    for role in dict.fromkeys([*expected, *holders]):
        wanted, held = list(expected.get(role, ())), list(holders.get(role, ()))
        for holder in held:
            ok = any(_same(holder, e) for e in wanted)
            note = names.get(holder.lower(), "") if ok else (
                "no holders configured for this role" if role not in expected else "not in config (a stranger)")
            rows.append(_row(contract, role, holder, ", ".join(wanted), ok, note))
        for e in wanted:
            if not any(_same(h, e) for h in held):
                rows.append(_row(contract, role, None, e, False, f"expected holder {names.get(e.lower(), e)} lacks the role"))
    return rows


def access_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    return {"rows": len(rows), "ok": sum(1 for r in rows if r["ok"]), "flagged": sum(1 for r in rows if not r["ok"])}


def access_section(state: Mapping[str, Any]) -> dict[str, Any]:
    """The report's `security.access` dict from `read_access_state`'s result (unreachable chain → available
    False with the error and no rows)."""
    if not state.get("available"):
        return {"available": False, "error": state.get("error") or "chain not readable", "rows": [],
                "summary": access_summary([])}
    exp = state.get("expected") or {}
    rows = access_review(
        vault_roles=state.get("vault_roles") or {}, expected_roles=exp.get("vault_roles") or {},
        implementation=state.get("implementation"), approved_implementations=exp.get("approved_implementations") or (),
        timelock_holders=state.get("timelock_holders") or {}, expected_timelock_holders=exp.get("timelock") or {},
        labels=exp.get("labels"))
    for contract, roles in (state.get("access_control") or {}).items():
        rows += access_control_rows(contract, expected=roles.get("expected") or {}, holders=roles.get("holders") or {},
                                    labels=exp.get("labels"))
    for u in state.get("unconfirmed") or []:
        rows.append(_row("timelock", u["role"], u["holder"], "", False, "granted in logs but hasRole is false"))
    return {"available": True, "error": None, "rows": rows, "summary": access_summary(rows),
            "events_scanned": state.get("events"), "blocks": [state.get("from_block"), state.get("to_block")]}
