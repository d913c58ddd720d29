"""slack-outbox-drain: deliver what the notification outbox holds (schedule it every minute).

The flow lives in tasks/notify.py next to the tasks it drives; this module gives it its place among flows/.
"""

from tasks.notify import slack_outbox_drain

__all__ = ["slack_outbox_drain"]
