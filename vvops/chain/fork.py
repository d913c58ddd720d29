"""Throwaway anvil forks: every simulation (impact analysis, upgrade rehearsal) runs on one, never on the chain
that someone watches.

    with anvil_fork(rpc_urls, expected_chain_id=1) as fork:
        fork.impersonate(timelock)                 # anvil_impersonateAccount + anvil_setBalance
        fork.send_as(timelock, vault, calldata)    # mined on the fork only
        ...read state through fork.rpc_url...
    fork.timings                                   # start / simulate / stop in ms

`anvil_fork` reads the head of the first RPC URL that answers, starts anvil on a free 127.0.0.1 port with
`--fork-url <that URL> --fork-block-number <head>` and stops it on the way out, whatever happened (the process
also dies with its parent: `vvops.chain.anvil`). Blocks mined on the fork never reach the source chain, so its
watcher sees nothing of a simulation. Storage caching is off: two chains with the same id and block number (two
test anvils, a testnet reset) must never share cached state.

Where no fork can be made (no URL answers, the RPC refuses what anvil needs to fork, the chain id is not the
configured one, anvil is missing) `ForkUnavailable` says why in one line: the caller reports "not simulated".

RPC URLs often carry API keys: no message, log or exception of this module contains one (endpoint labels
only); anvil runs with `--silent` and its output file is deleted when it stops.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from eth_utils import to_checksum_address

from vvops.chain.anvil import AnvilError, AnvilProcess
from vvops.chain.rpc import RpcClient, RpcError, RpcUnavailable, endpoint_label

SIMULATION_BALANCE_WEI = 10**20  # gas money for an impersonated account (exists only on the fork)
DEFAULT_STARTUP_TIMEOUT_S = 60.0  # a fork of a remote chain fetches its head block first
DEFAULT_FORK_RPC_TIMEOUT_S = 30.0  # reads on a fork fetch missing state from the source


class ForkUnavailable(RuntimeError):
    """No fork of the chain could be made; the message (secret-free) says why."""


@dataclass
class Fork:
    """A running fork: its RPC (`rpc`, `rpc_url`), what it forked (`source` label, `block_number`, `chain_id`)."""

    rpc_url: str
    rpc: RpcClient
    source: str
    block_number: int
    chain_id: int
    timings: dict[str, float] = field(default_factory=dict)
    _impersonated: set[str] = field(default_factory=set)

    def impersonate(self, account: str, balance_wei: int = SIMULATION_BALANCE_WEI) -> str:
        """Let `account` send on the fork without its key (a timelock, a Safe...), with gas money."""
        account = to_checksum_address(account)
        self.rpc.call("anvil_impersonateAccount", [account])
        self.rpc.call("anvil_setBalance", [account, hex(balance_wei)])
        self._impersonated.add(account)
        return account

    def send_as(self, sender: str, to: str, data: str, value: int = 0) -> dict[str, Any]:
        """One transaction from an impersonated `sender`, mined on the fork; returns its receipt.

        A call that would revert raises `RpcError` from gas estimation, with the revert data (decode it with the
        target's ABI); a mined transaction that failed raises `SimulatedTxFailed`."""
        sender = to_checksum_address(sender)
        if sender not in self._impersonated:
            self.impersonate(sender)
        tx = {"from": sender, "to": to_checksum_address(to), "data": data, "value": hex(value)}
        tx_hash = self.rpc.call("eth_sendTransaction", [tx])
        receipt = None
        deadline = time.monotonic() + 30
        while receipt is None and time.monotonic() < deadline:
            receipt = self.rpc.call("eth_getTransactionReceipt", [tx_hash])
            if receipt is None:
                time.sleep(0.02)
        if receipt is None:
            raise SimulatedTxFailed(f"transaction to {tx['to']} was not mined on the fork within 30 s")
        if int(receipt["status"], 16) != 1:
            raise SimulatedTxFailed(f"transaction to {tx['to']} failed on the fork (block {int(receipt['blockNumber'], 16)})")
        return receipt

    def head(self) -> int:
        return int(self.rpc.call("eth_blockNumber"), 16)


class SimulatedTxFailed(RuntimeError):
    """A simulated transaction was mined on the fork with status 0 (or not mined)."""


def _redact(text: str, urls: Sequence[str]) -> str:
    for url in urls:
        if url:
            text = text.replace(url, endpoint_label(url))
    return text


def _source_head(rpc_urls: Sequence[str], timeout_s: float) -> tuple[str, int, int]:
    """(URL, head number, chain id) from the first URL that answers both questions."""
    failures = []
    for url in rpc_urls:
        with RpcClient([url], timeout_s=timeout_s, retries_per_url=1) as rpc:
            try:
                chain_id, head = rpc.batch([("eth_chainId", []), ("eth_blockNumber", [])])
                return url, int(head, 16), int(chain_id, 16)
            except (RpcUnavailable, RpcError, KeyError, TypeError, ValueError) as exc:
                failures.append(f"{endpoint_label(url)}: {_redact(str(exc), rpc_urls)}")
    raise ForkUnavailable("no RPC endpoint answered the fork's head request (" + "; ".join(failures or ["no URL"])
                          + ")")


@contextmanager
def anvil_fork(rpc_urls: Sequence[str], *, expected_chain_id: int | None = None, block_number: int | None = None,
               startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S, rpc_timeout_s: float = DEFAULT_FORK_RPC_TIMEOUT_S,
               source_timeout_s: float = 10.0) -> Iterator[Fork]:
    """A throwaway anvil fork of the chain behind `rpc_urls` at its head (or `block_number`); always stopped.

    Raises ForkUnavailable before yielding when no fork can be made. Timings (ms) land in `fork.timings`:
    `start` (head lookup + anvil ready), `simulate` (inside the with-block), `stop`."""
    urls = [u for u in rpc_urls if u]
    if not urls:
        raise ForkUnavailable("the environment has no RPC URL to fork")
    started = time.perf_counter()
    url, head, chain_id = _source_head(urls, source_timeout_s)
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise ForkUnavailable(f"{endpoint_label(url)} serves chain {chain_id}, the environment is chain "
                              f"{expected_chain_id}: not forking the wrong chain")
    if block_number is not None:
        head = int(block_number)
    fd, log_name = tempfile.mkstemp(prefix="vv-fork-", suffix=".log")
    os.close(fd)
    node = AnvilProcess(None, chain_id=chain_id, log_path=log_name, startup_timeout=startup_timeout_s,
                        extra_args=["--fork-url", url, "--fork-block-number", str(head), "--no-storage-caching",
                                    "--retries", "2", "--timeout", str(int(rpc_timeout_s * 1000)), "--silent"])
    try:
        try:
            node.start()
        except AnvilError as exc:
            raise ForkUnavailable(f"could not fork {endpoint_label(url)} at block {head}: "
                                  + _summarise_anvil_error(_redact(str(exc), urls))) from None
        rpc = RpcClient([node.rpc_url], timeout_s=rpc_timeout_s, retries_per_url=0)
        fork = Fork(rpc_url=node.rpc_url, rpc=rpc, source=endpoint_label(url), block_number=head, chain_id=chain_id)
        fork.timings["start"] = _ms(started)
        simulating = time.perf_counter()
        try:
            yield fork
        finally:
            fork.timings["simulate"] = _ms(simulating)
            stopping = time.perf_counter()
            rpc.close()
            node.stop()
            fork.timings["stop"] = _ms(stopping)
    finally:
        node.stop()
        Path(log_name).unlink(missing_ok=True)  # anvil's own errors name the fork URL (with its key)


def _summarise_anvil_error(text: str) -> str:
    """anvil's failure in one line: its `Error:` line and the innermost cause, when it printed them."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    error = next((line for line in lines if line.startswith("Error:")), None)
    causes = [line.split(":", 1)[1].strip() if line.startswith("- Error #") else line[2:].strip()
              for line in lines if line.startswith("- ")]
    if error:
        return error[len("Error:"):].strip() + (f" ({causes[-1]})" if causes else "")
    return lines[0] if lines else "anvil did not start"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
