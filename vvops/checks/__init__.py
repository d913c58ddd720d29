"""Check outcomes and the rules that turn read values into ok / warn / crit / error."""

from vvops.checks.outcome import STATUS_ORDER, CheckOutcome, worst_status

__all__ = ["STATUS_ORDER", "CheckOutcome", "worst_status"]
