"""The routing tree (Alertmanager semantics): walk down from the root; at each node the first matching
child wins unless it has `continue: true`; a node none of whose children match receives the alert.
Children inherit every unset setting from their parent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from vvops.config.alerting_schema import Matcher, Route, matches_all

__all__ = ["Matcher", "RouteMatch", "route_alert", "group_key"]

_INHERITED = ("channel", "escalation_policy", "escalate", "group_by", "group_wait", "group_interval",
              "repeat_interval", "ack_timeout")
_DEFAULTS: dict[str, Any] = {"channel": "alerts", "escalation_policy": None, "escalate": None,
                             "group_by": ("alertname",), "group_wait": timedelta(seconds=30),
                             "group_interval": timedelta(minutes=5), "repeat_interval": timedelta(hours=4),
                             "ack_timeout": None}


@dataclass(frozen=True)
class RouteMatch:
    """A route an alert was sent to, with the inherited settings filled in."""

    route_id: str
    """`root`, or the path of names/indexes, e.g. `root/critical` or `root/1`."""
    channel: str
    escalation_policy: str | None
    escalate: bool | None
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    ack_timeout: timedelta | None


def _settings(route: Route, parent: dict[str, Any]) -> dict[str, Any]:
    out = dict(parent)
    for key in _INHERITED:
        v = getattr(route, key)
        if v is not None:
            out[key] = v
    return out


def route_alert(root: Route, labels: dict[str, Any]) -> list[RouteMatch]:
    """The routes that receive an alert with these labels (at least one: the root catches everything)."""
    out: list[RouteMatch] = []

    def walk(node: Route, path: str, inherited: dict[str, Any]) -> bool:
        if not matches_all(node.matchers, labels):
            return False
        settings = _settings(node, inherited)
        matched_child = False
        for i, child in enumerate(node.routes):
            if walk(child, f"{path}/{child.name or i}", settings):
                matched_child = True
                if not child.continue_:
                    break
        if not matched_child:
            out.append(RouteMatch(route_id=path, **settings))
        return True

    walk(root, "root", dict(_DEFAULTS))
    return out


def group_key(route: RouteMatch, labels: dict[str, Any]) -> str:
    """`<route>:{label="value",...}`; group_by ["..."] makes every distinct label set its own group."""
    if "..." in route.group_by:
        keys = sorted(labels)
    else:
        keys = list(route.group_by)
    body = ",".join(f'{k}="{labels.get(k, "")}"' for k in keys if k != "severity" or "..." not in route.group_by)
    return f"{route.route_id}:{{{body}}}"
