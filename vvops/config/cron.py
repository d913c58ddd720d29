"""Five-field cron expressions (minute hour day-of-month month day-of-week), checked the way Prefect's
Cron schedule will read them, so a typo fails `vvops config check` and not a deployment at start-up."""

from __future__ import annotations

import re

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (name, lowest, highest, names that may stand for numbers)
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_ITEM = re.compile(r"^(?P<base>\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/(?P<step>[0-9]+))?$")


class CronError(ValueError):
    """What is wrong with an expression, in words a person can act on."""


def _value(token: str, name: str, low: int, high: int, names: tuple[str, ...]) -> int:
    upper = token.upper()
    if upper in names:
        return names.index(upper) + (1 if names is _MONTHS else 0)
    if not token.isdigit():
        raise CronError(f"{name}: {token!r} is not a number{' or a name (' + ', '.join(names) + ')' if names else ''}")
    number = int(token)
    if not low <= number <= high:
        raise CronError(f"{name}: {number} is outside {low}-{high}")
    return number


def check_cron(expression: str) -> str:
    """Return the expression when it is a valid five-field cron, else raise CronError saying why."""
    fields = str(expression).split()
    if len(fields) != 5:
        raise CronError(f"{expression!r} has {len(fields)} fields; a cron has 5: minute hour day month weekday")
    for text, (name, low, high, names) in zip(fields, _FIELDS):
        for item in text.split(","):
            match = _ITEM.match(item)
            if not match:
                raise CronError(f"{name}: {item!r} is not a value, range, list or step")
            if match["step"] is not None and int(match["step"]) == 0:
                raise CronError(f"{name}: a step of 0 never fires")
            if match["base"] == "*":
                continue
            parts = match["base"].split("-")
            values = [_value(p, name, low, high, names) for p in parts]
            if len(values) == 2 and values[0] > values[1]:
                raise CronError(f"{name}: range {match['base']} runs backwards")
    return " ".join(fields)
