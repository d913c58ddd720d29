"""Typed, frozen models of `config/alerting.yaml`: alert rules, the routing tree, inhibition rules,
silences and maintenance windows (Prometheus Alertmanager vocabulary).

Matchers are Alertmanager strings: `label="value"`, `label!="value"`, `label=~"regex"`, `label!~"regex"`
(quotes optional; regexes are anchored like Alertmanager's). Durations are `30s`, `5m`, `4h`, `1d` or
combinations (`1h30m`). Cross-file checks (escalation policies, people, check ids) live in `loader.py`.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import datetime, time, timedelta, timezone
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, Field, model_validator

from .schema import (
    WEEKDAYS,
    EnvVarName,
    Frozen,
    Identifier,
    LocalTime,
    RoleName,
    Severity,
    SlackChannelKey,
    TimeZoneName,
    Url,
    Weekday,
    problem,
)

__all__ = [
    "AlertRule",
    "AlertingFile",
    "InhibitRule",
    "MaintenanceWindow",
    "Matcher",
    "Route",
    "SilenceSpec",
    "parse_duration",
    "fingerprint_labels",
]

# ---------------------------------------------------------------------------- durations

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(v: Any) -> timedelta:
    """'30s', '5m', '4h', '1d', '1h30m' → timedelta (a timedelta passes through)."""
    if isinstance(v, timedelta):
        return v
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise problem(f"{v!r} is not a duration", "write e.g. 30s, 5m, 4h or 1d")
    if isinstance(v, int):
        raise problem(f"{v} has no unit", f'write "{v}s" or "{v}m"')
    m = _DURATION.match(v.strip())
    if not v.strip() or not m:
        raise problem(f"'{v}' is not a duration", "write e.g. 30s, 5m, 4h, 1d or 1h30m")
    d, h, mi, s = (int(x or 0) for x in m.groups())
    return timedelta(days=d, hours=h, minutes=mi, seconds=s)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

# ---------------------------------------------------------------------------- matchers

# Alertmanager's matcher grammar: a label name, an operator, a value that may be double-quoted. Inside the value
# (quoted or not) `\\` is a backslash, `\n` a line feed, `\"` a double quote; any other backslash is literal;
# an unescaped `"` may only open and close a quoted value.
_MATCHER = re.compile(r'^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$', re.DOTALL)
_ESCAPES = {"n": "\n", '"': '"', "\\": "\\"}


def unescape_matcher_value(raw: str, text: str) -> str:
    """The value of a matcher as Alertmanager reads it (escapes expanded, quotes removed)."""
    quoted = raw.startswith('"')
    body = raw[1:] if quoted else raw
    out: list[str] = []
    i, closed = 0, not quoted
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i < len(body) - 1:
            nxt = body[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        if ch == '"':
            if not quoted or i != len(body) - 1:
                raise problem(f"'{text}' has an unescaped double quote in its value",
                              'write label="value" and escape a quote inside it as \\"')
            closed = True
            i += 1
            continue
        out.append(ch)
        i += 1
    if not closed:
        raise problem(f"'{text}' has an unbalanced quote", 'write label="value" (one operator, both quotes)')
    return "".join(out)


class Matcher(Frozen):
    """One label matcher; written in YAML as the string `name op "value"`."""

    name: str
    op: Literal["=", "!=", "=~", "!~"]
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        m = _MATCHER.match(text)
        if not m:
            raise problem(f"'{text}' is not a matcher",
                          'write label="value", label!="value", label=~"regex" or label!~"regex"')
        name, op, raw = m.groups()
        value = unescape_matcher_value(raw, text)
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as e:
                raise problem(f"invalid regular expression '{value}': {e.msg}", "check the brackets and escapes") from None
        return cls(name=name, op=op, value=value)

    def matches_empty(self) -> bool:
        """Whether an alert without this label (the empty string) matches: such a matcher narrows nothing."""
        return self.matches({})

    def matches(self, labels: dict[str, Any]) -> bool:
        """Alertmanager semantics: a missing label is the empty string; regexes are fully anchored."""
        actual = str(labels.get(self.name, "") if labels.get(self.name) is not None else "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = re.fullmatch(self.value, actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def _matchers(v: Any) -> Any:
    if isinstance(v, str):
        v = [v]
    if isinstance(v, dict):  # {label: value} shorthand for equality matchers
        return [Matcher(name=str(k), op="=", value=str(val)) for k, val in v.items()]
    if isinstance(v, (list, tuple)):
        return [Matcher.parse(x) if isinstance(x, str) else x for x in v]
    return v


Matchers = Annotated[tuple[Matcher, ...], BeforeValidator(_matchers)]


def matches_all(matchers: tuple[Matcher, ...], labels: dict[str, Any]) -> bool:
    return all(m.matches(labels) for m in matchers)


def fingerprint_labels(labels: dict[str, Any]) -> str:
    """Stable hash of the sorted label set (32 hex digits); `severity` is left out so a warn→crit
    change of the same alert updates it instead of opening a second one."""
    import hashlib
    import json

    body = json.dumps({str(k): str(v) for k, v in sorted(labels.items()) if k != "severity"},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:32]


# ---------------------------------------------------------------------------- rules

_SOURCE = re.compile(r"^(check|event):(\S+)$")


def _source(v: str) -> str:
    if not isinstance(v, str) or not _SOURCE.match(v):
        raise problem(f"'{v}' is not an alert source",
                      "write check:<check id or glob> (e.g. check:protocol.contract_state*) or event:<event name>")
    return v


class RuleSeverity(Frozen):
    warn: Severity = "P3"
    crit: Severity = "P2"


def _severity(v: Any) -> Any:
    return {"warn": v, "crit": v} if isinstance(v, str) else v


class AlertRule(Frozen):
    """What raises an alert: a check outcome (status in `when`) or an on-chain event (labels in `match`)."""

    name: Identifier
    source: Annotated[str, BeforeValidator(_source)]
    when: tuple[Literal["warn", "crit"], ...] = ("crit",)
    """Check sources: the statuses that fire. `ok` resolves the alert; `error` (unknown) leaves it as is."""
    match: Matchers = ()
    """Filters on the alert's labels (events: the decoded event's labels; checks: after labelling)."""
    severity: Annotated[RuleSeverity, BeforeValidator(_severity)] | None = None
    """P0..P3, or {warn: P3, crit: P1}; omitted: the check's own severity in checks.yaml (P2 for events)."""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    """Templates with {value}, {threshold}, {message}, {check}, {hint}, {environment} and any label."""
    resolve_after: Duration | None = None
    """Event rules: resolve by itself when not seen again for this long (omitted: until acknowledged+resolved)."""
    enabled: bool = True

    @property
    def kind(self) -> str:
        return self.source.split(":", 1)[0]

    @property
    def pattern(self) -> str:
        return self.source.split(":", 1)[1]

    def matches_source(self, kind: str, name: str) -> bool:
        return self.kind == kind and fnmatch.fnmatchcase(name, self.pattern)

    @model_validator(mode="after")
    def _consistent(self) -> AlertRule:
        if self.kind == "event" and "when" in self.model_fields_set:
            raise problem("`when` applies to check sources only", "filter events with match: [...]", at="when")
        if not self.when:
            raise problem("`when` is empty", "write when: [crit] or when: [warn, crit]", at="when")
        return self


# ---------------------------------------------------------------------------- routing tree

class Route(Frozen):
    """A node of the routing tree. Unset fields are inherited from the parent route."""

    name: Identifier | None = None
    matchers: Matchers = ()
    channel: SlackChannelKey | None = None
    """Slack channel purpose (slack.yaml channels)."""
    escalation_policy: Identifier | None = None
    """oncall.yaml policy; omitted everywhere: the severity's policy in the severity matrix."""
    escalate: bool | None = None
    """Page people through the escalation policy; omitted: the severity's `page` flag."""
    group_by: tuple[str, ...] | None = None
    """Label names; ["..."] groups by every label (one notification per alert)."""
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    ack_timeout: Duration | None = None
    """An acknowledged alert still firing after this long re-escalates (PagerDuty's ack timeout)."""
    continue_: bool = Field(False, alias="continue")
    routes: tuple[Route, ...] = ()

    model_config = Frozen.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _intervals(self) -> Route:
        # Alertmanager refuses zero intervals: a zero group_interval/repeat_interval would notify in a loop
        for key in ("group_interval", "repeat_interval"):
            value = getattr(self, key)
            if value is not None and value <= timedelta(0):
                raise problem(f"{key} must be above zero", f"write e.g. {key}: 5m", at=key)
        return self


class InhibitRule(Frozen):
    """A firing source alert mutes the target alerts that have the same values for `equal` labels."""

    name: Identifier | None = None
    source_matchers: Annotated[Matchers, Field(min_length=1)]
    target_matchers: Annotated[Matchers, Field(min_length=1)]
    equal: tuple[str, ...] = ()


class SilenceSpec(Frozen):
    """A one-off silence: mutes matching alerts from `starts_at` to `ends_at` (then expires by itself)."""

    id: Identifier | None = None
    matchers: Annotated[Matchers, Field(min_length=1)]
    starts_at: datetime
    ends_at: datetime
    created_by: Identifier
    """team.yaml person id."""
    reason: str

    @model_validator(mode="after")
    def _order(self) -> SilenceSpec:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise problem("silence times need an offset", "write 2026-03-01T09:00:00+00:00", at="starts_at")
        if self.ends_at <= self.starts_at:
            raise problem("ends_at must be after starts_at", "check the dates", at="ends_at")
        if all(m.matches_empty() for m in self.matchers):
            raise problem("every matcher also matches alerts without the label, so this silence mutes everything",
                          'add at least one matcher that needs a value, e.g. alertname="rpc_down"', at="matchers")
        return self

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: dict[str, Any]) -> bool:
        return matches_all(self.matchers, labels)


class MaintenanceWindow(Frozen):
    """Planned work: mutes matching alerts, once (`starts_at`/`ends_at`) or every week (`days`, `start`,
    `end` on the local clock of `timezone`, DST-safe; an `end` before `start` runs past midnight)."""

    name: Identifier
    matchers: Matchers = ()
    """Empty: every alert."""
    reason: str = ""
    created_by: Identifier | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    days: tuple[Weekday, ...] = ()
    start: LocalTime | None = None
    end: LocalTime | None = None
    timezone: TimeZoneName = "UTC"

    @model_validator(mode="after")
    def _shape(self) -> MaintenanceWindow:
        once = self.starts_at is not None or self.ends_at is not None
        weekly = bool(self.days) or self.start is not None or self.end is not None
        if once == weekly:
            raise problem("a maintenance window is either one-off or weekly",
                          "give starts_at and ends_at, or days, start and end", at="starts_at")
        if once:
            if self.starts_at is None or self.ends_at is None:
                raise problem("a one-off window needs starts_at and ends_at", "add the missing one",
                              at="ends_at" if self.ends_at is None else "starts_at")
            if self._aware(self.ends_at) <= self._aware(self.starts_at):
                raise problem("ends_at must be after starts_at", "check the dates", at="ends_at")
        else:
            for key in ("days", "start", "end"):
                if getattr(self, key) in (None, ()):
                    raise problem(f"a weekly window needs {key}", "write days: [sunday], start: \"02:00\", end: \"04:00\"",
                                  at=key)
            if self.start == self.end:
                raise problem("start and end are equal", "a window must last some time", at="end")
        return self

    def _aware(self, dt: datetime) -> datetime:
        return dt.replace(tzinfo=ZoneInfo(self.timezone)) if dt.tzinfo is None else dt

    def active(self, now: datetime) -> bool:
        now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
        if self.starts_at is not None and self.ends_at is not None:
            return self._aware(self.starts_at) <= now < self._aware(self.ends_at)
        tz = ZoneInfo(self.timezone)
        local = now.astimezone(tz)
        assert self.start is not None and self.end is not None
        for back in (0, 1):  # today's window, or yesterday's one running past midnight
            day = local.date() - timedelta(days=back)
            if WEEKDAYS[day.weekday()] not in self.days:
                continue
            begin = datetime.combine(day, self.start, tzinfo=tz)
            end_day = day if self.end > self.start else day + timedelta(days=1)
            finish = datetime.combine(end_day, self.end, tzinfo=tz)
            # compare as UTC instants (zoneinfo compares same-zone datetimes by wall clock)
            if begin.astimezone(timezone.utc) <= now.astimezone(timezone.utc) < finish.astimezone(timezone.utc):
                return True
        return False

    def matches(self, labels: dict[str, Any]) -> bool:
        return matches_all(self.matchers, labels)


# ---------------------------------------------------------------------------- Alertmanager interop

class AlertmanagerSend(Frozen):
    """Our alerts to an existing Alertmanager through its v2 API (POST /api/v2/alerts)."""

    url: Url
    mode: Literal["besides", "instead"] = "besides"
    """besides: Alertmanager gets our alerts and our own routing notifies too; instead: Alertmanager alone
    routes and notifies (we still store alerts, open incidents and start procedures)."""
    resend_interval: Duration = timedelta(seconds=30)
    """firing alerts are sent again this often (Alertmanager resolves an alert not re-sent in time)"""
    generator_url: Url = "http://127.0.0.1:4200"
    """where an alert's "Source" link points: our Prefect UI"""
    bearer_token_env: EnvVarName | None = None
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0


class AlertmanagerReceive(Frozen):
    """Alertmanager's webhook (webhook_configs url: http://<us>:9470/api/alertmanager/webhook) into our alerts."""

    enabled: bool = True
    bearer_token_env: EnvVarName | None = None
    """when set, a request must carry `Authorization: Bearer <that variable's value>` (and is refused while
    the variable is unset)"""
    severity_label: str = "severity"
    severities: dict[str, Severity] = Field(default_factory=lambda: {
        "critical": "P1", "error": "P1", "warning": "P2", "info": "P3", "none": "P3"})
    """the team's severity label values to ours (P0..P3 pass through as they are)"""
    default_severity: Severity = "P2"


class AlertmanagerInterop(Frozen):
    send: AlertmanagerSend | None = None
    receive: AlertmanagerReceive = AlertmanagerReceive()


# ---------------------------------------------------------------------------- who may silence what

SEVERITIES = ("P0", "P1", "P2", "P3")


class SilencePolicy(Frozen):
    """Who may mute alerts of each severity, and for how long at most (`vvops silence add`)."""

    roles: dict[Severity, tuple[RoleName, ...]] = {
        "P0": ("ops_lead", "security_ops"), "P1": ("ops_lead", "security_ops"),
        "P2": ("ops_lead", "security_ops", "sre", "protocol_specialist"),
        "P3": ("ops_lead", "security_ops", "sre", "protocol_specialist")}
    max_duration: dict[Severity, Duration] = {"P0": timedelta(hours=4), "P1": timedelta(hours=12),
                                              "P2": timedelta(days=3), "P3": timedelta(days=7)}

    @model_validator(mode="after")
    def _complete(self) -> SilencePolicy:
        for key in ("roles", "max_duration"):
            missing = [s for s in SEVERITIES if s not in getattr(self, key)]
            if missing:
                raise problem(f"{key} has no entry for {', '.join(missing)}", "give every severity P0..P3", at=key)
        for sev, d in self.max_duration.items():
            if d <= timedelta(0):
                raise problem(f"max_duration of {sev} must be above zero", "write e.g. 4h", at=f"max_duration.{sev}")
        return self


# ---------------------------------------------------------------------------- the file

class AlertingFile(Frozen):
    rules: tuple[AlertRule, ...] = ()
    route: Route = Route(channel="alerts")
    inhibit_rules: tuple[InhibitRule, ...] = ()
    silences: tuple[SilenceSpec, ...] = ()
    maintenance_windows: tuple[MaintenanceWindow, ...] = ()
    alertmanager: AlertmanagerInterop = AlertmanagerInterop()
    silence_policy: SilencePolicy = SilencePolicy()

    @model_validator(mode="after")
    def _root(self) -> AlertingFile:
        r = self.route
        if r.matchers:
            raise problem("the root route matches every alert", "move the matchers to a child route",
                          at="route.matchers")
        if r.continue_:
            raise problem("the root route cannot have continue", "remove continue: true from the root route",
                          at="route.continue")
        if r.channel is None:
            raise problem("the root route needs a channel", "add channel: alerts (a slack.yaml channel purpose)",
                          at="route.channel")
        return self

    def rule(self, name: str) -> AlertRule:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(name)
