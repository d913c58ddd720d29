"""Sub-flows of the daily-checks flow, one per playbook section of "Daily Operations / System Health Checks"."""

from flows.daily.protocol_health import protocol_health

__all__ = ["protocol_health"]
