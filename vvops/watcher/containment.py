"""The containment fast path: the guardian's pause sent in the same watcher step that stores a P0 alert.

    containment = Containment.from_config(engine=..., rpc=..., chain_id=..., environment="devnet",
                                          settings=wcfg.containment, contracts={"vault": "0x..."})
    containment.start()                  # signer loaded, pause() of every policy contract estimated and signed
    containment.on_block()               # the watcher calls this per block: nonce and fees refreshed
    containment.fire_many(alerts)        # the watcher calls it per range, before the store sink: matching P0 alerts
                                         # -> one store commit + one eth_sendRawTransaction

Why here and not in incident-response: a deployed run starts seconds after its alert, and a drain takes 3-5
blocks. The transaction is prepared before any attack (gas estimated, nonce and EIP-1559 fees refreshed each
block by a background thread, signed), so detection costs one store commit and one `eth_sendRawTransaction`.

Exactly once, shared with the flow: the key is `containment_key(environment, contract, alert fingerprint)`,
the same key incident-response hands to emergency-pause (flows/emergency_pause.py), whose `guardian_pause`
finds the action stored, follows it to its receipt and records it in the incident instead of sending again.
The row is stored before the broadcast (vvops.chain.actions), so the watcher that sees the resulting `Paused`
event knows it was ours (`expected_action`) and raises no second incident.

Policy (config/watcher.yaml `containment.policies`): rule, the alert's contract and the environment must all
match a policy, and the alert must be P0; nothing else is ever sent. One pause per contract at a time: while a
pause of a contract is in flight, further alerts on it send nothing (their incidents find it paused).
Plain Python, no Prefect.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from eth_utils import keccak, to_checksum_address
from sqlalchemy import select
from sqlalchemy.engine import Engine

from vvops.chain.actions import ActionError, ActionReverted, ChainActions
from vvops.chain.rpc import RpcClient
from vvops.store import session_scope
from vvops.store.models import ChainAction
from vvops.watcher.conditions import WatcherAlert
from vvops.watcher.config import ContainmentSettings

log = logging.getLogger(__name__)

PAUSE_CALLDATA = "0x" + keccak(text="pause()")[:4].hex()
KEY_PREFIX = "containment"
FAST_PATH_DESCRIPTION = "containment fast path"   # how the stored action says the watcher sent it


def containment_key(environment: str, contract: str, fingerprint: str) -> str:
    """The idempotency key of the guardian pause that contains the incident raised by alert `fingerprint`."""
    return f"{KEY_PREFIX}:{environment}:{contract}:{fingerprint}"


def containment_key_for(environment: str, contract: str | None, alert: dict[str, Any] | None) -> str | None:
    """The containment key of an incident opened from a watcher alert (its payload), None without a fingerprint."""
    fingerprint = (alert or {}).get("fingerprint")
    return containment_key(environment, contract, str(fingerprint)) if fingerprint and contract else None


@dataclass
class _Prepared:
    contract: str
    tx: dict[str, Any]
    signed: Any


@dataclass
class ContainmentRecord:
    key: str
    contract: str
    policy: str
    rule: str
    fingerprint: str
    alert_block: int
    tx_hash: str | None
    nonce: int | None
    status: str
    sent_at: float               # time.time() right after eth_sendRawTransaction returned
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ContainmentStats:
    refreshes: int = 0
    refresh_errors: int = 0
    sent: int = 0
    skipped_in_flight: int = 0
    skipped_not_pausable: int = 0
    errors: int = 0
    records: list[ContainmentRecord] = field(default_factory=list)


class Containment:
    def __init__(self, *, engine: Engine, rpc: RpcClient, chain_id: int, environment: str,
                 settings: ContainmentSettings, targets: dict[str, str], signer: Any, actions: ChainActions | None = None):
        self.engine = engine
        self.rpc = rpc
        self.chain_id = chain_id
        self.environment = environment
        self.settings = settings
        self.targets = {name: to_checksum_address(address) for name, address in targets.items()}
        self.signer = signer
        self.actions = actions or ChainActions(rpc, engine, signer, chain_id=chain_id)
        self.stats = ContainmentStats()
        self._prepared: dict[str, _Prepared | None] = {name: None for name in self.targets}
        self._in_flight: dict[str, str] = {}      # contract -> key of the pause sent and not yet seen mined
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_config(cls, *, engine: Engine, rpc: RpcClient, chain_id: int, environment: str,
                    settings: ContainmentSettings, contracts: dict[str, str], signer: Any = None) -> Containment | None:
        """The fast path for `environment`, or None when no policy covers it (nothing is ever sent then)."""
        if not settings.enabled_for(environment):
            return None
        names = sorted({c for p in settings.policies if environment in p.environments for c in p.contracts})
        targets = {name: contracts[name] for name in names if name in contracts}
        missing = [name for name in names if name not in contracts]
        if missing:
            log.warning("containment: %s not watched on %s, cannot be paused automatically", ", ".join(missing),
                        environment)
        if not targets:
            return None
        if signer is None:
            from vvops.chain.signing import signer_for_role

            signer = signer_for_role(environment, settings.signer_role, chain_id=chain_id)
        if getattr(signer, "kind", "") == "multisig-proposal":
            log.warning("containment: the %s signer of %s is a multisig proposal signer; the fast path needs a key "
                        "that signs alone, so it is off", settings.signer_role, environment)
            return None
        return cls(engine=engine, rpc=rpc, chain_id=chain_id, environment=environment, settings=settings,
                   targets=targets, signer=signer)

    # ------------------------------------------------------------------ preparation
    def start(self) -> Containment:
        """Prepare every pause now (before any attack), then keep them fresh in a background thread."""
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name="vv-containment", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def on_block(self, *_: Any) -> None:
        """A new block was processed: refresh nonce and fees off the watcher's thread."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(5.0)   # also refresh now and then when no block arrives
            self._wake.clear()
            if not self._stop.is_set():
                self.refresh()

    def refresh(self) -> None:
        for name, address in self.targets.items():
            try:
                prepared = self._prepare(name, address)
            except ActionReverted:
                prepared = None   # pause() would revert: already paused (or the guardian lost its role)
                self._in_flight.pop(name, None)
            except Exception as error:  # noqa: BLE001 - keep the last prepared tx; the next block retries
                self.stats.refresh_errors += 1
                log.warning("containment: could not refresh the pause of %s: %s", name, error)
                continue
            with self._lock:
                self._prepared[name] = prepared
        self.stats.refreshes += 1

    def _prepare(self, name: str, address: str) -> _Prepared:
        """Estimate (reverts when paused), fees and pending nonce; re-signed only when the transaction changed."""
        tx = self.actions.prepare(to=address, data=PAUSE_CALLDATA)
        current = self._prepared.get(name)
        if current is not None and current.tx == tx:
            return current
        return _Prepared(contract=name, tx=tx, signed=self.signer.sign_transaction(tx))

    def prepared(self, contract: str) -> dict[str, Any] | None:
        """The transaction ready for `contract` (without signature), for status pages and tests."""
        with self._lock:
            p = self._prepared.get(contract)
        return dict(p.tx) if p else None

    # ------------------------------------------------------------------ detection
    def fire(self, alert: WatcherAlert) -> bool:
        return self.fire_many([alert])[0]

    def fire_many(self, alerts: Sequence[WatcherAlert]) -> list[bool]:
        """Send the pause for each contract that a matching P0 alert names (once per contract); True per alert
        whose pause was sent by this call."""
        flags = []
        for alert in alerts:
            policy = self.settings.policy_for(rule=alert.rule, severity=alert.severity, contract=alert.contract,
                                              environment=self.environment)
            flags.append(policy is not None and alert.contract in self.targets and self._contain(alert, policy.name))
        return flags

    def _contain(self, alert: WatcherAlert, policy: str) -> bool:
        contract = alert.contract
        key = containment_key(self.environment, contract, alert.fingerprint)
        with self._lock:
            if contract in self._in_flight:
                self.stats.skipped_in_flight += 1
                log.info("containment: %s pause already sent (%s); %s sends nothing", contract,
                         self._in_flight[contract], alert.rule)
                return False
            prepared = self._prepared.get(contract)
            if prepared is None:
                self.stats.skipped_not_pausable += 1
                log.warning("containment: %s cannot be paused now (already paused or pause() reverts); %s sends "
                            "nothing", contract, alert.rule)
                return False
            self._in_flight[contract] = key
        description = (f"{FAST_PATH_DESCRIPTION}: guardian pause of {contract} (policy {policy}; alert {alert.rule} "
                       f"{alert.fingerprint} at block {alert.block_number})")
        record = ContainmentRecord(key=key, contract=contract, policy=policy, rule=alert.rule,
                                   fingerprint=alert.fingerprint, alert_block=alert.block_number, tx_hash=None,
                                   nonce=None, status="error", sent_at=0.0)
        try:
            result = self.actions.send_prepared(idempotency_key=key, tx=prepared.tx, signed=prepared.signed,
                                                description=description)
            record.tx_hash, record.nonce, record.status = result.tx_hash, result.nonce, result.status
            self.stats.sent += int(result.sent_now)
        except ActionError as error:
            self.stats.errors += 1
            record.error = str(error)[:500]
            with self._lock:
                self._in_flight.pop(contract, None)
            log.error("containment: pause of %s not sent: %s", contract, error)
        record.sent_at = time.time()
        self.stats.records.append(record)
        self._wake.set()   # the nonce moved: prepare the next one now
        if record.tx_hash:
            log.warning("containment: %s pause sent %s (policy %s, alert %s)", contract, record.tx_hash, policy,
                        alert.rule)
        return bool(record.tx_hash)


def our_actions(engine: Engine, tx_hashes: set[str]) -> dict[str, ChainAction]:
    """Stored chain actions (ours) by signed transaction hash (lower case)."""
    if not tx_hashes:
        return {}
    wanted = sorted({h.lower() for h in tx_hashes} | set(tx_hashes))
    with session_scope(engine) as s:
        rows = s.scalars(select(ChainAction).where(ChainAction.signed_tx_hash.in_(wanted)))
        return {r.signed_tx_hash.lower(): r for r in rows}


def mark_mined(engine: Engine, blocks_by_hash: dict[str, int]) -> None:
    """Our pending/broadcast actions whose transaction the watcher saw mined (it emitted the expected event)."""
    if not blocks_by_hash:
        return
    with session_scope(engine, immediate=True) as s:
        for row in s.scalars(select(ChainAction).where(ChainAction.status.in_(("pending", "broadcast")))):
            block = blocks_by_hash.get((row.signed_tx_hash or "").lower())
            if block is not None:
                row.status, row.block_number = "mined", block
