"""Synthetic user activity on the devnet: a healthy protocol's traffic, quiet for the watcher.

What a mainnet vault with a stable TVL looks like, so that the watcher raises nothing until a scenario says so:
- **Many users with their own accounts.** `users` retail accounts derived from the seed (impersonated on anvil,
  funded from the vvUSD faucet), never the deployment's role accounts or the seeded depositors ("whales"), so
  scenarios (drain, reorg, ...) send from keys and nonces the traffic never touches.
- **Balanced flows around a stable TVL.** Each action is a deposit or a withdrawal; the deposit probability
  leans against the TVL's distance from its target (mean reversion), so TVL wanders a few percent around the
  level it had when the traffic started. If something else moves TVL far away (a scenario, a procedure), the
  target follows instead of refilling the vault.
- **Realistic sizes.** Log-normal amounts (median ~0.25 % of TVL, a long tail capped at 3 %), and withdrawals
  within any 30 s / last 15 withdrawals stay under `max_window_share` of TVL (default 8 %, far below the
  watcher's 25 %-in-10-blocks and 40 %-drop rules).
- **Occasional reverts and gas variation.** `revert_rate` of the actions are deliberately invalid (more shares
  than held, above the withdrawal limit, more assets than the wallet holds: mined with status 0, decoded
  custom errors); every transaction carries its own EIP-1559 tip.

`step()` sends one action and waits for its receipt (deterministic for a seed on an automine node, used by
tests); `run()` sends 0-3 actions per interval without waiting (the block clock mines them) and collects the
receipts on the next ticks. While the vault is paused the generator skips.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass

from eth_utils import keccak, to_checksum_address

from vvops.chain.abi import contract_abi
from vvops.devnet.chain import Chain, RpcError
from vvops.devnet.deploy import DevnetInfo

log = logging.getLogger(__name__)

UNIT = 10**18
CENT = 10**16  # amounts are whole hundredths of a vvUSD
FAUCET = 50_000 * UNIT        # each retail user's first mint (and a top-up when the wallet runs low)
TX_GAS = 160_000              # explicit, so invalid actions are mined (and revert) instead of failing estimation
ETH_BALANCE = 100 * UNIT
WINDOW_S = 30.0
WINDOW_TXS = 15
PENDING_TIMEOUT_S = 30.0      # a sent tx with no receipt by then is forgotten (reverted chain, restarted node)


@dataclass(frozen=True)
class ActivityRecord:
    kind: str  # "deposit" | "withdraw" | "mint"
    user: str
    assets: int
    tx_hash: str
    block_number: int
    ok: bool = True
    gas_used: int = 0


def retail_users(count: int, seed: int | None) -> list[str]:
    """`count` deterministic addresses for the synthetic users (no key needed: anvil impersonates them)."""
    tag = f"vvops-devnet-user:{seed if seed is not None else 'default'}:"
    return [to_checksum_address(keccak((tag + str(i)).encode())[-20:]) for i in range(count)]


@dataclass
class _Planned:
    kind: str
    user: str
    assets: int
    data: bytes
    to: str
    valid: bool


class ActivityGenerator:
    def __init__(self, rpc_url: str, info: DevnetInfo, *, seed: int | None = None, interval_s: float = 2.0,
                 users: int = 48, revert_rate: float = 0.02, max_window_share: float = 0.08,
                 retail_share: float = 0.2, chain: Chain | None = None):
        self.info = info
        self.interval_s = interval_s
        self.revert_rate = revert_rate
        self.max_window_share = max_window_share
        self.retail_share = retail_share
        self.rng = random.Random(seed)
        self.chain = chain or Chain(rpc_url)
        self._own_chain = chain is None
        self.vault_abi = contract_abi("VaultV1")
        self.asset_abi = contract_abi("MockAsset")
        self.vault = info.contracts.vault
        self.asset = info.contracts.asset
        self.users = retail_users(users, seed)
        self.records: list[ActivityRecord] = []
        self.skipped = 0
        self.failures = 0       # actions that could not be sent, or valid ones that reverted
        self.reverts = 0        # deliberately invalid actions (mined, status 0)
        self.target_tvl: int | None = None
        self._ready = False
        self._pending: dict[str, tuple[_Planned, float]] = {}
        self._withdrawals: deque[tuple[float, int]] = deque(maxlen=WINDOW_TXS)

    # ------------------------------------------------------------------ chain helpers
    def _call(self, to: str, abi, fn: str, *args) -> tuple[str, list]:
        return "eth_call", [{"to": to, "data": "0x" + abi.encode_call(fn, *args).hex()}, "latest"]

    def _tip(self) -> int:
        return int(self.rng.lognormvariate(math.log(0.3e9), 0.9))  # ~0.3 gwei median, spread like mainnet tips

    def _tx(self, sender: str, to: str, data: bytes, nonce: int, base_fee: int, tip: int | None = None
            ) -> tuple[str, list]:
        tip = self._tip() if tip is None else tip
        return "eth_sendTransaction", [{
            "from": sender, "to": to, "data": "0x" + data.hex(), "gas": hex(TX_GAS), "nonce": hex(nonce),
            "maxPriorityFeePerGas": hex(tip), "maxFeePerGas": hex(2 * base_fee + tip)}]

    def _vault_state(self) -> dict[str, int | bool]:
        v = self.vault_abi
        names = ("paused", "totalAssets", "totalShares", "depositCap", "withdrawalLimit")
        raw = self.chain.batch([self._call(self.vault, v, n) for n in names]
                               + [("eth_getBlockByNumber", ["latest", False])])
        state = {n: v.decode_output(n, r) for n, r in zip(names, raw)}
        state["base_fee"] = int(raw[-1].get("baseFeePerGas") or "0x0", 16)
        return state

    def _user_state(self, users: list[str]) -> dict[str, dict[str, int]]:
        calls: list[tuple[str, list]] = []
        for u in users:
            calls += [self._call(self.vault, self.vault_abi, "sharesOf", u),
                      self._call(self.asset, self.asset_abi, "balanceOf", u),
                      ("eth_getTransactionCount", [u, "pending"])]
        raw = self.chain.batch(calls)
        out = {}
        for i, u in enumerate(users):
            shares, balance, nonce = raw[3 * i: 3 * i + 3]
            out[u] = {"shares": self.vault_abi.decode_output("sharesOf", shares),
                      "balance": self.asset_abi.decode_output("balanceOf", balance), "nonce": int(nonce, 16)}
        return out

    # ------------------------------------------------------------------ set-up
    def _setup(self, state: dict) -> None:
        """Fund, approve and seed the retail users (one batch; mined together under a block clock)."""
        self.chain.batch([("anvil_impersonateAccount", [u]) for u in self.users]
                         + [("anvil_setBalance", [u, hex(ETH_BALANCE)]) for u in self.users])
        users = self._user_state(self.users)
        retail_total = int(state["totalAssets"] * self.retail_share / (1 - self.retail_share))
        weights = [self.rng.lognormvariate(0, 1.0) for _ in self.users]
        # One tip per sender: anvil's miner drops (not delays) a sender's later nonce that pays a higher tip
        # than its earlier one in the same block.
        phases: list[list[tuple[str, list]]] = [[], [], []]
        for u, w in zip(self.users, weights):
            n, tip = users[u]["nonce"], self._tip()
            seed_deposit = min(FAUCET - UNIT, int(retail_total * w / sum(weights)) // CENT * CENT)
            txs = [(self.asset, self.asset_abi.encode_call("mint", u, FAUCET)),
                   (self.asset, self.asset_abi.encode_call("approve", self.vault, 2**256 - 1))]
            if seed_deposit > 0 and users[u]["shares"] == 0:
                txs.append((self.vault, self.vault_abi.encode_call("deposit", seed_deposit)))
            for k, (to, data) in enumerate(txs):
                phases[k].append(self._tx(u, to, data, n + k, state["base_fee"], tip))
        hashes = [h for phase in phases for h in self.chain.batch(phase)]
        receipts = self.chain.wait_for_receipts(hashes, timeout=60, poll=0.1)
        failed = sum(int(r["status"], 16) != 1 for r in receipts)
        if failed:
            log.warning("activity set-up: %d of %d transactions failed", failed, len(receipts))
        self.target_tvl = self._vault_state()["totalAssets"]
        self._ready = True
        log.info("activity: %d synthetic users, target TVL %.0f vvUSD", len(self.users), self.target_tvl / UNIT)

    # ------------------------------------------------------------------ planning
    def _amount(self, tvl: int) -> int:
        median = max(tvl, UNIT) * 0.0025
        return int(min(self.rng.lognormvariate(math.log(median), 1.0), 0.03 * tvl)) // CENT * CENT

    def _window_withdrawn(self) -> int:
        now = time.monotonic()
        by_time = sum(a for t, a in self._withdrawals if now - t <= WINDOW_S)
        return max(by_time, sum(a for _, a in self._withdrawals))

    def _plan_one(self, user: str, us: dict[str, int], s: dict) -> _Planned | None:
        tvl = int(s["totalAssets"])
        if self.target_tvl is None or abs(tvl - self.target_tvl) > 0.3 * max(self.target_tvl, 1):
            self.target_tvl = tvl  # a regime change (scenario, procedure): follow it, do not refill the vault
        v = self.vault_abi
        if self.rng.random() < self.revert_rate:
            kind = self.rng.choice(("shares", "limit", "wallet"))
            if kind == "shares":
                amount = us["shares"] + self._amount(tvl) + UNIT
                return _Planned("withdraw", user, amount, v.encode_call("withdraw", amount), self.vault, False)
            if kind == "limit":
                amount = int(s["withdrawalLimit"]) + UNIT
                return _Planned("withdraw", user, amount, v.encode_call("withdraw", amount), self.vault, False)
            amount = us["balance"] + UNIT
            return _Planned("deposit", user, amount, v.encode_call("deposit", amount), self.vault, False)
        lean = (self.target_tvl - tvl) / max(self.target_tvl, 1)
        p_deposit = min(0.85, max(0.15, 0.5 + 4 * lean))
        amount = self._amount(tvl)
        room = int(s["depositCap"]) - int(s["totalShares"])
        can_withdraw = min(us["shares"], int(s["withdrawalLimit"]),
                           max(0, int(self.max_window_share * tvl) - self._window_withdrawn())) // CENT * CENT
        if self.rng.random() < p_deposit or can_withdraw < CENT:
            if us["balance"] < amount:
                return _Planned("mint", user, FAUCET, self.asset_abi.encode_call("mint", user, FAUCET), self.asset, True)
            amount = min(amount, room // CENT * CENT)
            if amount < CENT:
                return None
            return _Planned("deposit", user, amount, v.encode_call("deposit", amount), self.vault, True)
        amount = max(CENT, min(amount, can_withdraw))
        return _Planned("withdraw", user, amount, v.encode_call("withdraw", amount), self.vault, True)

    def _send(self, count: int) -> list[str]:
        """Plan and send up to `count` actions from distinct idle users; returns the tx hashes."""
        state = self._vault_state()
        if state["paused"]:
            self.skipped += 1
            return []
        if not self._ready:
            self._setup(state)
            state = self._vault_state()
        idle = [u for u in self.users if u not in {p.user for p, _ in self._pending.values()}]
        chosen = self.rng.sample(idle, min(count, len(idle)))
        if not chosen:
            return []
        users = self._user_state(chosen)
        plans = [p for p in (self._plan_one(u, users[u], state) for u in chosen) if p is not None]
        if not plans:
            self.skipped += 1
            return []
        calls = [self._tx(p.user, p.to, p.data, users[p.user]["nonce"], int(state["base_fee"])) for p in plans]
        results = self.chain.batch(calls, raise_errors=False)
        hashes, now = [], time.monotonic()
        for plan, result in zip(plans, results):
            if isinstance(result, RpcError):
                self.failures += 1
                log.warning("activity: %s of %s by %s not sent: %s", plan.kind, plan.assets, plan.user, result)
                continue
            self._pending[result] = (plan, now)
            if plan.kind == "withdraw" and plan.valid:
                self._withdrawals.append((now, plan.assets))
            hashes.append(result)
        return hashes

    def _collect(self) -> list[ActivityRecord]:
        """Receipts of the sent actions that were mined since the last call."""
        if not self._pending:
            return []
        hashes = list(self._pending)
        receipts = self.chain.batch([("eth_getTransactionReceipt", [h]) for h in hashes], raise_errors=False)
        done, now = [], time.monotonic()
        for h, r in zip(hashes, receipts):
            plan, sent = self._pending[h]
            if isinstance(r, dict):
                del self._pending[h]
                ok = int(r["status"], 16) == 1
                if not ok:
                    if plan.valid:
                        self.failures += 1
                    else:
                        self.reverts += 1
                record = ActivityRecord(kind=plan.kind, user=plan.user, assets=plan.assets, tx_hash=h,
                                        block_number=int(r["blockNumber"], 16), ok=ok,
                                        gas_used=int(r["gasUsed"], 16))
                self.records.append(record)
                done.append(record)
            elif now - sent > PENDING_TIMEOUT_S:
                del self._pending[h]  # the chain moved on without it (revert, restart): forget it
                self.failures += 1
        return done

    # ------------------------------------------------------------------ driving
    def step(self) -> ActivityRecord | None:
        """One action, waiting for its receipt (status 0 for a deliberately invalid one: `record.ok`).
        None when skipped (paused, nothing valid) or when it could not be sent."""
        hashes = self._send(1)
        if not hashes:
            return None
        self.chain.wait_for_receipt(hashes[0], timeout=30)
        for record in self._collect():
            if record.tx_hash == hashes[0]:
                return record
        return None

    def tick(self) -> int:
        """Collect mined actions, then send 0-3 new ones (no waiting). Returns how many were sent."""
        self._collect()
        return len(self._send(self.rng.choice((0, 1, 1, 2, 2, 3))))

    def run(self, stop_event: threading.Event, *, max_steps: int | None = None) -> int:
        """Tick every `interval_s` until `stop_event` is set (or max_steps); returns successful actions."""
        steps = 0
        while not stop_event.is_set() and (max_steps is None or steps < max_steps):
            steps += 1
            try:
                self.tick()
            except Exception as error:  # noqa: BLE001 - keep generating; the node may be restarting
                self.failures += 1
                log.warning("activity step failed: %s", error)
            if stop_event.wait(self.interval_s):
                break
        return sum(r.ok for r in self.records)

    def close(self) -> None:
        if self._own_chain:
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
