"""A metric point as checks produce it and the store keeps it (name, labels, time, value)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class MetricPoint:
    name: str
    value: float
    labels: dict[str, Any] = field(default_factory=dict)
    ts: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


def stamped(points: list[MetricPoint], now: datetime | None) -> list[MetricPoint]:
    """The points dated `now` (a flow run for a given moment: a time-travelled devnet), or as measured."""
    if now is None:
        return list(points)
    from dataclasses import replace

    at = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    return [replace(p, ts=at) for p in points]
