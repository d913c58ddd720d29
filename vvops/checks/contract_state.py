"""Protocol Health Verification / smart contract state: compare what the chain says with what config expects."""

from __future__ import annotations

from typing import Any

from vvops.checks.outcome import CheckOutcome

AREA = "protocol"
_OPS = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def evaluate_contract_state(
    *,
    contract: str,
    values: dict[str, Any],
    errors: dict[str, str],
    roles: dict[str, str],
    approved_implementations: tuple[str, ...],
    implementation: str | None,
    parameters: dict[str, tuple[int, int]],
    invariants: list[tuple[str, str, str, str | None, int | None]],
    expect: dict[str, Any],
    open_incident: bool = False,
) -> list[CheckOutcome]:
    """One outcome per aspect of a contract: roles, implementation, pause flag, each parameter, each invariant."""
    outcomes: list[CheckOutcome] = []
    prefix = f"protocol.contract_state.{contract}"

    for getter, error in errors.items():
        outcomes.append(CheckOutcome(f"{prefix}.read.{getter}", AREA, "error", f"{contract}.{getter}() could not be read: {error}",
                                     hint="check the contract address and ABI artifact in contracts.yaml"))

    for role, expected in roles.items():
        if role not in values:
            continue
        actual = values[role]
        ok = str(actual).lower() == expected.lower()
        outcomes.append(CheckOutcome(
            f"{prefix}.role.{role}", AREA, "ok" if ok else "crit",
            f"{role} is {actual}" if ok else f"{role} is {actual}, expected {expected}",
            threshold=expected,
            hint=None if ok else f"an unexpected {role} can take over the vault: open an incident and verify the change was governed",
        ))

    if approved_implementations and implementation is not None:
        ok = implementation.lower() in {a.lower() for a in approved_implementations}
        outcomes.append(CheckOutcome(
            f"{prefix}.implementation", AREA, "ok" if ok else "crit",
            f"implementation {implementation}" + ("" if ok else " is not an approved implementation"),
            threshold=list(approved_implementations),
            hint=None if ok else "the proxy points at unapproved code: start incident-response and verify the upgrade",
        ))

    if "paused" in values:
        paused = bool(values["paused"])
        expected_paused = bool(expect.get("paused", False))
        if paused == expected_paused or (paused and open_incident):
            status, message = "ok", "paused" if paused else "not paused"
            if paused and open_incident:
                message = "paused during an open incident"
        else:
            status = "crit" if paused else "warn"
            message = "paused outside an open incident" if paused else "not paused, but config expects it paused"
        outcomes.append(CheckOutcome(f"{prefix}.paused", AREA, status, message, value=float(paused), threshold=expected_paused,
                                     hint=None if status == "ok" else "confirm who paused it and why; unpausing needs two leads"))

    for name, (low, high) in parameters.items():
        if name not in values:
            continue
        value = int(values[name])
        ok = low <= value <= high
        outcomes.append(CheckOutcome(
            f"{prefix}.parameter.{name}", AREA, "ok" if ok else "crit",
            f"{name} = {value}" + ("" if ok else f" is outside its bounds [{low}, {high}]"),
            value=float(value), threshold={"min": low, "max": high},
            hint=None if ok else "a parameter outside its bounds was set outside governance: run parameter-change to restore it",
        ))

    for name, left, op, right, right_value in invariants:
        if left not in values or (right is not None and right not in values):
            continue
        lhs = int(values[left])
        rhs = int(values[right]) if right is not None else int(right_value or 0)
        holds = _OPS[op](lhs, rhs)
        outcomes.append(CheckOutcome(
            f"{prefix}.invariant.{name}", AREA, "ok" if holds else "crit",
            f"{left} {op} {right or right_value}: {lhs} {op} {rhs} {'holds' if holds else 'is violated'}",
            value=float(lhs), threshold={"op": op, "right": rhs},
            hint=None if holds else "an invariant is broken: treat as P0, consider an emergency pause",
        ))
    return outcomes


def evaluate_access_control(
    *,
    contract: str,
    expected: dict[str, tuple[str, ...]],
    has_role: dict[tuple[str, str], bool | None],
    holders: dict[str, set[str]] | None,
    names: dict[str, str],
    replay_error: str | None = None,
) -> list[CheckOutcome]:
    """One outcome per AccessControl role: every expected holder has it (`hasRole`) and nobody else does (the
    replayed RoleGranted/RoleRevoked). `holders` maps 0x role ids to current holders; `names` ids to role names.
    A holder config does not expect is crit for a configured role and warn for a role config does not list."""
    outcomes: list[CheckOutcome] = []
    prefix = f"protocol.contract_state.{contract}.role"
    hint = "an account holding a role it should not can take over the contract: open an incident and revoke it"
    by_name = {names.get(role, role): hs for role, hs in (holders or {}).items()}
    for role, wanted in expected.items():
        wanted_lower = {w.lower() for w in wanted}
        missing = [w for w in wanted if has_role.get((role, w)) is False]
        unread = [w for w in wanted if has_role.get((role, w)) is None]
        strangers = sorted(h for h in by_name.get(role, set()) if h.lower() not in wanted_lower)
        problems = []
        if missing:
            problems.append(f"expected holder(s) lack it: {', '.join(missing)}")
        if strangers:
            problems.append(f"held by account(s) nobody expects: {', '.join(strangers)}")
        if problems:
            status, message = "crit", f"{role}: " + "; ".join(problems)
        elif unread or holders is None:
            status = "error"
            message = f"{role}: could not be verified (" + (
                f"hasRole unreadable for {', '.join(unread)}" if unread else f"role events unreadable: {replay_error}") + ")"
        else:
            status, message = "ok", f"{role}: held by {', '.join(wanted) or 'nobody'} as expected"
        outcomes.append(CheckOutcome(f"{prefix}.{role}", AREA, status, message, threshold=list(wanted),
                                     details={"holders": sorted(by_name.get(role, set())), "missing": missing,
                                              "strangers": strangers},
                                     hint=None if status == "ok" else hint))
    for role, hs in sorted(by_name.items()):
        if role in expected or not hs:
            continue
        outcomes.append(CheckOutcome(f"{prefix}.{role}", AREA, "warn",
                                     f"{role} is held by {', '.join(sorted(hs))} but contracts.yaml lists no holders "
                                     "for it", details={"holders": sorted(hs)},
                                     hint=f"add role_holders.{role} to the contract's deployment (or revoke it)"))
    return outcomes
