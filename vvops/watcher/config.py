"""`config/watcher.yaml` as a pydantic model (loaded by the watcher itself, next to the main config loader)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vvops import paths

SEVERITIES = ("P0", "P1", "P2", "P3")
CONDITION_KINDS = ("withdrawal_window", "tvl_drop", "denylisted_caller", "failed_tx_burst")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FollowerSettings(_Strict):
    mode: Literal["auto", "ws", "poll"] = "auto"
    poll_interval_s: float = Field(0.5, gt=0)
    rpc_timeout_s: float = Field(2.0, gt=0)
    retries_per_url: int = Field(0, ge=0)
    max_log_range: int = Field(5000, ge=1)
    header_batch: int = Field(500, ge=1)
    approval_max_age_h: float = Field(168, gt=0)


class ChainSettings(_Strict):
    rpc_urls: list[str] = Field(default_factory=list)
    confirmations: int | None = Field(None, ge=0)
    start: str | int = "latest"
    contracts: list[str] = Field(default_factory=lambda: ["vault", "timelock"])
    tvl_contract: str | None = "vault"

    @field_validator("start")
    @classmethod
    def _start(cls, v: str | int) -> str | int:
        if isinstance(v, int) or v in ("latest", "deployed"):
            return v
        if isinstance(v, str) and v.isdigit():
            return int(v)
        raise ValueError("start is latest, deployed or a block number")


class WatchRule(_Strict):
    """The alerting framework's rule shape (name, source, severity, labels, annotations) plus `params`."""

    name: str
    source: str
    severity: Literal["P0", "P1", "P2", "P3"] = "P2"
    enabled: bool = True
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.source.split(":", 1)[0]

    @property
    def target(self) -> str:
        return self.source.split(":", 1)[1]

    @model_validator(mode="after")
    def _check(self) -> "WatchRule":
        if ":" not in self.source or self.kind not in ("event", "condition"):
            raise ValueError(f"rule {self.name}: source is event:<Name> or condition:<kind>")
        if self.kind == "condition" and self.target not in CONDITION_KINDS:
            raise ValueError(f"rule {self.name}: unknown condition {self.target!r} (one of {', '.join(CONDITION_KINDS)})")
        approval = self.params.get("approval", "any")
        if approval not in ("any", "missing", "approved"):
            raise ValueError(f"rule {self.name}: params.approval is any, missing or approved")
        return self


class ContainmentPolicy(_Strict):
    """Which P0 alerts pause which contracts automatically, and where (all three must match)."""

    name: str
    rules: list[str] = Field(min_length=1)
    contracts: list[str] = Field(min_length=1)
    environments: list[str] = Field(min_length=1)

    def allows(self, *, rule: str, contract: str | None, environment: str) -> bool:
        return rule in self.rules and contract in self.contracts and environment in self.environments


class ContainmentSettings(_Strict):
    """The containment fast path (vvops/watcher/containment.py). No policy: nothing is ever sent automatically."""

    signer_role: str = "guardian"
    # alerts of these rules raised by a transaction the ops system sent itself (a stored chain action, e.g. the
    # guardian's pause) are expected: stored and posted, but no Prefect event, so no second incident
    expected_rules: list[str] = Field(default_factory=list)
    policies: list[ContainmentPolicy] = Field(default_factory=list)

    def policy_for(self, *, rule: str, severity: str, contract: str | None, environment: str) -> ContainmentPolicy | None:
        if severity != "P0":
            return None
        return next((p for p in self.policies if p.allows(rule=rule, contract=contract, environment=environment)), None)

    def enabled_for(self, environment: str) -> bool:
        return any(environment in p.environments for p in self.policies)


class WatcherConfig(_Strict):
    follower: FollowerSettings = Field(default_factory=FollowerSettings)
    chains: dict[str, ChainSettings] = Field(default_factory=dict)
    denylist: list[str] = Field(default_factory=list)
    rules: list[WatchRule] = Field(default_factory=list)
    containment: ContainmentSettings = Field(default_factory=ContainmentSettings)

    @field_validator("denylist")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        for a in v:
            if not (isinstance(a, str) and a.startswith("0x") and len(a) == 42):
                raise ValueError(f"denylist entry {a!r} is not a 20-byte hex address")
        return [a.lower() for a in v]

    @model_validator(mode="after")
    def _unique(self) -> "WatcherConfig":
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate rule names: {', '.join(dupes)}")
        severity = {r.name: r.severity for r in self.rules}
        for policy in self.containment.policies:
            for rule in policy.rules:
                if rule not in severity:
                    raise ValueError(f"containment policy {policy.name}: unknown rule {rule!r}")
                if severity[rule] != "P0":
                    raise ValueError(f"containment policy {policy.name}: rule {rule} is {severity[rule]}; "
                                     "only P0 rules may pause automatically")
        for rule in self.containment.expected_rules:
            if rule not in severity:
                raise ValueError(f"containment.expected_rules: unknown rule {rule!r}")
        return self

    def chain(self, environment: str) -> ChainSettings:
        return self.chains.get(environment) or ChainSettings()


def watcher_config_path(config_dir: Path | None = None) -> Path:
    return (config_dir or paths.config_dir()) / "watcher.yaml"


def load_watcher_config(config_dir: Path | None = None, *, path: Path | None = None,
                        overrides: dict[str, Any] | None = None) -> WatcherConfig:
    """Load and validate config/watcher.yaml (a missing file gives the defaults with no rules).
    `overrides` is merged on top (top-level keys; `follower` is merged key by key) — tests and benchmarks."""
    source = path or watcher_config_path(config_dir)
    data: dict[str, Any] = {}
    if source.exists():
        data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    for key, value in (overrides or {}).items():
        if key == "follower" and isinstance(value, dict):
            data["follower"] = {**(data.get("follower") or {}), **value}
        else:
            data[key] = value
    return WatcherConfig.model_validate(data)
