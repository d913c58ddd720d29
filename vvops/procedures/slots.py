"""One change per contract at a time: the rules behind the per-contract Prefect global concurrency limits.

Parameter changes and upgrade rollouts take the slot of every contract they touch (limit 1 each) before
they read the state they will change, and keep it until verification (or rollback) is done. A second change
on the same contract waits, and says whose change it waits for.

The slot is a Prefect lease (60 s minimum, renewed while the run lives): a run whose process dies frees it
when the lease lapses (within about 75 s: lease plus the server's 15 s repossessor loop). A rerun of the same
change takes the slot over at once: it is the same change resuming, and its exactly-once transaction keys
already keep it from sending anything twice. `vvops slots release` frees a slot by hand (audited).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

LEASE_SECONDS = 60.0  # the Prefect server refuses shorter leases
RENEW_EVERY_SECONDS = 15.0
LIMIT_PREFIX = "vv-contract"
HOLDER_VARIABLE_PREFIX = "vv_slot"


class ContractBusy(TimeoutError):
    """The contract's slot stayed taken by another change for longer than the caller would wait."""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def limit_name(*, environment: str, contract: str) -> str:
    """The global concurrency limit of one contract in one environment: vv-contract-<env>-<contract>."""
    return f"{LIMIT_PREFIX}-{_slug(environment)}-{_slug(contract)}"


def holder_variable(*, environment: str, contract: str) -> str:
    """The Prefect Variable naming who holds the contract's slot (variables allow [a-z0-9_])."""
    return f"{HOLDER_VARIABLE_PREFIX}_{_slug(environment).replace('-', '_')}_{_slug(contract).replace('-', '_')}"


@dataclass(frozen=True)
class SlotHolder:
    """Who holds a contract's slot: the change, its procedure and flow run, the lease, since when."""

    change_id: str
    procedure: str
    flow_run_id: str | None
    lease_id: str
    since: str

    def to_variable(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_variable(cls, value: Any) -> SlotHolder | None:
        if not isinstance(value, dict):
            return None
        try:
            return cls(change_id=str(value["change_id"]), procedure=str(value["procedure"]),
                       flow_run_id=value.get("flow_run_id"), lease_id=str(value["lease_id"]),
                       since=str(value["since"]))
        except KeyError:
            return None

    def describe(self) -> str:
        run = f", flow run {self.flow_run_id}" if self.flow_run_id else ""
        return f"{self.procedure} {self.change_id}{run} since {self.since}"


def is_resumption(holder: SlotHolder | None, *, change_id: str, lease_id: str | None = None) -> bool:
    """True when the recorded holder is an earlier run of this very change (its slot can be taken over)."""
    return holder is not None and holder.change_id == change_id and holder.lease_id != lease_id


def busy_message(*, contract: str, environment: str, holder: SlotHolder | None, waited_seconds: float) -> str:
    """The error a waiting change ends with: which contract, held by what, and what to do."""
    who = holder.describe() if holder else "another change (holder not recorded)"
    return (f"{contract} on {environment} is busy: {who}; waited {waited_seconds:.0f} s. Let that change finish, "
            f"or if its run is dead and you cannot wait for its lease to lapse, free it with "
            f"`vvops slots release {contract} --environment {environment}`")


def holder_now(*, change_id: str, procedure: str, flow_run_id: str | None, lease_id: str, now: datetime) -> SlotHolder:
    return SlotHolder(change_id=change_id, procedure=procedure, flow_run_id=flow_run_id, lease_id=lease_id,
                      since=now.replace(microsecond=0).isoformat())
