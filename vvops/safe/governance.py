"""Which Safe governs an environment, resolved from config (environments.yaml `safe`, team.yaml `safe_owner`).

`safe_governance(cfg, devnet_json=None) -> SafeGovernance | None`: None when the environment names no Safe, or
when it is a devnet started without `--governance safe` (its devnet.json has no safe section).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_utils import to_checksum_address


@dataclass(frozen=True)
class SafeGovernance:
    environment: str
    address: str
    chain_id: int
    version: str
    holds: tuple[str, ...]
    executor_role: str
    service_url: str | None
    multi_send: str | None
    owners_by_person: dict[str, str] = field(default_factory=dict)  # roster: person → owner address

    def person_of(self, owner: str | None) -> str | None:
        if not owner:
            return None
        wanted = to_checksum_address(owner)
        return next((p for p, a in self.owners_by_person.items() if a == wanted), None)

    def owner_of(self, person: str | None) -> str | None:
        return self.owners_by_person.get(person) if person else None

    def acts_for(self, timelock_role: str | None) -> bool:
        return timelock_role in self.holds


def safe_governance(cfg, devnet_json: dict | None = None) -> SafeGovernance | None:
    from vvops.config import devnet_address, load_devnet_json

    settings = cfg.env.safe
    if settings is None:
        return None
    refs = [settings.address, settings.multi_send or "", *(a for p in cfg.people for a in p.safe_owner.values())]
    if any(r.startswith("from-devnet:") for r in refs) and devnet_json is None:
        devnet_json = load_devnet_json()
    if cfg.env.uses_devnet and not (devnet_json or {}).get("safe"):
        return None  # a devnet without --governance safe: the timelock's proposer is the governance account
    owners = {p.id: devnet_address(p.safe_owner[cfg.environment], devnet_json)
              for p in cfg.people if cfg.environment in p.safe_owner and p.active}
    return SafeGovernance(environment=cfg.environment, address=devnet_address(settings.address, devnet_json),
                          chain_id=cfg.env.chain_id, version=settings.version, holds=tuple(settings.holds),
                          executor_role=settings.executor_role, service_url=settings.transaction_service_url,
                          multi_send=devnet_address(settings.multi_send, devnet_json) if settings.multi_send else None,
                          owners_by_person=owners)
