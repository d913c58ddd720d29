"""Scenario simulator for demos and tests: make something dangerous happen on the devnet.

    report = run_scenario("drain", devnet_info=info)     # -> ScenarioReport (what it did, what should be detected)
    print(report.summary())

Scenarios (each returns the rules the watcher should raise, with their severity, from config/watcher.yaml):
- `drain`: the depositors' (compromised) keys withdraw ~90 % of the vault's TVL within a few blocks
  → `tvl_drop` P0 and `large_withdrawals` P1.
- `rogue-upgrade`: the Timelock (impersonated with `anvil_impersonateAccount`) calls `upgradeTo(VaultV2)`
  directly, with no approved upgrade record → `unapproved_upgrade` P0.
- `param-drift`: the impersonated Timelock calls `setFeeBps` outside governance → `unapproved_parameter_change` P0.
- `rpc-outage`: a local TCP proxy in front of anvil (give the watcher the proxy first and anvil second) stops
  answering for `seconds`; meanwhile the denylisted attacker deposits into the vault → `denylisted_caller` P1,
  detected through the failover URL.
- `reorg`: `evm_snapshot`, the guardian pauses the vault, the watcher processes it, `evm_revert`, other blocks
  are mined and the same (deterministically signed) pause transaction lands in a different block
  → `vault_paused` P1 exactly once (the alert's block annotations move to the new block).
"""

from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from vvops.chain.abi import contract_abi, encode_param_name
from vvops.devnet.chain import Chain
from vvops.devnet.deploy import DevnetInfo
from vvops.devnet.timetravel import impersonate, revert, set_balance, snapshot

SCENARIOS = ("drain", "rogue-upgrade", "param-drift", "rpc-outage", "reorg")
_GAS = 300_000


@dataclass
class ScenarioReport:
    name: str
    did: list[str] = field(default_factory=list)
    expect: list[dict[str, str]] = field(default_factory=list)   # [{"rule": ..., "severity": ...}]
    txs: list[str] = field(default_factory=list)
    blocks: list[int] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"scenario {self.name}:"] + [f"  did: {d}" for d in self.did]
        lines += [f"  expect: {e['rule']} ({e['severity']})" for e in self.expect]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "did": self.did, "expect": self.expect, "txs": self.txs, "blocks": self.blocks,
                "details": self.details}


def _block(receipt: dict) -> int:
    return int(receipt["blockNumber"], 16)


def _as_timelock(chain: Chain, info: DevnetInfo) -> str:
    timelock = info.contracts.timelock
    impersonate(chain, timelock)
    set_balance(chain, timelock, 10**20)
    return timelock


def scenario_drain(chain: Chain, info: DevnetInfo, *, share: float = 0.9, **_: Any) -> ScenarioReport:
    rep = ScenarioReport("drain")
    vault = chain.contract("VaultV1", info.contracts.vault)
    tvl = vault.call("totalAssets")
    limit = vault.call("withdrawalLimit")
    target = int(tvl * share)
    txs: list[dict[str, Any]] = []
    planned = 0
    abi = contract_abi("VaultV1")
    for user in info.accounts.users:
        left = vault.call("sharesOf", user.address)
        nonce = chain.nonce(user.address)
        while left > 0 and planned < target:
            amount = min(left, limit, target - planned)
            txs.append({"sender": user.address, "to": info.contracts.vault, "data": abi.encode_call("withdraw", amount),
                        "gas": _GAS, "nonce": nonce})
            nonce += 1
            left -= amount
            planned += amount
    hashes = chain.send_many(txs)
    receipts = chain.wait_for_receipts(hashes, timeout=60)
    failed = [r["transactionHash"] for r in receipts if int(r["status"], 16) != 1]
    rep.txs, rep.blocks = hashes, sorted({_block(r) for r in receipts})
    after = vault.call("totalAssets")
    rep.did.append(f"{len(txs)} withdrawals by {len({t['sender'] for t in txs})} depositor keys took "
                   f"{(tvl - after) / 10**18:,.0f} of {tvl / 10**18:,.0f} vvUSD ({100 * (tvl - after) / tvl:.0f} % of TVL) "
                   f"in block(s) {', '.join(map(str, rep.blocks))}" + (f"; {len(failed)} reverted" if failed else ""))
    rep.details = {"tvl_before": tvl, "tvl_after": after, "failed": failed}
    rep.expect = [{"rule": "tvl_drop", "severity": "P0"}, {"rule": "large_withdrawals", "severity": "P1"}]
    return rep


def scenario_rogue_upgrade(chain: Chain, info: DevnetInfo, **_: Any) -> ScenarioReport:
    rep = ScenarioReport("rogue-upgrade")
    timelock = _as_timelock(chain, info)
    vault = chain.contract("VaultV1", info.contracts.vault)
    current = vault.call("implementation")
    new = info.contracts.vault_v2_implementation if current != info.contracts.vault_v2_implementation \
        else info.contracts.vault_v1_implementation
    receipt = vault.transact(timelock, "upgradeTo", new, gas=_GAS)
    rep.txs, rep.blocks = [receipt["transactionHash"]], [_block(receipt)]
    rep.did.append(f"impersonated the Timelock {timelock} and called upgradeTo({new}) on the vault in block "
                   f"{_block(receipt)} (was {current}); no approved upgrade_rollout record")
    rep.details = {"previous_implementation": current, "new_implementation": new}
    rep.expect = [{"rule": "unapproved_upgrade", "severity": "P0"}]
    return rep


def scenario_param_drift(chain: Chain, info: DevnetInfo, *, parameter: str = "feeBps", **_: Any) -> ScenarioReport:
    rep = ScenarioReport("param-drift")
    timelock = _as_timelock(chain, info)
    vault = chain.contract("VaultV1", info.contracts.vault)
    current = vault.call("feeBps")
    new = current + 7 if current + 7 <= 1000 else current - 7
    receipt = vault.transact(timelock, "setFeeBps", new, gas=_GAS)
    rep.txs, rep.blocks = [receipt["transactionHash"]], [_block(receipt)]
    rep.did.append(f"impersonated the Timelock and called setFeeBps({new}) directly (was {current}) in block "
                   f"{_block(receipt)}: outside governance, no approved parameter_change record")
    rep.details = {"parameter": parameter, "old": current, "new": new, "name": encode_param_name(parameter).hex()}
    rep.expect = [{"rule": "unapproved_parameter_change", "severity": "P0"}]
    return rep


class OutageProxy:
    """A TCP proxy on 127.0.0.1 in front of `upstream` (host:port) that can stop answering (`silent`):
    connections stay open, bytes are swallowed, nothing comes back — the failure mode of a hung provider."""

    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1", port: int = 0):
        self.upstream = (upstream_host, upstream_port)
        self.silent = threading.Event()
        self._stop = threading.Event()
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(("127.0.0.1", port))
        self._srv.listen(64)
        self._srv.settimeout(0.2)
        self.port = self._srv.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="vv-outage-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def outage(self, seconds: float) -> None:
        self.silent.set()
        try:
            self._stop.wait(seconds)
        finally:
            self.silent.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._srv.close()

    def __enter__(self) -> "OutageProxy":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._srv.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=2)
        except OSError:
            client.close()
            return
        socks = [client, upstream]
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select(socks, [], [], 0.2)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    if self.silent.is_set():
                        continue  # swallowed: the caller times out
                    (upstream if s is client else client).sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()


def scenario_rpc_outage(chain: Chain, info: DevnetInfo, *, proxy: OutageProxy | None = None, seconds: float = 6.0,
                        warmup_s: float = 0.0, **_: Any) -> ScenarioReport:
    rep = ScenarioReport("rpc-outage")
    own = proxy is None
    if own:
        port = int(chain.rpc_url.rsplit(":", 1)[1].split("/")[0])
        proxy = OutageProxy(port, port=_.get("proxy_port", 0) or 0)
        rep.did.append(f"started an RPC proxy {proxy.url} in front of {chain.rpc_url} "
                       f"(configure the watcher with it first and anvil second)")
        if warmup_s:
            time.sleep(warmup_s)
    attacker = info.accounts.attacker.address
    asset = chain.contract("MockAsset", info.contracts.asset)
    vault = chain.contract("VaultV1", info.contracts.vault)
    done = threading.Event()
    t0 = time.monotonic()
    holder = threading.Thread(target=lambda: (proxy.outage(seconds), done.set()), daemon=True)
    holder.start()
    time.sleep(min(1.0, seconds / 3))
    asset.transact(attacker, "approve", info.contracts.vault, 10**24, gas=_GAS)
    receipt = vault.transact(attacker, "deposit", 10**18, gas=_GAS)
    rep.txs, rep.blocks = [receipt["transactionHash"]], [_block(receipt)]
    holder.join()
    rep.did.append(f"the primary RPC {proxy.url} stopped answering for {seconds:g} s; meanwhile the denylisted "
                   f"attacker {attacker} deposited 1 vvUSD in block {_block(receipt)}")
    rep.details = {"proxy_url": proxy.url, "outage_s": seconds, "elapsed_s": round(time.monotonic() - t0, 2)}
    rep.expect = [{"rule": "denylisted_caller", "severity": "P1"}]
    if own:
        proxy.close()
    return rep


def scenario_reorg(chain: Chain, info: DevnetInfo, *, hold_s: float = 4.0,
                   wait_processed: Callable[[int], None] | None = None, **_: Any) -> ScenarioReport:
    """`wait_processed(block)` (tests) returns once the watcher processed `block`; else sleeps `hold_s`."""
    rep = ScenarioReport("reorg")
    guardian = info.accounts.guardian.address
    abi = contract_abi("VaultV1")
    pause_tx = {"from": guardian, "to": info.contracts.vault, "data": "0x" + abi.encode_call("pause").hex(),
                "gas": hex(_GAS), "gasPrice": hex(50 * 10**9), "nonce": hex(chain.nonce(guardian, "latest"))}
    snap = snapshot(chain)
    first = chain.wait_for_receipt(chain.request("eth_sendTransaction", [pause_tx]), timeout=30)
    b1 = _block(first)
    chain.request("anvil_mine", ["0x2"])
    if wait_processed:
        wait_processed(b1)
    else:
        time.sleep(hold_s)
    old_hash = first["blockHash"]
    if not revert(chain, snap):
        raise RuntimeError(f"evm_revert({snap}) failed")
    # different blocks: an unrelated block first, then the same signed pause transaction again
    chain.request("anvil_mine", ["0x1"])
    second = chain.wait_for_receipt(chain.request("eth_sendTransaction", [pause_tx]), timeout=30)
    b2 = _block(second)
    chain.request("anvil_mine", ["0x2"])
    rep.txs = [first["transactionHash"], second["transactionHash"]]
    rep.blocks = [b1, b2]
    rep.did.append(f"guardian paused the vault in block {b1} ({old_hash[:10]}…), reverted to the snapshot before it "
                   f"and mined other blocks; the same transaction {second['transactionHash'][:10]}… now sits in block "
                   f"{b2} ({second['blockHash'][:10]}…)")
    rep.details = {"old_block_hash": old_hash, "new_block_hash": second["blockHash"],
                   "same_tx": first["transactionHash"] == second["transactionHash"]}
    rep.expect = [{"rule": "vault_paused", "severity": "P1"}]
    return rep


_RUNNERS: dict[str, Callable[..., ScenarioReport]] = {
    "drain": scenario_drain, "rogue-upgrade": scenario_rogue_upgrade, "param-drift": scenario_param_drift,
    "rpc-outage": scenario_rpc_outage, "reorg": scenario_reorg,
}


def run_scenario(name: str, *, devnet_info: DevnetInfo, rpc_url: str | None = None, **options: Any) -> ScenarioReport:
    """Run scenario `name` (one of SCENARIOS) against the devnet; options go to the scenario function
    (rpc-outage: proxy=OutageProxy | proxy_port, seconds; reorg: hold_s, wait_processed; drain: share)."""
    if name not in _RUNNERS:
        raise KeyError(f"unknown scenario {name!r}: one of {', '.join(SCENARIOS)}")
    with Chain(rpc_url or devnet_info.rpc_url) as chain:
        return _RUNNERS[name](chain, devnet_info, **options)
