"""Protocol Upgrades / Pre-deployment Checklist: is the new implementation the approved code (its storage layout is
judged by OpenZeppelin upgrades-core: vvops/procedures/upgrade_safety.py); rollout rules."""

from __future__ import annotations

from typing import Any


def masked_code_hash(code: bytes, immutable_references: list[dict[str, int]]) -> str:
    """keccak256 of runtime code with immutable slots zeroed: they are filled at deploy time, so the
    same source deployed twice differs only there."""
    from eth_utils import keccak

    masked = bytearray(code)
    for ref in immutable_references:
        masked[ref["start"] : ref["start"] + ref["length"]] = bytes(ref["length"])
    return "0x" + keccak(bytes(masked)).hex()


# --------------------------------------------------------------------------- rollout rules (stages, keys, checkpoints)

from dataclasses import dataclass, field  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402

# State that an upgrade must not change (read before and after through the proxy).
PRESERVED_GETTERS = ("owner", "guardian", "paused", "asset", "feeBps", "withdrawalLimit", "depositCap",
                     "totalAssets", "totalLiabilities")


def rollout_stages(environment: str, stages: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """The chains to upgrade, in order (each a stage with its own checkpoint). Default: the environment alone
    (the devnet has one chain); a multi-chain rollout passes e.g. ["testnet", "mainnet"]."""
    out = [s for s in (stages or [environment]) if s]
    if len(set(out)) != len(out):
        raise ValueError(f"a chain appears twice in the rollout stages: {out}")
    return out


def upgrade_key(change_id: str, stage: str, step: str) -> str:
    """Idempotency key of one on-chain step: a rerun with the same change id reuses it (never re-sends)."""
    return f"upgrade_rollout:{change_id}:{stage}:{step}"


@dataclass(frozen=True)
class Checkpoint:
    stage: str
    checks: dict[str, bool]
    details: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(self.checks.values())

    @property
    def failed(self) -> list[str]:
        return [k for k, v in self.checks.items() if not v]


def _same_address(a: object, b: object) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()


def evaluate_checkpoint(*, stage: str, expected_implementation: str, implementation: str | None,
                        expected_version: str, version: object, before: dict[str, object],
                        after: dict[str, object], invariants_ok: bool, health_problems: list[str]) -> Checkpoint:
    """One stage's checkpoint: implementation slot, version(), invariants, state preserved, health checks."""
    changed = {k: (before.get(k), after.get(k)) for k in PRESERVED_GETTERS
               if k in before and before.get(k) != after.get(k)}
    # The vault keeps taking deposits while we upgrade: TVL moves; liabilities/assets are judged by the invariant.
    changed = {k: v for k, v in changed.items() if k not in ("totalAssets", "totalLiabilities")}
    checks = {
        "implementation slot is the new implementation": _same_address(implementation, expected_implementation),
        f"version() is {expected_version}": version == expected_version,
        "invariants hold": invariants_ok,
        "state preserved": not changed,
        "health checks pass": not health_problems,
    }
    return Checkpoint(stage, checks, {"implementation": implementation, "version": version,
                                      "state_changed": {k: [str(x) for x in v] for k, v in changed.items()},
                                      "health_problems": health_problems})


def stabilisation_window(*, completed_at: datetime, hours: int) -> dict[str, str]:
    """The heightened-monitoring window after an upgrade (stored and published as a Prefect Variable)."""
    start = completed_at if completed_at.tzinfo else completed_at.replace(tzinfo=timezone.utc)
    return {"from": start.isoformat(), "until": (start + timedelta(hours=hours)).isoformat()}


def stabilisation_check_due(*, window: dict[str, str] | None, last_run_at: datetime | None, now: datetime,
                            every_minutes: int) -> bool:
    """Inside a stabilisation window, the protocol-health checks are due when the last run is `every_minutes` old
    (or there was none since the window opened)."""
    if not in_stabilisation(window, now):
        return False
    opened = datetime.fromisoformat(window["from"])
    return last_run_at is None or last_run_at < opened or now - last_run_at >= timedelta(minutes=every_minutes)


def in_stabilisation(window: dict[str, str] | None, now: datetime) -> bool:
    """Whether `now` falls in a stabilisation window (the ops sweep then runs protocol-health more often)."""
    if not window or "until" not in window:
        return False
    return datetime.fromisoformat(window["from"]) <= now <= datetime.fromisoformat(window["until"])
