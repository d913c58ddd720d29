"""config/status_page.yaml: what the public status page shows (playbook: External Communication, "Service status
notifications"). Optional: without the file the page has no components and says so."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .schema import Frozen, Identifier, Url, problem

IncidentTypeName = Literal["technical", "security", "operational", "external"]


class StatusComponent(Frozen):
    """One thing users depend on, and the evidence that says how it is."""

    name: Annotated[str, Field(min_length=1, max_length=80)]
    description: str = ""
    checks: tuple[str, ...] = ()
    """Daily-check ids (or prefixes such as `infrastructure.http_endpoints`) whose latest results set the state."""
    contracts: tuple[Identifier, ...] = ()
    """Monitored contracts (contracts.yaml names): an open incident whose alerts name one affects this component."""
    incident_types: tuple[IncidentTypeName, ...] = ()
    """An open incident of one of these types affects this component even when its alerts name no contract."""

    @model_validator(mode="after")
    def _has_evidence(self) -> StatusComponent:
        if not (self.checks or self.contracts or self.incident_types):
            raise problem(f"component {self.name!r} has no checks, contracts or incident_types",
                          "name what decides its state; a component nothing can change would always say operational")
        return self


class StatusPageFile(Frozen):
    title: str = "Status"
    public_url: Url | None = None
    """Where the published page lives (links in the Atom feed); null: relative links only."""
    stale_after_hours: Annotated[float, Field(gt=0, le=24 * 31)] = 26.0
    """A check result older than this no longer says anything: the component shows `no data`."""
    uptime_days: Annotated[int, Field(ge=1, le=365)] = 90
    components: tuple[StatusComponent, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> StatusPageFile:
        names = [c.name for c in self.components]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise problem(f"component names repeat: {', '.join(duplicates)}", "give each component its own name")
        return self
