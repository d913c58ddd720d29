"""The devnet machinery: anvil process handling, deployment file, activity generator, devnet_up/down."""

from __future__ import annotations

import json
import threading
import time

import psutil
import pytest
from eth_account import Account

from vvops import paths
from vvops.devnet import (
    ActivityGenerator,
    AnvilError,
    AnvilProcess,
    ArtifactError,
    Chain,
    DevnetInfo,
    anvil_binary,
    free_port,
    load_artifact,
    load_devnet_file,
    make_web3,
)
from vvops.devnet.deploy import ANVIL_ACCOUNTS
from vvops.devnet.service import anvil_pid_file, devnet_down, devnet_status, devnet_up, supervisor_pid_file
from vvops.devnet.timetravel import (
    chain_time,
    impersonate,
    increase_time,
    mapping_slot,
    revert,
    set_storage_at,
    snapshot,
)

pytestmark = pytest.mark.devnet


def test_anvil_binary_is_found_and_clear_error_when_missing(monkeypatch, tmp_path):
    assert anvil_binary().is_file()
    monkeypatch.setattr(paths, "node_modules_dir", lambda: tmp_path)
    with pytest.raises(AnvilError, match=r"anvil not found at .*: run `npm ci` in the repo root"):
        anvil_binary()


def test_missing_artifact_error_names_file_and_build_command():
    with pytest.raises(ArtifactError, match=r"NoSuchContract\.json.*npm run build:contracts"):
        load_artifact("NoSuchContract")


def test_anvil_process_stop_leaves_no_process():
    node = AnvilProcess(free_port(), block_time=1)
    with node:
        pid = node.pid
        assert psutil.pid_exists(pid)
        assert Chain(node.rpc_url).chain_id() == 31337
        assert "--block-time" in psutil.Process(pid).cmdline()
    assert not node.running
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert pid not in [c.pid for c in psutil.Process().children(recursive=True)]
    node.stop()  # idempotent


def test_anvil_start_failure_reports_output_tail():
    with AnvilProcess(free_port()) as first:
        clash = AnvilProcess(first.port, startup_timeout=5)
        with pytest.raises(AnvilError) as exc:
            clash.start()
        assert str(first.port) in str(exc.value)
        assert not clash.running


def test_well_known_accounts_match_keys_and_node(devnet, devnet_chain):
    for address, key in ANVIL_ACCOUNTS:
        assert Account.from_key(key).address == address
    assert devnet_chain.accounts()[:10] == [a for a, _ in ANVIL_ACCOUNTS]
    assert "private_key" not in repr(devnet.accounts.guardian)
    assert devnet.accounts.guardian.private_key not in repr(devnet)


def test_devnet_json_round_trip(devnet, devnet_json_path):
    data = json.loads(devnet_json_path.read_text())
    assert list(data) == ["rpc_url", "chain_id", "deployed_at_block", "timelock_delay", "contracts", "accounts"]
    assert data["chain_id"] == 31337 and data["timelock_delay"] == 3600 and data["deployed_at_block"] >= 1
    for key in ("asset", "vault", "vault_v1_implementation", "vault_v2_implementation", "timelock", "multicall3"):
        assert data["contracts"][key] == getattr(devnet.contracts, key)
        assert data["contracts"][key].startswith("0x") and data["contracts"][key] != data["contracts"][key].lower()
    assert set(data["accounts"]) == {"deployer", "governance", "guardian", "users", "attacker", "spare"}
    assert len(data["accounts"]["users"]) == 5
    assert set(data["accounts"]["guardian"]) == {"address", "private_key"}
    assert load_devnet_file(devnet_json_path) == devnet == DevnetInfo.from_json(devnet.to_json())


def test_timetravel_helpers(devnet, fresh_devnet_state):
    chain = fresh_devnet_state
    t0 = chain_time(chain)
    assert increase_time(devnet.rpc_url, 1000) >= t0 + 1000
    w3 = make_web3(devnet.rpc_url)
    assert w3.eth.chain_id == 31337
    snap = snapshot(w3)
    # set_storage_at: give the attacker a vvUSD balance (MockAsset balanceOf mapping is slot 1)
    asset = chain.contract("MockAsset", devnet.contracts.asset)
    attacker = devnet.accounts.attacker.address
    set_storage_at(chain, asset.address, mapping_slot(attacker, 1), 123)
    assert asset.call("balanceOf", attacker) == 123
    assert revert(w3, snap)
    assert asset.call("balanceOf", attacker) == 10_000 * 10**18
    # impersonate the timelock (the vault owner) to pause directly
    vault = chain.contract("VaultV1", devnet.contracts.vault)
    from vvops.devnet.timetravel import set_balance

    set_balance(chain, devnet.contracts.timelock, 10**18)
    with impersonate(chain, devnet.contracts.timelock) as owner:
        vault.transact(owner, "pause")
    assert vault.call("paused") is True


def test_activity_generator_is_deterministic(devnet, devnet_chain):
    chain = devnet_chain

    def run(n: int) -> list[tuple]:
        snap = snapshot(chain)
        try:
            gen = ActivityGenerator(devnet.rpc_url, devnet, seed=42, interval_s=0)
            records = [gen.step() for _ in range(n)]
            assert all(r is not None for r in records), "every step should be sent and mined"
            for r in records:  # deliberately invalid actions are mined and revert; the others succeed
                receipt = chain.request("eth_getTransactionReceipt", [r.tx_hash])
                assert receipt["status"] == ("0x1" if r.ok else "0x0")
            assert gen.failures == 0
            vault = chain.contract("VaultV1", devnet.contracts.vault)
            assert vault.call("totalAssets") >= vault.call("totalLiabilities")
            whales = {u.address for u in devnet.accounts.users}
            assert not whales & {r.user for r in records}, "scenario keys are never used by the traffic"
            gen.close()
            return [(r.kind, r.user, r.assets, r.ok) for r in records]
        finally:
            revert(chain, snap)

    first, second = run(12), run(12)
    assert first == second
    assert {k for k, _, _, _ in first} >= {"deposit", "withdraw"}
    assert len({u for _, u, _, _ in first}) > 1


def test_activity_skips_while_paused(devnet, fresh_devnet_state):
    chain = fresh_devnet_state
    chain.contract("VaultV1", devnet.contracts.vault).transact(devnet.accounts.guardian.address, "pause")
    gen = ActivityGenerator(devnet.rpc_url, devnet, seed=1, interval_s=0)
    assert gen.step() is None and gen.skipped == 1 and gen.failures == 0


def test_devnet_up_in_thread_writes_file_and_cleans_up(monkeypatch, tmp_path):
    monkeypatch.setenv("VVOPS_HOME", str(tmp_path))
    stop = threading.Event()
    port = free_port()
    result: dict = {}
    lines: list[str] = []

    def target():
        try:
            result["info"] = devnet_up(port=port, activity_interval=0.1, stop_event=stop, seed=7, out=lines.append)
        except BaseException as error:  # noqa: BLE001
            result["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not (paths.devnet_file().exists() and anvil_pid_file().exists()):
            assert thread.is_alive(), result.get("error")
            assert time.monotonic() < deadline, "devnet did not come up"
            time.sleep(0.05)
        info = load_devnet_file()
        assert info.rpc_url == f"http://127.0.0.1:{port}"
        status = devnet_status()
        assert status["running"] and status["chain_id"] == 31337
        anvil_pid = status["pid"]
        with Chain(info.rpc_url) as chain:  # activity is happening
            start = chain.block_number()
            deadline = time.monotonic() + 10
            while chain.block_number() < start + 2:
                assert time.monotonic() < deadline, "no synthetic activity"
                time.sleep(0.1)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive() and "error" not in result
    assert not anvil_pid_file().exists() and not supervisor_pid_file().exists()
    assert not psutil.pid_exists(anvil_pid) or psutil.Process(anvil_pid).status() == psutil.STATUS_ZOMBIE
    assert paths.devnet_file().exists()  # kept as a record
    assert devnet_status()["running"] is False
    assert devnet_down(out=lines.append)["stopped"] is False
    assert any("no devnet is running" in line for line in lines)
    assert not any("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80" in l for l in lines)
