"""Sub-flows of the daily-checks flow, one per playbook section of "Daily Operations"."""

from flows.daily.infrastructure import infrastructure_checks
from flows.daily.protocol_health import protocol_health
from flows.daily.routine_maintenance import routine_maintenance
from flows.daily.security_posture import security_posture

__all__ = ["infrastructure_checks", "protocol_health", "routine_maintenance", "security_posture"]
