"""Blocks registered from config hold references, never secret values (issue 13 item 2): whatever the Prefect
API returns — `include_secrets: true` included — carries no secret, and the runs still get the right values."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fixtures.prefect_http import prefect_http

pytestmark = [pytest.mark.prefect]

RPC_KEY = "rpcKeyInPath7f3a9c0d1e2b4a5968"
BACKUP_KEY = "backupQueryKey5e8d7c6b4a3f2e1d"
DB_PASSWORD = "hunter2-db-password-91b7"
BOT_TOKEN = "xoxb-1111-2222-bottokenthatmustnotleak"
SIGNING_SECRET = "signing-secret-4c0ffee5eed"
SECRETS = (RPC_KEY, BACKUP_KEY, DB_PASSWORD, BOT_TOKEN, SIGNING_SECRET)
STORE_URL = f"postgresql+psycopg://ops:{DB_PASSWORD}@127.0.0.1:5432/ops"
RPC_TEMPLATES = ["https://eth.rpc.example/v2/${VV_TEST_RPC_KEY}",
                 "https://backup.rpc.example/eth?apikey=${VV_TEST_BACKUP_KEY}"]


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


@pytest.fixture
def secrets_in_env(monkeypatch, config_copy, devnet):
    """Every kind of secret the blocks refer to, set the way an operator sets them: in environment variables."""
    config_copy.set("environments.yaml", "environments.devnet.rpc_urls", [*RPC_TEMPLATES, "from-devnet"])
    monkeypatch.setenv("VVOPS_CONFIG_DIR", str(config_copy.dir))
    monkeypatch.setenv("VV_TEST_RPC_KEY", RPC_KEY)
    monkeypatch.setenv("VV_TEST_BACKUP_KEY", BACKUP_KEY)
    monkeypatch.setenv("VVOPS_STORE_URL", STORE_URL)
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    return [RPC_TEMPLATES[0].replace("${VV_TEST_RPC_KEY}", RPC_KEY),
            RPC_TEMPLATES[1].replace("${VV_TEST_BACKUP_KEY}", BACKUP_KEY), devnet.rpc_url]


def _leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def _everything_the_api_returns(api: httpx.Client) -> dict[str, str]:
    """Each read a caller with API access can make about blocks and runs, by endpoint, as response text."""
    docs = api.post("/block_documents/filter", json={"include_secrets": True})
    ours = [d for d in docs.json() if d["name"] in ("vv-chain-devnet", "vv-slack", "vv-store")]
    assert len(ours) == 3, [d["name"] for d in docs.json()]
    responses = {
        "block_documents/filter include_secrets": docs,
        "block_documents/filter": api.post("/block_documents/filter", json={"include_secrets": False}),
        "block_schemas/filter": api.post("/block_schemas/filter", json={}),
        "block_types/filter": api.post("/block_types/filter", json={}),
        "flow_runs/filter": api.post("/flow_runs/filter", json={"sort": "START_TIME_DESC"}),
        "task_runs/filter": api.post("/task_runs/filter", json={"sort": "EXPECTED_START_TIME_DESC"}),
        "logs/filter": api.post("/logs/filter", json={"sort": "TIMESTAMP_DESC"}),  # newest page
        "artifacts/filter": api.post("/artifacts/filter", json={"sort": "CREATED_DESC"}),
        "events/filter": api.post("/events/filter", json={}),
    }
    for doc in ours:
        responses[f"block_documents/{doc['name']}"] = api.get(f"/block_documents/{doc['id']}",
                                                              params={"include_secrets": "true"})
    for endpoint, response in responses.items():
        assert response.status_code == 200, (endpoint, response.status_code, response.text[:300])
    return {endpoint: response.text for endpoint, response in responses.items()}


def test_no_api_call_returns_a_secret_and_runs_still_resolve_them(registered_blocks_removed_after, secrets_in_env,
                                                                   prefect_api):
    from prefect import flow
    from prefect.logging.handlers import APILogHandler

    from blocks.register import register_blocks
    from tasks.notify import slack_settings
    from tasks.runtime import chain_rpc_urls, store_url

    lines = register_blocks(environment="devnet")
    assert _leaked("\n".join(lines)) == [], lines
    assert "vv-store: ${VVOPS_STORE_URL} = postgresql+psycopg://ops:********@127.0.0.1:5432/ops" in lines, lines
    assert "vv-slack: bot token from $SLACK_BOT_TOKEN" in lines, lines

    @flow(name="read-connections")
    def read_connections() -> dict[str, bool]:  # returns verdicts only: run results are API-readable too
        from blocks import ChainConnection, SlackConnection
        from tasks.runtime import _load_block

        from prefect.logging import get_run_logger

        slack = slack_settings("devnet")
        get_run_logger().info("RPC %s; %r", _load_block(ChainConnection, "vv-chain-devnet").labels(), slack)
        return {"rpc": chain_rpc_urls("devnet")[0] == secrets_in_env, "store": store_url() == STORE_URL,
                "token": slack.enabled and slack.token.get_secret_value() == BOT_TOKEN,
                "signing": _load_block(SlackConnection, "vv-slack").signing_secret().get_secret_value() == SIGNING_SECRET}

    assert read_connections() == {"rpc": True, "store": True, "token": True, "signing": True}

    APILogHandler().flush()  # the run's log lines reach the API in the background
    api = prefect_http(prefect_api, timeout=30)
    texts = _everything_the_api_returns(api)
    assert "${VV_TEST_RPC_KEY}" in texts["logs/filter"]      # the lines are there, with templates, not keys
    assert {endpoint: _leaked(text) for endpoint, text in texts.items() if _leaked(text)} == {}
    # What an SRE sees in the UI instead: where each secret comes from.
    data = {d["name"]: d["data"] for d in api.post("/block_documents/filter", json={"include_secrets": True}).json()}
    assert data["vv-chain-devnet"]["rpc_urls"] == [*RPC_TEMPLATES, secrets_in_env[2]]
    assert (data["vv-slack"]["bot_token_env"], data["vv-slack"]["signing_secret_env"]) == ("SLACK_BOT_TOKEN",
                                                                                          "SLACK_SIGNING_SECRET")
    assert data["vv-store"]["url"] == "${VVOPS_STORE_URL}"


def test_registering_again_removes_a_secret_an_older_block_stored(registered_blocks_removed_after, secrets_in_env,
                                                                   prefect_api):
    """Before, vv-slack held `bot_token` itself; `save(overwrite=True)` merges, so that key would survive."""
    from blocks.register import register_blocks

    register_blocks(environment="devnet")
    api = prefect_http(prefect_api, timeout=30)
    slack = next(d for d in api.post("/block_documents/filter", json={}).json() if d["name"] == "vv-slack")
    old = api.patch(f"/block_documents/{slack['id']}", json={"data": {"bot_token": BOT_TOKEN}, "merge_existing_data": True})
    assert old.status_code == 204, old.text
    assert BOT_TOKEN in api.get(f"/block_documents/{slack['id']}", params={"include_secrets": "true"}).text

    register_blocks(environment="devnet")

    again = api.get(f"/block_documents/{slack['id']}", params={"include_secrets": "true"}).json()
    assert "bot_token" not in again["data"] and BOT_TOKEN not in json.dumps(again)


def test_a_block_refuses_a_literal_secret_in_one_line_without_echoing_it():
    from blocks import ChainConnection, OpsStore, SlackConnection
    from vvops.config import ConfigError

    attempts = [lambda: ChainConnection(environment="mainnet", chain_id=1, rpc_urls=[f"https://a.example/v2/{RPC_KEY}"]),
                lambda: ChainConnection(environment="mainnet", chain_id=1, rpc_urls=[f"https://b.example/?k={BACKUP_KEY}"]),
                lambda: OpsStore(url=STORE_URL),
                lambda: SlackConnection(bot_token_env=BOT_TOKEN)]
    for attempt in attempts:
        with pytest.raises(ConfigError) as refused:
            attempt()
        message = str(refused.value)
        assert "\n" not in message and _leaked(message) == [], message
    assert "set VVOPS_STORE_URL and save ${VVOPS_STORE_URL}" in str(pytest.raises(ConfigError, attempts[2]).value)


def test_literal_urls_without_a_secret_stay_literal(registered_blocks_removed_after, ops_flows, devnet, monkeypatch):
    """The devnet's local RPC and a SQLite store have nothing to hide: the UI shows them as they are."""
    from blocks import ChainConnection, OpsStore, SlackConnection
    from blocks.register import register_blocks

    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    lines = register_blocks(environment="devnet")

    assert ChainConnection.load("vv-chain-devnet").rpc_urls == [devnet.rpc_url]
    assert OpsStore.load("vv-store").url.startswith("sqlite:///")
    assert not SlackConnection.load("vv-slack").enabled
    assert "vv-slack: no bot token ($SLACK_BOT_TOKEN unset): messages stay in the outbox and run artifacts" in lines
