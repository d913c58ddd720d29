"""Parameter Change Process / Change Preparation: is a proposed value acceptable before anyone approves it.

Every limit people rely on is enforced here, each refusal naming the rule that refused it (the flow audits
it as `parameter_change.refused` with `rule`):
- `parameters.type`: the value is an integer — `true`, `1.5`, `"50"` with junk are not;
- `abi.<solidity type>`: the value fits the setter's argument type (uint16, uint256, int128 ...);
- `contracts.parameters.bounds`: the value lies within min/max of contracts.yaml;
- `procedures.parameter_changes.max_relative_change_pct`: the move from the value on chain is not larger
  than that share of it (a change from 0 has no relative size and is limited by the bounds only);
- `procedures.parameter_changes.cooldown_hours`: the same parameter was not changed more recently than that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BeforeValidator

from vvops.config.schema import Contract


@dataclass(frozen=True)
class ParameterProposal:
    contract: str
    parameter: str
    new_value: int
    minimum: int
    maximum: int
    setter: str | None


class ProposalRejected(ValueError):
    """The proposal cannot go to approval; the message says why and what would be acceptable; `rule` names
    the rule that refused it."""

    def __init__(self, message: str, rule: str = "contracts.parameters.bounds"):
        super().__init__(message)
        self.rule = rule


def _as_text_unless_int(value: object) -> object:
    """Booleans and fractions reach the flow as text, so the flow refuses them itself (audited, with its rule)
    instead of a parameter coercion turning `true` into 1."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return value


ProposedValue = Annotated[int | str, BeforeValidator(_as_text_unless_int)]
"""The type of a flow parameter carrying a proposed on-chain integer (`new_value`)."""

_SOLIDITY_INT = re.compile(r"^(u?)int(\d*)$")


def solidity_int_range(solidity_type: str) -> tuple[int, int] | None:
    """(min, max) of a Solidity integer type (`uint16` → (0, 65535)); None for a non-integer type."""
    m = _SOLIDITY_INT.match(solidity_type.strip())
    if not m:
        return None
    bits = int(m.group(2) or 256)
    if bits % 8 or not 8 <= bits <= 256:
        return None
    return (0, 2**bits - 1) if m.group(1) else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def strict_integer(name: str, value: object, unit: str = "") -> int:
    """`value` as an int, refusing booleans, fractions and text that is not a plain integer."""
    if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false")):
        raise ProposalRejected(f"{name} must be an integer, got the boolean {str(value).strip().lower()}",
                               "parameters.type")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d[\d_]*\s*", value) and "__" not in value:
        return int(value.strip().replace("_", ""))
    raise ProposalRejected(f"{name} must be an integer (raw units: {unit or 'integer'}), got {value!r}"[:300],
                           "parameters.type")


def validate_parameter_change(*, contract: Contract, parameter: str, new_value: int | str,
                              solidity_type: str | None = None) -> ParameterProposal:
    """Check the parameter exists, the value is an integer, fits the setter's type and the configured bounds."""
    spec = contract.parameters.get(parameter)
    if spec is None:
        known = ", ".join(sorted(contract.parameters)) or "none"
        raise ProposalRejected(f"{contract.name} has no governable parameter {parameter!r} (known: {known})"[:300],
                               "contracts.parameters")
    value = strict_integer(parameter, new_value, spec.unit)
    type_range = solidity_int_range(solidity_type) if solidity_type else None
    if type_range and not type_range[0] <= value <= type_range[1]:
        raise ProposalRejected(f"{parameter} = {value} does not fit the setter's {solidity_type} "
                               f"[{type_range[0]}, {type_range[1]}]", f"abi.{solidity_type}")
    if not spec.min <= value <= spec.max:
        raise ProposalRejected(f"{parameter} = {value} is outside its bounds [{spec.min}, {spec.max}] {spec.unit}".rstrip(),
                               "contracts.parameters.bounds")
    return ParameterProposal(contract.name, parameter, value, spec.min, spec.max, spec.setter)


def check_change_limits(*, parameter: str, current: int | None, new_value: int,
                        max_relative_change_pct: float | None, cooldown_hours: int,
                        last_change_at: datetime | None, now: datetime) -> None:
    """Refuse a move larger than the relative limit or a change inside the parameter's cooldown."""
    if max_relative_change_pct is not None and current not in (None, 0):
        moved_pct = abs(new_value - current) * 100 / abs(current)
        if moved_pct > max_relative_change_pct:
            allowed = abs(current) * max_relative_change_pct / 100
            raise ProposalRejected(
                f"{parameter} {current} → {new_value} moves it by {moved_pct:.1f} %, more than the "
                f"{max_relative_change_pct:g} % allowed: change it in steps of at most {allowed:g}",
                "procedures.parameter_changes.max_relative_change_pct")
    if cooldown_hours and last_change_at is not None:
        ends = last_change_at + timedelta(hours=cooldown_hours)
        if now < ends:
            raise ProposalRejected(
                f"{parameter} was changed at {last_change_at.isoformat(timespec='minutes')}; its {cooldown_hours} h "
                f"cooldown ends at {ends.isoformat(timespec='minutes')}",
                "procedures.parameter_changes.cooldown_hours")
