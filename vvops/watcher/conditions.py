"""Pure per-block rule evaluation for the chain watcher (no I/O: blocks and approvals come in, alerts go out).

`ConditionEvaluator(rules, ...)` keeps the small sliding-window state the window conditions need
(withdrawals, TVL, failed transactions over the last N blocks). Feed it blocks in order with `evaluate(block)`;
after a restart or a reorg, `prime(blocks)` replays the blocks before the resume point without firing so the
windows (and whether a window condition was already active) are exactly as if it had never stopped.

Dedup keys are independent of the block hash (rule + tx hash + log index for events; rule + contract + the tx
that made a window condition true), so a transaction re-included after a reorg yields the same alert.

Approved change record (`approval_matches`): an approval request with status `approved` whose procedure is the
rule's `params.procedure` (`parameter_change` or `upgrade_rollout`), decided no more than `approval_max_age_h`
before the block's timestamp (and not after it), and whose details/subject name the change:
  - parameter_change: the parameter (`details.parameter`, or the subject ending in `.<name>` / equal to `<name>`)
    and, when `details.contract` is given, the contract (name from contracts.yaml or address); when
    `details.new_value` is given it must equal the event's new value.
  - upgrade_rollout: the new implementation address (`details.new_implementation` / `details.implementation`,
    or the address appearing in the subject), case-insensitive.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from vvops.watcher.config import WatchRule

__all__ = ["BlockData", "ChainLog", "ChainTx", "WatcherAlert", "ApprovalRecord", "ConditionEvaluator",
           "approval_matches", "dedup_fingerprint"]


@dataclass(frozen=True)
class ChainLog:
    """A decoded log of a watched contract."""

    contract: str            # contracts.yaml name, e.g. "vault"
    address: str
    event: str
    args: dict[str, Any]
    tx_hash: str
    log_index: int


@dataclass(frozen=True)
class ChainTx:
    """A transaction to a watched contract, with its receipt status."""

    hash: str
    sender: str
    to: str
    contract: str
    ok: bool
    function: str = ""     # ABI function name from the calldata selector ("unknown" when the ABI lacks it)
    gas_used: int = 0      # from the receipt


@dataclass(frozen=True)
class BlockData:
    number: int
    hash: str
    parent_hash: str
    timestamp: int
    logs: tuple[ChainLog, ...] = ()
    txs: tuple[ChainTx, ...] = ()
    tvl: dict[str, int] = field(default_factory=dict)   # contract name -> TVL (asset units) at the end of the block


@dataclass(frozen=True)
class ApprovalRecord:
    id: int
    procedure: str
    subject: str
    status: str
    decided_at: datetime | None
    details: dict[str, Any]


@dataclass(frozen=True)
class WatcherAlert:
    rule: str
    severity: str                 # P0..P3
    chain_id: int
    environment: str
    block_number: int
    block_hash: str
    block_timestamp: int
    tx_hash: str | None
    contract: str | None
    dedup_key: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """The alerting framework's fingerprint of the labels (which carry `dedup`), so both agree."""
        return dedup_fingerprint(self.labels)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "chain_id": self.chain_id,
                "environment": self.environment, "block_number": self.block_number, "block_hash": self.block_hash,
                "block_timestamp": self.block_timestamp, "tx_hash": self.tx_hash, "contract": self.contract,
                "dedup_key": self.dedup_key, "fingerprint": self.fingerprint, "labels": dict(self.labels),
                "annotations": dict(self.annotations)}


def dedup_fingerprint(labels: dict[str, Any]) -> str:
    """sha256 of the sorted labels without severity, 32 hex digits (same as vvops.alerting's fingerprint_labels)."""
    body = json.dumps({str(k): str(v) for k, v in sorted(labels.items()) if k != "severity"},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:32]


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def _render(template: str, values: dict[str, Any]) -> str:
    try:
        return template.format_map(_Blank({k: "" if v is None else v for k, v in values.items()}))
    except (ValueError, IndexError, AttributeError, KeyError):
        return template


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        text = raw.rstrip(b"\0")
        if text and all(32 <= c < 127 for c in text):
            return text.decode("ascii")
        return "0x" + raw.hex()
    return value


def approval_matches(record: ApprovalRecord, *, procedure: str, log: ChainLog, block_time: datetime,
                     max_age: timedelta, contract_addresses: dict[str, str] | None = None) -> bool:
    """Whether `record` is an approved change record covering the change `log` reports (see module doc)."""
    if record.status != "approved" or record.procedure != procedure:
        return False
    if record.decided_at is not None:
        decided = record.decided_at if record.decided_at.tzinfo else record.decided_at.replace(tzinfo=timezone.utc)
        if decided > block_time + timedelta(seconds=60) or decided < block_time - max_age:
            return False
    details = record.details or {}
    subject = (record.subject or "").strip()
    if procedure == "parameter_change":
        name = str(_plain(log.args.get("name")))
        param = details.get("parameter")
        if param is not None:
            if str(param) != name:
                return False
        elif not (subject == name or subject.endswith("." + name)):
            return False
        contract = details.get("contract")
        if contract is not None:
            allowed = {log.contract.lower(), log.address.lower()}
            if contract_addresses and log.contract in contract_addresses:
                allowed.add(contract_addresses[log.contract].lower())
            if str(contract).lower() not in allowed:
                return False
        if details.get("new_value") is not None and str(details["new_value"]) != str(log.args.get("newValue")):
            return False
        return True
    if procedure == "upgrade_rollout":
        impl = str(log.args.get("implementation", "")).lower()
        named = details.get("new_implementation") or details.get("implementation")
        if named is not None:
            return str(named).lower() == impl
        return bool(impl) and impl in subject.lower()
    return False


@dataclass
class _WindowState:
    active: bool = False


class ConditionEvaluator:
    """Evaluates `rules` block by block for one chain. Not thread-safe; one per watcher."""

    def __init__(self, rules: Iterable[WatchRule], *, chain_id: int, environment: str,
                 denylist: Iterable[str] = (), tvl_contract: str | None = "vault",
                 approval_max_age: timedelta = timedelta(days=7), contract_addresses: dict[str, str] | None = None):
        self.rules = [r for r in rules if r.enabled]
        self.chain_id = chain_id
        self.environment = environment
        self.denylist = {a.lower() for a in denylist}
        self.tvl_contract = tvl_contract
        self.approval_max_age = approval_max_age
        self.contract_addresses = contract_addresses or {}
        longest = max([int(r.params.get("window_blocks", 1)) for r in self.rules] + [1])
        self.history: deque[BlockData] = deque(maxlen=longest + 1)
        self._state: dict[str, _WindowState] = {r.name: _WindowState() for r in self.rules}
        self.last_number: int | None = None

    @property
    def history_blocks(self) -> int:
        """How many blocks before the resume point `prime` needs."""
        return self.history.maxlen or 1

    def reset(self) -> None:
        self.history.clear()
        self._state = {r.name: _WindowState() for r in self.rules}
        self.last_number = None

    def prime(self, blocks: Iterable[BlockData], approvals: Iterable[ApprovalRecord] = ()) -> None:
        """Replay already-processed blocks to rebuild window state; nothing fires."""
        approvals = list(approvals)
        for block in blocks:
            self.evaluate(block, approvals)

    def evaluate(self, block: BlockData, approvals: Iterable[ApprovalRecord] = ()) -> list[WatcherAlert]:
        """The alerts `block` raises. Blocks must come in order (a gap resets the windows)."""
        if self.last_number is not None and block.number != self.last_number + 1:
            self.reset()
        self.last_number = block.number
        self.history.append(block)
        approvals = list(approvals)
        out: list[WatcherAlert] = []
        for rule in self.rules:
            if rule.kind == "event":
                out += self._event_rule(rule, block, approvals)
            else:
                out += getattr(self, f"_cond_{rule.target}")(rule, block)
        return out

    # ------------------------------------------------------------------ helpers

    def _alert(self, rule: WatchRule, block: BlockData, *, tx: str | None, contract: str | None, key: str,
               values: dict[str, Any]) -> WatcherAlert:
        labels = {**rule.labels, "alertname": rule.name, "environment": self.environment, "chain": self.environment,
                  "chain_id": str(self.chain_id), "source": "watcher", **({"contract": contract} if contract else {}),
                  "dedup": f"{rule.name}:{key}"}
        tv = {"chain": self.environment, "chain_id": self.chain_id, "contract": contract or "", "block": block.number,
              "tx": tx or "", **{k: _plain(v) for k, v in values.items()}}
        annotations = {k: _render(v, tv) for k, v in rule.annotations.items()}
        annotations.setdefault("summary", f"{rule.name} on {self.environment} at block {block.number}")
        return WatcherAlert(rule=rule.name, severity=rule.severity, chain_id=self.chain_id,
                            environment=self.environment, block_number=block.number, block_hash=block.hash,
                            block_timestamp=block.timestamp, tx_hash=tx, contract=contract,
                            dedup_key=f"{rule.name}:{key}", labels=labels, annotations=annotations)

    def _contracts(self, rule: WatchRule) -> set[str] | None:
        c = rule.params.get("contracts")
        return set(c) if c else None

    def _event_rule(self, rule: WatchRule, block: BlockData, approvals: list[ApprovalRecord]) -> list[WatcherAlert]:
        out = []
        only = self._contracts(rule)
        approval = rule.params.get("approval", "any")
        procedure = rule.params.get("procedure")
        block_time = datetime.fromtimestamp(block.timestamp, timezone.utc)
        for log in block.logs:
            if log.event != rule.target or (only and log.contract not in only):
                continue
            if approval != "any":
                covered = any(approval_matches(a, procedure=procedure, log=log, block_time=block_time,
                                               max_age=self.approval_max_age,
                                               contract_addresses=self.contract_addresses) for a in approvals)
                if covered != (approval == "approved"):
                    continue
            out.append(self._alert(rule, block, tx=log.tx_hash, contract=log.contract,
                                   key=f"{log.tx_hash}:{log.log_index}",
                                   values={"event": log.event, "address": log.address, **log.args}))
        return out

    def _window(self, n: int) -> list[BlockData]:
        """The last `n` blocks (contiguous, ending with the current one)."""
        return list(self.history)[-n:]

    def _edge(self, rule: WatchRule, now_true: bool) -> bool:
        st = self._state[rule.name]
        fire = now_true and not st.active
        st.active = now_true
        return fire

    def _tvl_at(self, block: BlockData, contract: str) -> int | None:
        return block.tvl.get(contract)

    def _cond_withdrawal_window(self, rule: WatchRule, block: BlockData) -> list[WatcherAlert]:
        contract = rule.params.get("contract", self.tvl_contract)
        n = int(rule.params.get("window_blocks", 10))
        share = float(rule.params.get("share_of_tvl", 0.25))
        hist = list(self.history)
        window = hist[-n:]
        before = hist[-n - 1] if len(hist) > n else None
        # TVL the window started from: end of the block before the window, else start of its first block
        base = self._tvl_at(before, contract) if before else None
        if base is None and window:
            first = window[0]
            tvl_end = self._tvl_at(first, contract)
            if tvl_end is not None:
                base = tvl_end + sum(int(l.args.get("assets", 0)) for l in first.logs
                                     if l.contract == contract and l.event == "Withdraw") - sum(
                    int(l.args.get("assets", 0)) for l in first.logs if l.contract == contract and l.event == "Deposit")
        withdrawn = [(b, l) for b in window for l in b.logs if l.contract == contract and l.event == "Withdraw"]
        total = sum(int(l.args.get("assets", 0)) for _, l in withdrawn)
        true = bool(base) and total >= share * base
        if not self._edge(rule, true):
            return []
        trigger = next((l for b, l in reversed(withdrawn) if b is block), withdrawn[-1][1])
        return [self._alert(rule, block, tx=trigger.tx_hash, contract=contract, key=f"{contract}:{trigger.tx_hash}",
                            values={"withdrawn": total, "tvl": base, "share_pct": round(100 * total / base, 1),
                                    "window_blocks": n, "withdrawals": len(withdrawn)})]

    def _cond_tvl_drop(self, rule: WatchRule, block: BlockData) -> list[WatcherAlert]:
        contract = rule.params.get("contract", self.tvl_contract)
        n = int(rule.params.get("window_blocks", 10))
        pct = float(rule.params.get("drop_pct", 40))
        series = [(b, self._tvl_at(b, contract)) for b in list(self.history)[-(n + 1):]]
        series = [(b, v) for b, v in series if v is not None]
        current = self._tvl_at(block, contract)
        peak = max((v for _, v in series), default=None)
        true = bool(peak) and current is not None and (peak - current) * 100 >= pct * peak
        if not self._edge(rule, true):
            return []
        trigger = next((l for l in reversed(block.logs) if l.contract == contract and l.event == "Withdraw"), None)
        tx = trigger.tx_hash if trigger else None
        return [self._alert(rule, block, tx=tx, contract=contract, key=f"{contract}:{tx or block.number}",
                            values={"peak": peak, "tvl": current, "window_blocks": n,
                                    "drop_pct": round(100 * (peak - current) / peak, 1)})]

    def _cond_denylisted_caller(self, rule: WatchRule, block: BlockData) -> list[WatcherAlert]:
        deny = self.denylist | {a.lower() for a in rule.params.get("addresses", [])}
        return [self._alert(rule, block, tx=t.hash, contract=t.contract, key=t.hash,
                            values={"from": t.sender, "to": t.to, "ok": t.ok})
                for t in block.txs if t.sender.lower() in deny]

    def _cond_failed_tx_burst(self, rule: WatchRule, block: BlockData) -> list[WatcherAlert]:
        n = int(rule.params.get("window_blocks", 5))
        k = int(rule.params.get("min_failed", 5))
        failed = [(b, t) for b in self._window(n) for t in b.txs if not t.ok]
        if not self._edge(rule, len(failed) >= k):
            return []
        trigger = failed[-1][1]
        return [self._alert(rule, block, tx=trigger.hash, contract=trigger.contract, key=trigger.hash,
                            values={"failed": len(failed), "window_blocks": n})]
