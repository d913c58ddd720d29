"""Synthetic user activity on the devnet: random deposits and withdrawals by the user accounts.

Deterministic for a given seed and starting chain state. Every action is chosen within the vault's current
limits (wallet balance, shares, deposit cap, withdrawal limit) so it never reverts on purpose; while the vault
is paused the generator skips (returns None).
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass

from vvops.devnet.chain import Chain, RpcError, TxReverted
from vvops.devnet.deploy import DevnetInfo

log = logging.getLogger(__name__)

CENT = 10**16  # amounts are whole hundredths of a vvUSD
MAX_DEPOSIT = 20_000 * 10**18  # per action


@dataclass(frozen=True)
class ActivityRecord:
    kind: str  # "deposit" | "withdraw"
    user: str
    assets: int
    tx_hash: str
    block_number: int


class ActivityGenerator:
    def __init__(self, rpc_url: str, info: DevnetInfo, *, seed: int | None = None, interval_s: float = 2.0,
                 deposit_probability: float = 0.55, chain: Chain | None = None):
        self.info = info
        self.interval_s = interval_s
        self.deposit_probability = deposit_probability
        self.rng = random.Random(seed)
        self.chain = chain or Chain(rpc_url)
        self.vault = self.chain.contract("VaultV1", info.contracts.vault)
        self.asset = self.chain.contract("MockAsset", info.contracts.asset)
        self.users = [u.address for u in info.accounts.users]
        self.records: list[ActivityRecord] = []
        self.skipped = 0
        self.failures = 0

    def _read_state(self, user: str) -> dict[str, int | bool]:
        v, a = self.vault, self.asset
        calls = [
            (v.address, v.encode("paused"), v, "paused"),
            (v.address, v.encode("totalShares"), v, "totalShares"),
            (v.address, v.encode("depositCap"), v, "depositCap"),
            (v.address, v.encode("withdrawalLimit"), v, "withdrawalLimit"),
            (v.address, v.encode("sharesOf", user), v, "sharesOf"),
            (a.address, a.encode("balanceOf", user), a, "balanceOf"),
        ]
        raw = self.chain.batch([("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])
                                for to, data, _, _ in calls])
        return {fn: c.abi.decode_output(fn, r) for (_, _, c, fn), r in zip(calls, raw)}

    def plan(self) -> tuple[str, str, int] | None:
        """Choose (kind, user, assets) from the current state, or None if nothing valid can be done."""
        user = self.rng.choice(self.users)
        s = self._read_state(user)
        if s["paused"]:
            return None
        can_deposit = min(s["balanceOf"], max(0, s["depositCap"] - s["totalShares"]), MAX_DEPOSIT) // CENT
        can_withdraw = min(s["sharesOf"], s["withdrawalLimit"]) // CENT
        roll = self.rng.random()
        if can_deposit and (roll < self.deposit_probability or not can_withdraw):
            return "deposit", user, self.rng.randint(1, can_deposit) * CENT
        if can_withdraw:
            return "withdraw", user, self.rng.randint(1, can_withdraw) * CENT
        return None

    def step(self) -> ActivityRecord | None:
        """One random deposit or withdraw (waits for its receipt). None when skipped (paused, nothing valid)
        or when the transaction unexpectedly failed (logged; e.g. a procedure changed limits meanwhile)."""
        planned = self.plan()
        if planned is None:
            self.skipped += 1
            return None
        kind, user, assets = planned
        try:
            receipt = self.vault.transact(user, kind, assets)
        except (TxReverted, RpcError, TimeoutError) as error:
            self.failures += 1
            log.warning("activity: %s of %s by %s failed: %s", kind, assets, user, error)
            return None
        record = ActivityRecord(kind=kind, user=user, assets=assets, tx_hash=receipt["transactionHash"],
                                block_number=int(receipt["blockNumber"], 16))
        self.records.append(record)
        return record

    def run(self, stop_event: threading.Event, *, max_steps: int | None = None) -> int:
        """Step every `interval_s` until `stop_event` is set (or max_steps); returns successful steps."""
        done = steps = 0
        while not stop_event.is_set() and (max_steps is None or steps < max_steps):
            steps += 1
            try:
                if self.step() is not None:
                    done += 1
            except Exception as error:  # noqa: BLE001 - keep generating; the node may be restarting
                self.failures += 1
                log.warning("activity step failed: %s", error)
            if stop_event.wait(self.interval_s):
                break
        return done

    def close(self) -> None:
        self.chain.close()


class ActivityThread(threading.Thread):
    """Runs an ActivityGenerator in a daemon thread until `stop()`."""

    def __init__(self, rpc_url: str, info: DevnetInfo, *, seed: int | None = None, interval_s: float = 2.0):
        super().__init__(name="vvops-devnet-activity", daemon=True)
        self.generator = ActivityGenerator(rpc_url, info, seed=seed, interval_s=interval_s)
        self.stop_event = threading.Event()
        self.successes = 0

    def run(self) -> None:
        try:
            self.successes = self.generator.run(self.stop_event)
        finally:
            self.generator.close()

    @property
    def records(self) -> list[ActivityRecord]:
        return self.generator.records

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
