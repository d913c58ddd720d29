"""config/communications.yaml: public statements during incidents (playbook: Crisis Communication, External
Communication). Who gets told what, through which channels, from which templates. Optional file."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .schema import Frozen, Identifier, problem
from .secrets import ENV_NAME

StatementKind = Literal["initial", "update", "resolution", "post_incident"]
STATEMENT_KINDS: tuple[str, ...] = ("initial", "update", "resolution", "post_incident")
Sev = Literal["P0", "P1", "P2", "P3"]
IncType = Literal["technical", "security", "operational", "external"]
Topic = Literal["maintenance", "upgrade", "api_change", "roadmap", "specification", "integration", "education",
                "community_update"]
TOPICS: tuple[str, ...] = ("maintenance", "upgrade", "api_change", "roadmap", "specification", "integration",
                           "education", "community_update")
EnvName = Annotated[str, Field(pattern=ENV_NAME.pattern)]
EmailAddress = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]

DEFAULT_TEMPLATES = {
    "initial": "We are investigating a {impact} affecting {components}. User funds safety is our first priority. "
               "Next update within {next_update_minutes} minutes.",
    "update": "Update on the {impact} affecting {components}: {details} Next update within {next_update_minutes} minutes.",
    "resolution": "The {impact} affecting {components} has been resolved. {details}",
    "post_incident": "Post-incident summary for the {impact} affecting {components} ({started} to {resolved}): {details}",
}


class Webhook(Frozen):
    name: Identifier
    kind: Literal["discord", "telegram", "generic"] = "generic"
    url_env: EnvName
    """The environment variable holding the webhook URL (it embeds a token: never in YAML)."""
    chat_id: str | None = None
    """Telegram only: the chat to post to."""


class EmailSettings(Frozen):
    smtp_host: str = "127.0.0.1"
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 25
    sender: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] = "status@localhost"
    starttls: bool = False
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0


class Contact(Frozen):
    """A list of people outside the team told about incidents (partners, exchanges, integrators)."""

    name: Annotated[str, Field(min_length=1)]
    kind: Literal["partner", "exchange", "integrator", "regulator", "auditor"]
    emails: Annotated[tuple[EmailAddress, ...], Field(min_length=1)]
    severities: tuple[Sev, ...] = ("P0", "P1")
    incident_types: tuple[IncType, ...] = ("technical", "security", "operational", "external")
    topics: tuple[Topic, ...] = ()
    """Announcements outside incidents this list receives (the `announcement` flow): maintenance, upgrade,
    api_change, roadmap, specification, integration, education, community_update. None by default."""

    def wants(self, severity: str, incident_type: str) -> bool:
        return severity in self.severities and incident_type in self.incident_types


class CommunicationsFile(Frozen):
    update_every_minutes: dict[Sev, Annotated[int, Field(ge=5, le=24 * 60)]] = {"P0": 30, "P1": 60, "P2": 240, "P3": 1440}
    """Public update cadence by severity (the reminders and the `next update within` promise)."""
    templates: dict[StatementKind, Annotated[str, Field(min_length=10, max_length=4000)]] = DEFAULT_TEMPLATES
    webhooks: tuple[Webhook, ...] = ()
    email: EmailSettings = EmailSettings()
    contacts: tuple[Contact, ...] = ()
    x_draft: bool = True
    """Write an X/Twitter post draft (≤ 280 characters) for a person to send; never posted automatically."""

    @model_validator(mode="after")
    def _templates_known_fields(self) -> CommunicationsFile:
        import string

        allowed = {"impact", "components", "details", "next_update_minutes", "started", "resolved"}
        for kind, text in self.templates.items():
            try:
                names = {name for _, name, _, _ in string.Formatter().parse(text) if name}
            except ValueError as exc:
                raise problem(f"templates.{kind}: {exc}", "use {placeholders} with balanced braces") from None
            unknown = names - allowed
            if unknown:
                raise problem(f"templates.{kind} uses unknown placeholders {sorted(unknown)}",
                              f"allowed: {', '.join(sorted(allowed))}")
        return self
