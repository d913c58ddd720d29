"""Parameter Change Process / Change Preparation: is a proposed value acceptable before anyone approves it."""

from __future__ import annotations

from dataclasses import dataclass

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
    """The proposal cannot go to approval; the message says why and what would be acceptable."""


def validate_parameter_change(*, contract: Contract, parameter: str, new_value: int | str) -> ParameterProposal:
    """Check the parameter exists, the value is an integer and within the configured bounds."""
    spec = contract.parameters.get(parameter)
    if spec is None:
        known = ", ".join(sorted(contract.parameters)) or "none"
        raise ProposalRejected(f"{contract.name} has no governable parameter {parameter!r} (known: {known})")
    try:
        value = int(new_value)
    except (TypeError, ValueError):
        raise ProposalRejected(f"{parameter} must be an integer (raw units: {spec.unit or 'integer'}), got {new_value!r}") from None
    if str(value) != str(new_value).strip().replace("_", "") and not isinstance(new_value, int):
        raise ProposalRejected(f"{parameter} must be an integer, got {new_value!r}")
    if not spec.min <= value <= spec.max:
        raise ProposalRejected(f"{parameter} = {value} is outside its bounds [{spec.min}, {spec.max}] {spec.unit}".rstrip())
    return ParameterProposal(contract.name, parameter, value, spec.min, spec.max, spec.setter)
