"""Technical impact analysis: what a change does to the contract's values and health checks (pure functions).

`diff_health(before_values=, after_values=, outcomes_before=, outcomes_after=)` compares two readings of a
contract (getter → value, and check outcomes as dicts with id/status/message) and returns an `ImpactReport`:
the values that changed, the checks whose status changed, and whether anything got worse (`ok`).
`ImpactReport.markdown(title)` renders it for an artifact or an approval form. When nothing could be simulated
(no fork of the chain could be made) `not_simulated(reason)` gives a report that says so plainly: its verdict is
NOT SIMULATED, never "no health check got worse".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

SEVERITY_RANK = {"ok": 0, "skipped": 0, "warn": 1, "unknown": 2, "crit": 3, "error": 3}


def rank(status: str | None) -> int:
    return SEVERITY_RANK.get(str(status or "unknown"), 2)


@dataclass(frozen=True)
class ValueChange:
    key: str
    before: Any
    after: Any


@dataclass(frozen=True)
class StatusChange:
    check_id: str
    before: str | None
    after: str | None
    message: str = ""

    @property
    def worse(self) -> bool:
        return rank(self.after) > rank(self.before)


@dataclass(frozen=True)
class ImpactReport:
    value_changes: list[ValueChange] = field(default_factory=list)
    status_changes: list[StatusChange] = field(default_factory=list)
    failing_after: list[StatusChange] = field(default_factory=list)  # not ok after, whether new or not
    error: str | None = None
    not_simulated_reason: str | None = None  # set: nothing was simulated, the impact is unknown

    @property
    def simulated(self) -> bool:
        return self.not_simulated_reason is None

    @property
    def regressions(self) -> list[StatusChange]:
        return [c for c in self.status_changes if c.worse]

    @property
    def ok(self) -> bool:
        return self.simulated and self.error is None and not self.regressions

    def summary(self) -> str:
        if not self.simulated:
            return f"not simulated ({self.not_simulated_reason}): the impact on health checks is unknown"
        if self.error:
            return f"simulation failed: {self.error}"
        changed = ", ".join(f"{c.key} {_fmt(c.before)} → {_fmt(c.after)}" for c in self.value_changes) or "no value changed"
        if self.regressions:
            return f"{changed}; health regressions: " + ", ".join(f"{c.check_id} {c.before} → {c.after}"
                                                                  for c in self.regressions)
        return f"{changed}; no health check got worse"

    def markdown(self, title: str = "Impact analysis", format_value: Any = None) -> str:
        """The report as markdown; `format_value(key, value)` renders values (token amounts with their symbol)."""
        fmt = format_value or (lambda _key, value: _fmt(value))
        if not self.simulated:
            return "\n".join([f"## {title}", "", f"**Result:** NOT SIMULATED — {self.summary()}.", "",
                              "No fork of the chain could be made, so this change was not tried anywhere: only its "
                              "bounds and type were checked. Decide knowing that.", ""])
        lines = [f"## {title}", "", f"**Result:** {'OK' if self.ok else 'ATTENTION'} — {self.summary()}", ""]
        if self.value_changes:
            lines += ["| value | before | after |", "| --- | --- | --- |"]
            lines += [f"| `{c.key}` | {fmt(c.key, c.before)} | {fmt(c.key, c.after)} |" for c in self.value_changes]
            lines.append("")
        if self.status_changes:
            lines += ["| check | before | after | message |", "| --- | --- | --- | --- |"]
            lines += [f"| `{c.check_id}` | {c.before} | {c.after} | {_short(c.message)} |" for c in self.status_changes]
            lines.append("")
        elif not self.error:
            lines += ["Every health check and invariant has the same status before and after.", ""]
        if self.failing_after:
            lines += ["Not ok after the change: " + ", ".join(f"`{c.check_id}` ({c.after})" for c in self.failing_after), ""]
        return "\n".join(lines)


def not_simulated(reason: str) -> ImpactReport:
    """The report of a change that could not be simulated (say so; never report it as harmless)."""
    return ImpactReport(not_simulated_reason=reason or "no reason given")


def _short(text: Any, limit: int = 90) -> str:
    """Table cells stay short so the table fits the approval form; the full text is in the run's artifacts."""
    text = str(text or "").replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**6:
        return f"{value:,}"
    return str(value)


def _by_id(outcomes: Iterable[Mapping[str, Any]] | None) -> dict[str, Mapping[str, Any]]:
    return {str(o["id"]): o for o in outcomes or []}


def diff_health(*, before_values: Mapping[str, Any], after_values: Mapping[str, Any] | None,
                outcomes_before: Iterable[Mapping[str, Any]], outcomes_after: Iterable[Mapping[str, Any]] | None,
                error: str | None = None, ignore: Iterable[str] = ()) -> ImpactReport:
    """Compare two readings; `after_values`/`outcomes_after` None (with `error`) means the change could not apply."""
    if after_values is None or outcomes_after is None:
        return ImpactReport(error=error or "no reading after the change")
    skip = set(ignore)
    keys = [k for k in dict.fromkeys([*before_values, *after_values]) if k not in skip]
    value_changes = [ValueChange(k, before_values.get(k), after_values.get(k)) for k in keys
                     if before_values.get(k) != after_values.get(k)]
    before, after = _by_id(outcomes_before), _by_id(outcomes_after)
    status_changes = []
    for check_id in dict.fromkeys([*before, *after]):
        b, a = before.get(check_id), after.get(check_id)
        b_status, a_status = (b or {}).get("status"), (a or {}).get("status")
        if b_status != a_status:
            status_changes.append(StatusChange(check_id, b_status, a_status, str((a or b or {}).get("message", ""))))
    failing = [StatusChange(i, (before.get(i) or {}).get("status"), o.get("status"), str(o.get("message", "")))
               for i, o in after.items() if rank(o.get("status")) > 0]
    return ImpactReport(value_changes=value_changes, status_changes=status_changes, failing_after=failing, error=error)
