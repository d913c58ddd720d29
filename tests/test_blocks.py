"""Blocks registered from config: the flows' connections, with every secret shown as stars."""

from __future__ import annotations

import json

import httpx
import pytest

pytestmark = [pytest.mark.prefect]


@pytest.fixture
def registered_blocks_removed_after(ops_flows):
    """Other tests run against config's SQLite store and no Slack token: leave no blocks behind."""
    from blocks import ChainConnection, OpsStore, SlackConnection

    yield
    for block_type, name in ((ChainConnection, "vv-chain-devnet"), (SlackConnection, "vv-slack"), (OpsStore, "vv-store")):
        try:
            block_type.delete(name)
        except ValueError:
            pass


def test_register_blocks_saves_chain_slack_and_store_with_secrets_hidden(registered_blocks_removed_after, prefect_api,
                                                                         monkeypatch, devnet):
    from blocks import ChainConnection, OpsStore, SlackConnection
    from blocks.register import register_blocks

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token-that-must-not-leak")
    monkeypatch.setenv("VVOPS_STORE_URL", "postgresql+psycopg://ops:hunter2-secret@127.0.0.1:5432/ops")

    lines = register_blocks(environment="devnet")

    printed = "\n".join(lines)
    assert "xoxb-test-token-that-must-not-leak" not in printed and "hunter2-secret" not in printed
    assert "vv-store: postgresql+psycopg://ops:********@127.0.0.1:5432/ops" in lines
    chain = ChainConnection.load("vv-chain-devnet")
    assert (chain.chain_id, chain.urls()) == (31337, [devnet.rpc_url])
    slack = SlackConnection.load("vv-slack")
    assert slack.enabled and slack.channels["ops"]
    store = OpsStore.load("vv-store")
    for shown in (repr(chain), repr(slack), repr(store), str(store)):
        assert "xoxb-test-token" not in shown and "hunter2" not in shown and devnet.rpc_url not in shown

    # What the UI and API show of the saved documents.
    documents = httpx.post(f"{prefect_api}/block_documents/filter", json={}, timeout=10).json()
    dumped = json.dumps(documents)
    assert "xoxb-test-token" not in dumped and "hunter2-secret" not in dumped
