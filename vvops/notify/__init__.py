"""Slack notifications: Block Kit message builders (`messages`) and outbox → Slack delivery (`delivery`).

Plain Python (no Prefect); `tasks/notify.py` wraps them in Prefect tasks and the `slack-outbox-drain` flow.
"""

from vvops.notify.delivery import (
    METADATA_EVENT_TYPE,
    DeliveryReport,
    RetryPolicy,
    SlackDelivery,
    SlackDeliveryError,
)
from vvops.notify.messages import KINDS, flow_run_url, render

__all__ = [
    "KINDS",
    "METADATA_EVENT_TYPE",
    "DeliveryReport",
    "RetryPolicy",
    "SlackDelivery",
    "SlackDeliveryError",
    "flow_run_url",
    "render",
]
