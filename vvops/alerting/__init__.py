"""The alerting framework (plain Python, no Prefect): rules → routing → grouping/dedup → silences and
inhibition → escalation, with a store-backed service. See `service.AlertService`."""

from vvops.config.alerting_schema import (
    AlertingFile,
    AlertRule,
    InhibitRule,
    MaintenanceWindow,
    Matcher,
    Route,
    SilenceSpec,
    fingerprint_labels,
    parse_duration,
)

from .escalation import Page, escalation_timeline, oncall_resolvers, resolve_targets
from .grouping import AlertView, GroupNotification, plan_group
from .routing import RouteMatch, group_key, route_alert
from .rules import AlertInstance, CheckEvaluation, evaluate_event, evaluate_outcomes, render
from .service import AlertService
from .silences import Mute, Silence, inhibited_by, mute_reason, silenced_by

__all__ = [
    "AlertInstance", "AlertRule", "AlertService", "AlertView", "AlertingFile", "CheckEvaluation",
    "GroupNotification", "InhibitRule", "MaintenanceWindow", "Matcher", "Mute", "Page", "Route", "RouteMatch",
    "Silence", "SilenceSpec", "escalation_timeline", "evaluate_event", "evaluate_outcomes", "fingerprint_labels",
    "group_key", "inhibited_by", "mute_reason", "oncall_resolvers", "parse_duration", "plan_group", "render",
    "resolve_targets", "route_alert", "silenced_by",
]
