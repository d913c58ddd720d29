"""Register the block types and save this environment's blocks from config (called by `vvops up`)."""

from __future__ import annotations

import os

from pydantic import SecretStr

from blocks.chain import ChainConnection
from blocks.names import SLACK_BLOCK, STORE_BLOCK, chain_block_name
from blocks.slack import SlackConnection
from blocks.store import OpsStore
from vvops.config import EnvVarError, load_config
from vvops.store.db import redact_url

__all__ = ["SLACK_BLOCK", "STORE_BLOCK", "chain_block_name", "register_blocks"]


def register_blocks(*, environment: str) -> list[str]:
    """Save the chain, Slack and store blocks; return one log-safe line per block."""
    cfg = load_config(environment=environment)
    for block_type in (ChainConnection, SlackConnection, OpsStore):
        block_type.register_type_and_schema()
    lines = []
    try:
        urls = [u.get_secret_value() for u in cfg.env.resolve_rpc_urls(name=environment)]
    except EnvVarError as exc:
        lines.append(f"{chain_block_name(environment)}: not saved: {exc}")
    else:
        chain = ChainConnection(environment=environment, chain_id=cfg.env.chain_id, rpc_urls=[SecretStr(u) for u in urls],
                                confirmations=cfg.env.confirmations, request_timeout_s=cfg.env.rpc_timeout_s)
        chain.save(chain_block_name(environment), overwrite=True)
        lines.append(f"{chain_block_name(environment)}: chain {cfg.env.chain_id}, RPC {', '.join(chain.labels())}")

    token = os.environ.get(cfg.slack.bot_token_env) or None
    signing = os.environ.get(cfg.slack.signing_secret_env) or None
    slack = SlackConnection(bot_token=token, signing_secret=signing, api_base_url=str(cfg.slack.api_base_url),
                            channels=cfg.slack.channels.model_dump())
    slack.save(SLACK_BLOCK, overwrite=True)
    lines.append(f"{SLACK_BLOCK}: {'bot token from $' + cfg.slack.bot_token_env if token else 'no bot token: messages stay in the outbox and run artifacts'}")

    url = cfg.store.resolved_url().get_secret_value()
    OpsStore(url=SecretStr(url)).save(STORE_BLOCK, overwrite=True)
    lines.append(f"{STORE_BLOCK}: {redact_url(url)}")
    return lines
