"""Every simulation on a throwaway anvil fork, never on the watched chain (issue 12, item 5).

A second anvil stands in for a real chain (chain id 31338, addresses written into a config copy as plain 0x
addresses, its RPC behind a recording proxy; not `from-devnet`). Its watcher runs while the parameter change is
analysed and the upgrade rehearsed: the change is simulated on a fork of it and the watcher sees no simulated
block. The same environment behind a proxy that refuses what a fork needs says "not simulated" plainly.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.fixtures.approval_fixtures import approval_run_id
from tests.fixtures.rpc_proxy import RpcProxy
from tests.watcher_helpers import WatcherThread, wait_until
from vvops.chain.anvil import AnvilProcess
from vvops.chain.fork import ForkUnavailable, anvil_fork
from vvops.procedures.impact import diff_health, not_simulated
from vvops.store.models import AuditEntry, ChainAction, NotificationOutbox

REAL_CHAIN_ID = 31338
# Methods that change a node's state or history: none may reach a watched chain while simulating.
STATE_CHANGING = re.compile(r"^(evm_|anvil_|hardhat_|eth_send|personal_|miner_)")
# A hosted RPC that refuses what anvil needs to fork (block bodies), yet serves the procedure's own reads.
FORK_NEEDS = {"eth_getBlockByNumber"}


def _rpc(url: str, method: str, params: list | None = None):
    return httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []},
                      timeout=10).json()["result"]


def _resolve_devnet_refs(value, devnet_json: dict):
    from vvops.config import devnet_address

    if isinstance(value, str) and value.startswith("from-devnet:"):
        return devnet_address(value, devnet_json)
    if isinstance(value, dict):
        return {k: _resolve_devnet_refs(v, devnet_json) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_devnet_refs(v, devnet_json) for v in value]
    return value


def _add_environment(config_dir: Path, name: str, rpc_url: str, devnet_json: dict) -> None:
    """An environment like the devnet's, but as a real chain is configured: its RPC URL and 0x addresses."""
    import yaml

    envs_path, contracts_path = config_dir / "environments.yaml", config_dir / "contracts.yaml"
    envs = yaml.safe_load(envs_path.read_text())
    devnet = {k: v for k, v in envs["environments"]["devnet"].items() if k != "safe"}  # this chain has no Safe
    envs["environments"][name] = {**devnet, "description": f"stand-in real chain {name}",
                                  "chain_id": REAL_CHAIN_ID, "rpc_urls": [rpc_url]}
    envs_path.write_text(yaml.safe_dump(envs, sort_keys=False))
    contracts = yaml.safe_load(contracts_path.read_text())
    for contract in contracts["contracts"]:
        devnet = (contract.get("deployments") or {}).get("devnet")
        if devnet is not None:
            contract["deployments"][name] = _resolve_devnet_refs(devnet, devnet_json)
    contracts_path.write_text(yaml.safe_dump(contracts, sort_keys=False))


@pytest.fixture(scope="module")
def real_chain(tmp_path_factory):
    """A second anvil with the reference contracts, configured as environments `realchain` (its RPC behind a
    recording proxy) and `refusing` (behind a proxy that refuses what a fork needs)."""
    import shutil

    from tasks.runtime import ops_config
    from vvops.devnet import deploy_devnet, write_devnet_file

    tmp = tmp_path_factory.mktemp("real-chain")
    with AnvilProcess(None, chain_id=REAL_CHAIN_ID, log_path=tmp / "anvil.log") as node, \
            RpcProxy(node.rpc_url) as recording, RpcProxy(node.rpc_url, refuse=FORK_NEEDS) as refusing:
        info = deploy_devnet(node.rpc_url, timelock_delay=3600)
        write_devnet_file(info, tmp / "devnet.json")
        devnet_json = json.loads((tmp / "devnet.json").read_text())
        config_dir = tmp / "config"
        shutil.copytree(Path(__file__).resolve().parent.parent / "config", config_dir)
        _add_environment(config_dir, "realchain", recording.url, devnet_json)
        _add_environment(config_dir, "refusing", refusing.url, devnet_json)
        saved = os.environ.get("VVOPS_CONFIG_DIR")
        os.environ["VVOPS_CONFIG_DIR"] = str(config_dir)
        ops_config.cache_clear()
        try:
            yield {"node": node, "info": info, "recording": recording, "refusing": refusing}
        finally:
            if saved is None:
                os.environ.pop("VVOPS_CONFIG_DIR", None)
            else:
                os.environ["VVOPS_CONFIG_DIR"] = saved
            ops_config.cache_clear()


@pytest.fixture
def watched(real_chain, sqlite_store_url):
    """The real chain's watcher, running with no confirmation depth (it processes every block as soon as it is
    mined) and caught up with the head; yields the blocks it saw (number → block) and the watcher."""
    seen: dict[int, object] = {}
    node = real_chain["node"]
    watcher = WatcherThread(sqlite_store_url, [node.rpc_url], real_chain["info"], confirmations=0,
                            on_block=lambda block, alerts: seen.__setitem__(block.number, block)).start()
    head = int(_rpc(node.rpc_url, "eth_blockNumber"), 16)
    wait_until(lambda: head in seen, timeout=300, what="the watcher to reach the head")
    try:
        yield seen, watcher
    finally:
        watcher.stop()


# ----------------------------------------------------------------------------------------------- the fork module


def test_a_fork_runs_calls_away_from_its_source_and_is_always_stopped(real_chain):
    node = real_chain["node"]
    head = int(_rpc(node.rpc_url, "eth_blockNumber"), 16)
    timelock = real_chain["info"].contracts.timelock
    with pytest.raises(RuntimeError, match="boom"):
        with anvil_fork([node.rpc_url], expected_chain_id=REAL_CHAIN_ID) as fork:
            assert (fork.block_number, fork.chain_id) == (head, REAL_CHAIN_ID)
            fork.impersonate(timelock)
            fork.send_as(timelock, timelock, "0x")
            assert fork.head() == head + 1
            fork_url = fork.rpc_url
            raise RuntimeError("boom")
    assert int(_rpc(node.rpc_url, "eth_blockNumber"), 16) == head  # the source never saw the fork's block
    with pytest.raises(httpx.ConnectError):
        httpx.post(fork_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=2)
    assert fork.timings.keys() == {"start", "simulate", "stop"}


def test_no_fork_is_one_secret_free_line(real_chain):
    secret = "http://user:hunter2@127.0.0.1:1/v3/SECRETKEY"
    with pytest.raises(ForkUnavailable) as refused:
        with anvil_fork([secret]):
            pass
    assert "hunter2" not in str(refused.value) and "SECRETKEY" not in str(refused.value)
    assert "127.0.0.1:1" in str(refused.value)
    with pytest.raises(ForkUnavailable, match="serves chain 31338, the environment is chain 1"):
        with anvil_fork([real_chain["node"].rpc_url], expected_chain_id=1):
            pass
    with pytest.raises(ForkUnavailable, match="could not fork"):
        with anvil_fork([real_chain["refusing"].url]):
            pass


def test_a_report_that_simulated_nothing_says_so():
    report = not_simulated("could not fork http://rpc.example:443 at block 7: method not allowed")
    text = report.markdown("Impact of vault.feeBps 30 → 50")
    assert "NOT SIMULATED" in text and "method not allowed" in text
    assert "same status" not in text and "no health check got worse" not in report.summary()
    assert not report.ok and not report.simulated
    simulated = diff_health(before_values={"feeBps": 30}, after_values={"feeBps": 50}, outcomes_before=[],
                            outcomes_after=[])
    assert simulated.simulated and simulated.ok


# ----------------------------------------------------------------------------------------------- the procedures


def _outbox_approval_text(engine, subject: str) -> str:
    with engine.connect() as conn:
        payloads = conn.execute(select(NotificationOutbox.payload).where(NotificationOutbox.kind == "approval_request")
                                .order_by(NotificationOutbox.id.desc())).scalars().all()
    texts = [p.get("text", "") for p in payloads if subject in p.get("text", "")]  # the Slack message's text
    assert texts, f"no approval request message for {subject!r}"
    return texts[0]


def _impact_audit(engine) -> dict:
    with engine.connect() as conn:
        return conn.execute(select(AuditEntry.details).where(AuditEntry.action == "parameter_change.impact_analysed")
                            .order_by(AuditEntry.id.desc()).limit(1)).scalar()


def _reject(run_id: str) -> None:
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(uuid.UUID(run_id), run_input={"decision": "reject", "approver": "daniel", "reason": "test"})


@pytest.mark.devnet
@pytest.mark.prefect
def test_a_parameter_change_on_a_real_chain_is_simulated_on_a_fork_its_watcher_never_sees(
        ops_flows, ops_store_engine, no_recent_parameter_changes, real_chain, watched, flow_in_thread):
    from flows.parameter_change import parameter_change

    node, recording = real_chain["node"], real_chain["recording"]
    seen, watcher = watched
    head = int(_rpc(node.rpc_url, "eth_blockNumber"), 16)
    recording.methods.clear()
    thread = flow_in_thread(parameter_change, parameter="feeBps", new_value=42, proposer="priya",
                            environment="realchain", approval_poll_interval=0.5)
    subject = "vault.feeBps: 30 → 42"
    run_id = approval_run_id(ops_store_engine, subject, timeout=300)
    thread.wait_paused(run_id, timeout=300)

    impact = _impact_audit(ops_store_engine)
    assert impact["simulated"] is True and impact["ok"] is True
    assert impact["summary"].startswith("feeBps 30 → 42")
    approval = _outbox_approval_text(ops_store_engine, subject)
    assert "**Result:** OK" in approval and "| `feeBps` | 30 | 42 |" in approval
    # nothing was sent, snapshotted, reverted or mined on the watched chain
    assert not [m for m in recording.methods if STATE_CHANGING.match(m or "")], recording.methods
    assert int(_rpc(node.rpc_url, "eth_blockNumber"), 16) == head
    _reject(run_id)
    assert thread.join(300)["status"] == "rejected"
    watcher.stop()
    assert watcher.error is None
    assert max(seen) == head and all(b.hash == _rpc(node.rpc_url, "eth_getBlockByNumber", [hex(n), False])["hash"]
                                     for n, b in seen.items())
    assert not [a for a in watcher.sink.alerts if "parameter" in a.name]
    with ops_store_engine.connect() as conn:
        assert not conn.execute(select(ChainAction.id).where(
            ChainAction.idempotency_key.like(f"parameter_change:{run_id}:%"))).first()


@pytest.mark.devnet
@pytest.mark.prefect
def test_where_the_rpc_refuses_a_fork_the_report_and_the_approval_say_not_simulated(
        ops_flows, ops_store_engine, no_recent_parameter_changes, real_chain, flow_in_thread):
    from flows.parameter_change import parameter_change

    thread = flow_in_thread(parameter_change, parameter="feeBps", new_value=38, proposer="priya",
                            environment="refusing", approval_poll_interval=0.5)
    subject = "vault.feeBps: 30 → 38"
    run_id = approval_run_id(ops_store_engine, subject, timeout=300)
    thread.wait_paused(run_id, timeout=300)

    impact = _impact_audit(ops_store_engine)
    assert impact["simulated"] is False and impact["ok"] is False
    assert impact["summary"].startswith("not simulated (")
    approval = _outbox_approval_text(ops_store_engine, subject)
    assert "NOT SIMULATED" in approval and "method not allowed" in approval
    assert "same status" not in approval
    _reject(run_id)
    assert thread.join(300)["status"] == "rejected"


@pytest.mark.devnet
@pytest.mark.prefect
def test_an_upgrade_is_rehearsed_on_a_fork_of_a_real_chain_and_not_where_no_fork_can_be_made(
        ops_flows, real_chain, watched):
    from tasks.upgrades import rehearse_upgrade

    node, recording, info = real_chain["node"], real_chain["recording"], real_chain["info"]
    seen, watcher = watched
    slot = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc"  # ERC-1967 implementation
    implementation = _rpc(node.rpc_url, "eth_getStorageAt", [info.contracts.vault, slot, "latest"])
    head = int(_rpc(node.rpc_url, "eth_blockNumber"), 16)
    recording.methods.clear()

    rehearsal = rehearse_upgrade(environment="realchain", contract="vault",
                                 new_implementation=info.contracts.vault_v2_implementation, expected_version="2.0.0")
    assert rehearsal["simulated"] and rehearsal["ok"], rehearsal
    assert rehearsal["version_after"] == "2.0.0"
    assert rehearsal["fork"]["block"] == head and set(rehearsal["fork"]["timings_ms"]) == {"start", "simulate", "stop"}
    assert not [m for m in recording.methods if STATE_CHANGING.match(m or "")], recording.methods
    assert _rpc(node.rpc_url, "eth_getStorageAt", [info.contracts.vault, slot, "latest"]) == implementation
    assert int(_rpc(node.rpc_url, "eth_blockNumber"), 16) == head
    watcher.stop()
    assert max(seen) == head

    refused = rehearse_upgrade(environment="refusing", contract="vault",
                               new_implementation=info.contracts.vault_v2_implementation, expected_version="2.0.0")
    assert not refused["simulated"] and not refused["ok"]
    assert "method not allowed" in refused["not_simulated"]


@pytest.mark.devnet
@pytest.mark.prefect
def test_the_devnet_simulates_on_a_fork_too(ops_flows, devnet, devnet_chain):
    from tasks.simulation import simulate_on_fork
    from vvops.chain.abi import contract_abi

    head = int(_rpc(devnet.rpc_url, "eth_blockNumber"), 16)
    data = "0x" + contract_abi("VaultV1").encode_call("setFeeBps", 77).hex()
    sim = simulate_on_fork(environment="devnet", contract="vault", calls=[{"to": "vault", "data": data}])
    assert sim["simulated"] and sim["error"] is None
    assert (sim["before"]["feeBps"], sim["after"]["feeBps"]) == (30, 77)
    assert sim["fork"]["source"] == devnet.rpc_url and sim["fork"]["block"] == head
    assert int(_rpc(devnet.rpc_url, "eth_blockNumber"), 16) == head
    assert devnet_chain.contract("VaultV1", devnet.contracts.vault).call("feeBps") == 30
