"""Public statements as plain functions: the public facts of an incident (never its internal title or evidence),
drafts from the configured templates, who is told, and each channel's payload."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

# noun phrases without an article: templates say "a {impact}" or "the {impact}"
IMPACT_WORDS = {"major_outage": "major outage", "partial_outage": "service disruption",
                "degraded_performance": "service degradation", "operational": "problem"}
X_LIMIT = 280


@dataclass(frozen=True)
class PublicFacts:
    """What may be said in public about an incident: its impact and the components it affects."""

    key: str
    severity: str
    incident_type: str
    impact: str
    components: tuple[str, ...]
    started: str
    resolved: str | None

    def fields(self, *, details: str, next_update_minutes: int) -> dict[str, Any]:
        from vvops.status_page.render import human_time

        return {"impact": IMPACT_WORDS.get(self.impact, "problem"),
                "components": ", ".join(self.components) or "the protocol",
                "details": details.strip(), "next_update_minutes": next_update_minutes,
                "started": human_time(self.started), "resolved": human_time(self.resolved) if self.resolved else "ongoing"}


def draft(template: str, facts: PublicFacts, *, details: str, next_update_minutes: int) -> str:
    return " ".join(template.format(**facts.fields(details=details, next_update_minutes=next_update_minutes)).split())


def statement_digest(text: str) -> str:
    """What approvers approve: the exact text (sha256), so an edit after approval is a different statement."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def x_post(text: str, *, link: str | None = None) -> str:
    """A post for a person to send on X: the statement cut at a word to fit 280 characters with the link."""
    room = X_LIMIT - (len(link) + 1 if link else 0)
    body = text if len(text) <= room else text[: room - 1].rsplit(" ", 1)[0] + "…"
    return f"{body} {link}" if link else body


def recipients(contacts: Any, *, severity: str, incident_type: str) -> list[tuple[str, str]]:
    """(contact list name, address) for every contact list that wants this severity and type; each address once."""
    seen, out = set(), []
    for contact in contacts:
        if contact.wants(severity, incident_type):
            for address in contact.emails:
                if address not in seen:
                    seen.add(address)
                    out.append((contact.name, address))
    return out


def announcement_recipients(contacts: Any, *, topic: str, kinds: Any) -> list[tuple[str, str]]:
    """(contact list name, address) for every list of one of `kinds` that subscribes to `topic`; each address once."""
    seen, out = set(), []
    for contact in contacts:
        if contact.kind in kinds and topic in contact.topics:
            for address in contact.emails:
                if address not in seen:
                    seen.add(address)
                    out.append((contact.name, address))
    return out


def webhook_payload(kind: str, text: str, *, chat_id: str | None = None) -> dict[str, Any]:
    if kind == "discord":
        return {"content": text[:2000], "allowed_mentions": {"parse": []}}
    if kind == "telegram":
        return {"chat_id": chat_id, "text": text[:4096], "disable_web_page_preview": True}
    return {"text": text}
