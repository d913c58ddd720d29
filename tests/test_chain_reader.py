"""vvops.chain against a real anvil: failover and retries, Multicall reads, the window search, adaptive
eth_getLogs and its decoding, block receipts. `FlakyProxy` (also used by test_protocol_health) sits in front
of anvil and fails every n-th request with HTTP 500 and/or refuses eth_getLogs over too many blocks."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from vvops.chain.activity import transactions_to, vault_activity, window_blocks
from vvops.chain.blocks import block_timestamps, first_block_at_or_after
from vvops.chain.logs import EventDecoder, LogFetchStats, fetch_logs
from vvops.chain.reader import ViewCall, read_views
from vvops.chain.rpc import RpcClient, RpcUnavailable, endpoint_label
from vvops.chain.abi import contract_abi

pytestmark = pytest.mark.devnet
UNIT = 10**18


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the socket is closed


class FlakyProxy:
    """HTTP JSON-RPC proxy to `upstream`: request k (1-based) fails with HTTP 500 when k % fail_every == 0;
    eth_getLogs spanning more than `max_log_range` blocks gets a JSON-RPC "range too large" error."""

    def __init__(self, upstream: str, *, fail_every: int | None = None, max_log_range: int | None = None):
        self.upstream, self.fail_every, self.max_log_range = upstream, fail_every, max_log_range
        self.requests = self.failed = self.refused = 0
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=10)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status, answer = proxy.handle(body)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _refuse(self, item: dict) -> dict | None:
        if self.max_log_range is None or item.get("method") != "eth_getLogs":
            return None
        query = item["params"][0]
        if int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1 > self.max_log_range:
            self.refused += 1
            return {"jsonrpc": "2.0", "id": item.get("id"),
                    "error": {"code": -32005, "message": f"query exceeds max block range {self.max_log_range}"}}
        return None

    def handle(self, body: bytes) -> tuple[int, bytes]:
        with self._lock:
            self.requests += 1
            fail = self.fail_every is not None and self.requests % self.fail_every == 0
            if fail:
                self.failed += 1
        if fail:
            return 500, b'{"error": "upstream unavailable"}'
        payload = json.loads(body)
        items = payload if isinstance(payload, list) else [payload]
        refusals = [self._refuse(item) for item in items]
        if not isinstance(payload, list) and refusals[0] is not None:
            return 200, json.dumps(refusals[0]).encode()
        if isinstance(payload, list) and any(refusals):
            forward = [i for i, r in zip(items, refusals) if r is None]
            answers = self._http.post(self.upstream, json=forward).json() if forward else []
            return 200, json.dumps(answers + [r for r in refusals if r]).encode()
        response = self._http.post(self.upstream, content=body, headers={"content-type": "application/json"})
        return response.status_code, response.content

    def __enter__(self) -> "FlakyProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._http.close()


def test_failover_skips_a_down_url_and_reports_latency_per_url(devnet):
    down = closed_port_url()
    with RpcClient([down, devnet.rpc_url], timeout_s=1, retries_per_url=1) as rpc:
        assert int(rpc.call("eth_chainId"), 16) == 31337
        assert rpc.served_by == endpoint_label(devnet.rpc_url)
        per_url = rpc.latency_by_url()
    assert per_url[endpoint_label(down)]["ok"] == 0 and per_url[endpoint_label(down)]["failed"] == 2
    assert per_url[endpoint_label(devnet.rpc_url)]["ok"] == 1
    assert per_url[endpoint_label(devnet.rpc_url)]["median_ms"] > 0


def test_all_urls_down_raises_rpc_unavailable_naming_labels_only():
    down = closed_port_url()
    with RpcClient([down + "/v2/SECRETKEY"], timeout_s=0.5, retries_per_url=0) as rpc:
        with pytest.raises(RpcUnavailable) as info:
            rpc.call("eth_blockNumber")
    assert "SECRETKEY" not in str(info.value) and endpoint_label(down) in str(info.value)


def test_retries_on_the_same_url_ride_out_a_server_that_fails_every_third_request(devnet):
    with FlakyProxy(devnet.rpc_url, fail_every=3) as proxy, RpcClient([proxy.url], timeout_s=2) as rpc:
        numbers = [int(rpc.call("eth_blockNumber"), 16) for _ in range(12)]
    assert len(set(numbers)) == 1 and proxy.failed >= 4
    assert sum(not a.ok for a in rpc.attempts) == proxy.failed


def test_read_views_reads_many_values_in_one_call(devnet):
    vault = devnet.contracts.vault
    users = [u.address for u in devnet.accounts.users]
    calls = [ViewCall("fee", vault, "feeBps()", ("uint256",)), ViewCall("owner", vault, "owner()", ("address",))]
    calls += [ViewCall(f"bal{i}", vault, "balanceOf(address)", ("uint256",), (u,)) for i, u in enumerate(users)]
    calls.append(ViewCall("bad", vault, "noSuchFunction()", ("uint256",)))
    with RpcClient([devnet.rpc_url]) as rpc:
        results = read_views(rpc, multicall=devnet.contracts.multicall3, calls=calls)
        assert len(rpc.attempts) == 1
    assert results["fee"].value == 30 and results["owner"].value == devnet.contracts.timelock
    assert results["bal0"].value == 100_000 * UNIT
    assert not results["bad"].ok and "reverted" in results["bad"].error


def test_first_block_at_or_after_matches_a_linear_scan(devnet, fresh_devnet_state):
    from vvops.devnet.timetravel import increase_time, mine

    for seconds in (30, 600, 5, 3600, 1, 120):
        increase_time(fresh_devnet_state, seconds)
        mine(fresh_devnet_state, 3)
    with RpcClient([devnet.rpc_url]) as rpc:
        latest = int(rpc.call("eth_blockNumber"), 16)
        stamps = block_timestamps(rpc, list(range(latest + 1)))
        for target in sorted(set(stamps.values())) + [stamps[latest] + 1, 0]:
            expected = next((n for n in range(latest + 1) if stamps[n] >= target), latest)
            assert first_block_at_or_after(rpc, target, low=0, high=latest, fanout=4) == expected, target


def test_getlogs_halves_refused_ranges_and_decodes_like_the_abi(devnet, fresh_devnet_state):
    vault = fresh_devnet_state.contract("VaultV1", devnet.contracts.vault)
    for user in devnet.accounts.users[:3]:
        vault.transact(user.address, "deposit", 7 * UNIT)
    latest = fresh_devnet_state.block_number()
    abi = contract_abi("VaultV1")
    with FlakyProxy(devnet.rpc_url, max_log_range=4) as proxy, RpcClient([proxy.url]) as rpc:
        stats = LogFetchStats()
        logs = fetch_logs(rpc, address=devnet.contracts.vault, from_block=0, to_block=latest, initial_range=1000,
                          stats=stats)
    assert stats.halvings > 0 and proxy.refused == stats.halvings
    assert all(end - start + 1 <= 4 for start, end in stats.ranges)
    with RpcClient([devnet.rpc_url]) as rpc:
        assert logs == rpc.call("eth_getLogs", [{"address": devnet.contracts.vault, "fromBlock": "0x0",
                                                 "toBlock": hex(latest)}])
    ours = EventDecoder(abi.abi).decode_all(logs)
    reference = [abi.decode_log(log) for log in logs]
    assert [(e.name, e.args, e.block_number, e.log_index) for e in ours] == \
        [(r.name, r.args, r.block_number, r.log_index) for r in reference if r is not None]
    assert sum(e.name == "Deposit" for e in ours) == 5 + 3


def test_activity_and_failed_transactions_over_the_window(devnet, fresh_devnet_state):
    vault = fresh_devnet_state.contract("VaultV1", devnet.contracts.vault)
    user = devnet.accounts.users[1].address
    vault.transact(user, "withdraw", 20_000 * UNIT)
    # a withdrawal above the limit, sent with explicit gas so it is mined and fails (status 0)
    tx = fresh_devnet_state.send(sender=user, to=devnet.contracts.vault, gas=200_000,
                                 data=vault.encode("withdraw", 60_000 * UNIT))
    assert int(fresh_devnet_state.wait_for_receipt(tx)["status"], 16) == 0
    with RpcClient([devnet.rpc_url]) as rpc:
        window = window_blocks(rpc, window_hours=24)
        activity = vault_activity(rpc, contract="vault", address=devnet.contracts.vault,
                                  abi=contract_abi("VaultV1").abi, window=window)
        stats = transactions_to(rpc, contracts={"vault": devnet.contracts.vault}, window=window)
    assert window.from_block <= devnet.deployed_at_block + 1
    assert (activity.deposits, activity.withdrawals) == (5, 1)
    assert activity.withdrawals_volume == 20_000 * UNIT and len(activity.users) == 5
    assert activity.largest_withdrawals[0]["user"] == user
    assert stats.failed == 1 and stats.failed_txs[0]["tx"] == tx
    assert stats.transactions == 5 + 1 + 1


def test_a_short_window_starts_after_older_blocks(devnet, fresh_devnet_state):
    from vvops.devnet.timetravel import increase_time

    increase_time(fresh_devnet_state, 3 * 3600)
    vault = fresh_devnet_state.contract("VaultV1", devnet.contracts.vault)
    vault.transact(devnet.accounts.users[0].address, "deposit", UNIT)
    with RpcClient([devnet.rpc_url]) as rpc:
        window = window_blocks(rpc, window_hours=1)
        activity = vault_activity(rpc, contract="vault", address=devnet.contracts.vault,
                                  abi=contract_abi("VaultV1").abi, window=window)
    assert activity.deposits == 1 and activity.deposits_volume == UNIT
