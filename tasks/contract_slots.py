"""Per-contract Prefect global concurrency limits: one parameter change or upgrade rollout per contract at a time.

    with hold_contract_slots(contracts=[("devnet", "vault")], procedure="parameter_change", change_id=run_id):
        ...  # read state, approve, send, verify: no other change touches the vault meanwhile

Built on the server's lease API rather than `prefect.concurrency.sync.concurrency`, because recovering from a
dead run needs the lease id: it is recorded, with the change that holds it, in a Prefect Variable per contract
(`vv_slot_<env>_<contract>`, visible in the UI), so a rerun of the same change takes its slot over and
`vvops slots release` can free a slot by its lease. Rules and wording: `vvops.procedures.slots`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.variables import Variable

from tasks.store import audit, current_flow_run_id
from vvops.procedures.slots import (LEASE_SECONDS, RENEW_EVERY_SECONDS, ContractBusy, SlotHolder, busy_message,
                                    holder_now, holder_variable, is_resumption, limit_name)

ContractRef = tuple[str, str]  # (environment, contract name from config)
_LOCKED = 423


def _logger() -> logging.Logger | logging.LoggerAdapter:
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("vvops.slots")


def ensure_contract_limits(contracts: Sequence[ContractRef]) -> list[str]:
    """Create the limit-1 global concurrency limit of each contract unless it exists; returns their names."""
    names = [limit_name(environment=env, contract=c) for env, c in contracts]
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                try:
                    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
                except ObjectAlreadyExists:
                    pass  # another run created it between the read and the create
    return names


def read_holder(*, environment: str, contract: str) -> SlotHolder | None:
    return SlotHolder.from_variable(Variable.get(holder_variable(environment=environment, contract=contract),
                                                 default=None))


def _release_lease(client: Any, lease_id: str) -> bool:
    """Give back a lease's slots; False when the server no longer knows the lease (lapsed or released)."""
    try:
        client.release_concurrency_slots_with_lease(UUID(lease_id))
        return True
    except httpx.HTTPStatusError as error:
        if error.response.status_code == 404:
            return False
        raise


def _acquire(client: Any, *, names: list[str], holder: ConcurrencyLeaseHolder | None, timeout_seconds: float | None,
             on_wait: Any) -> str:
    started = time.monotonic()
    told = False
    while True:
        try:
            response = client.increment_concurrency_slots_with_lease(
                names=names, slots=1, mode="concurrency", lease_duration=LEASE_SECONDS, holder=holder)
            return str(response.json()["lease_id"])
        except httpx.HTTPStatusError as error:
            if error.response.status_code != _LOCKED:
                raise
            retry_after = float(error.response.headers.get("Retry-After") or 2)
        except httpx.TransportError:
            retry_after = 2.0  # the Prefect API blinked: keep waiting, within the same deadline
        waited = time.monotonic() - started
        if timeout_seconds is not None and waited >= timeout_seconds:
            raise ContractBusy(waited)
        if not told:
            on_wait()
            told = True
        pause = min(max(retry_after, 0.5), 5.0)
        if timeout_seconds is not None:
            pause = min(pause, max(timeout_seconds - waited, 0.1))
        time.sleep(pause)


class _LeaseKeeper(threading.Thread):
    """Renews the lease while the procedure runs; a lost lease is logged, never raised into the procedure."""

    def __init__(self, lease_id: str, logger: Any):
        super().__init__(name=f"vv-slot-lease-{lease_id[:8]}", daemon=True)
        self.lease_id, self.logger, self.stopped = lease_id, logger, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(RENEW_EVERY_SECONDS):
            try:
                with get_client(sync_client=True) as client:
                    client.renew_concurrency_lease(UUID(self.lease_id), LEASE_SECONDS)
            except httpx.HTTPStatusError as error:
                if error.response.status_code == 404:
                    self.logger.error("the contract slot's lease %s was released by someone else; this change no "
                                      "longer excludes others", self.lease_id)
                    return
                self.logger.warning("renewing the contract slot's lease failed (%s); retrying", error)
            except Exception as error:  # the Prefect API may be briefly unreachable: the next beat retries
                self.logger.warning("renewing the contract slot's lease failed (%s); retrying", error)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


@contextmanager
def hold_contract_slots(*, contracts: Sequence[ContractRef], procedure: str, change_id: str,
                        timeout_seconds: float | None = None) -> Iterator[SlotHolder]:
    """Hold every contract's slot (all or none) for the duration of the block; waits for other changes first."""
    contracts = list(dict.fromkeys(contracts))
    logger = _logger()
    names = ensure_contract_limits(contracts)
    run_id = current_flow_run_id()
    holder = ConcurrencyLeaseHolder(type="flow_run", id=UUID(run_id)) if run_id else None
    subjects = ", ".join(f"{c}@{env}" for env, c in contracts)

    with get_client(sync_client=True) as client:
        for env, contract in contracts:
            earlier = read_holder(environment=env, contract=contract)
            if is_resumption(earlier, change_id=change_id):
                released = _release_lease(client, earlier.lease_id)
                logger.warning("%s@%s: resuming change %s; took over the slot of its earlier run (%s, lease %s)",
                               contract, env, change_id, earlier.flow_run_id, "released" if released else "lapsed")
                audit(actor=procedure, action="contract_slot.taken_over", subject=f"{contract}@{env}",
                      details={"change_id": change_id, "earlier": earlier.to_variable()})

        def tell_waiting() -> None:
            for env, contract in contracts:
                other = read_holder(environment=env, contract=contract)
                logger.warning("%s@%s is busy with %s; %s %s waits for it", contract, env,
                               other.describe() if other else "another change", procedure, change_id)

        started = time.monotonic()
        try:
            lease_id = _acquire(client, names=names, holder=holder, timeout_seconds=timeout_seconds,
                                on_wait=tell_waiting)
        except ContractBusy:
            env, contract = next(((e, c) for e, c in contracts if read_holder(environment=e, contract=c)),
                                 contracts[0])
            raise ContractBusy(busy_message(contract=contract, environment=env,
                                            holder=read_holder(environment=env, contract=contract),
                                            waited_seconds=time.monotonic() - started)) from None

    record = holder_now(change_id=change_id, procedure=procedure, flow_run_id=run_id, lease_id=lease_id,
                        now=datetime.now(timezone.utc))
    for env, contract in contracts:
        Variable.set(holder_variable(environment=env, contract=contract), record.to_variable(), overwrite=True)
    audit(actor=procedure, action="contract_slot.acquired", subject=subjects,
          details={"change_id": change_id, "limits": names, "lease_id": lease_id,
                   "waited_seconds": round(time.monotonic() - started, 1)})
    keeper = _LeaseKeeper(lease_id, logger)
    keeper.start()
    try:
        yield record
    finally:
        keeper.stop()
        for env, contract in contracts:
            current = read_holder(environment=env, contract=contract)
            if current is not None and current.lease_id == lease_id:
                Variable.unset(holder_variable(environment=env, contract=contract))
        with get_client(sync_client=True) as client:
            _release_lease(client, lease_id)
        audit(actor=procedure, action="contract_slot.released", subject=subjects,
              details={"change_id": change_id, "lease_id": lease_id})


def slot_status(contracts: Sequence[ContractRef]) -> list[dict[str, Any]]:
    """For each contract: its limit, slots taken, and the recorded holder (for `vvops slots list`)."""
    rows = []
    with get_client(sync_client=True) as client:
        for env, contract in contracts:
            name = limit_name(environment=env, contract=contract)
            try:
                active = client.read_global_concurrency_limit_by_name(name).active_slots
            except ObjectNotFound:
                active = None
            holder = read_holder(environment=env, contract=contract)
            rows.append({"environment": env, "contract": contract, "limit": name, "active_slots": active,
                         "holder": holder.describe() if holder and active else None})
    return rows


def force_release(*, environment: str, contract: str) -> dict[str, Any]:
    """Free a contract's slot by hand (its holder died and nobody can wait for the lease to lapse)."""
    name = limit_name(environment=environment, contract=contract)
    holder = read_holder(environment=environment, contract=contract)
    with get_client(sync_client=True) as client:
        try:
            taken = client.read_global_concurrency_limit_by_name(name).active_slots
        except ObjectNotFound:
            taken = 0
        if holder is None and not taken:
            how = "nothing to release: the slot is free"
        elif holder is not None:
            released = _release_lease(client, holder.lease_id)
            how = "lease released" if released else "lease had already lapsed"
        else:
            # No recorded lease (e.g. taken by hand in the UI): zero the counter, the only lever left.
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
            how = "no recorded holder: active slots set to 0"
    Variable.unset(holder_variable(environment=environment, contract=contract))
    return {"limit": name, "holder": holder.to_variable() if holder else None, "result": how}
