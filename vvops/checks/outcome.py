"""The result of one check, as every cadence flow reports and stores it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# `unknown`: nothing is configured for the check to look at (no access logs, no scan reports...): not ok, not a
# failure either; it carries the hint to configure it and never counts toward the health percentage.
STATUS_ORDER = ("ok", "unknown", "warn", "crit", "error")


@dataclass(frozen=True)
class CheckOutcome:
    """One check's verdict: status ok/unknown/warn/crit/error, the measured value, the threshold and a hint."""

    id: str
    area: str
    status: str
    message: str
    value: float | None = None
    threshold: Any = None
    hint: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    served_by: str | None = None
    duration_ms: float | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUS_ORDER:
            raise ValueError(f"status must be one of {STATUS_ORDER}, not {self.status!r}")

    def summary(self) -> dict[str, Any]:
        """The fields `vvops run --json` prints for a check."""
        return {k: v for k, v in asdict(self).items() if k in ("id", "area", "status", "value", "threshold", "message")}


def worst_status(statuses: list[str] | tuple[str, ...]) -> str:
    """The most severe status of several; `ok` when there are none."""
    return max(statuses, key=STATUS_ORDER.index, default="ok")
