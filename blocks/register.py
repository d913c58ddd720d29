"""Register the block types and save this environment's blocks from config (called by `vvops up`).

The blocks hold references, not secrets (see blocks/references.py): RPC URLs as configured (`${VAR}` kept),
the names of the Slack variables, and the store URL — or `${VVOPS_STORE_URL}` when that URL carries a
password. A run that uses a block needs the same variables in its environment (`vvops up` passes its own).
"""

from __future__ import annotations

import os

from blocks.chain import ChainConnection
from blocks.names import SLACK_BLOCK, STORE_BLOCK, chain_block_name
from blocks.references import save_replacing
from blocks.slack import SlackConnection
from blocks.store import OpsStore
from vvops.config import ConfigError, OpsConfig, load_config
from vvops.config.loader import devnet_rpc_url
from vvops.config.schema import FROM_DEVNET, StoreSettings
from vvops.config.secrets import env_refs, literal_secret_in
from vvops.store.db import default_store_url, redact_url

__all__ = ["SLACK_BLOCK", "STORE_BLOCK", "chain_block_name", "register_blocks", "store_url_template"]


def register_blocks(*, environment: str) -> list[str]:
    """Save the chain, Slack and store blocks; return one log-safe line per block."""
    cfg = load_config(environment=environment)
    for block_type in (ChainConnection, SlackConnection, OpsStore):
        block_type.register_type_and_schema()
    return [_save_chain(cfg, environment), _save_slack(cfg), _save_store(cfg)]


def _save_chain(cfg: OpsConfig, environment: str) -> str:
    name = chain_block_name(environment)
    try:  # `from-devnet` becomes the devnet's local URL (no secret in it); `${VAR}` stays for the run to resolve
        templates = [devnet_rpc_url() if url == FROM_DEVNET else url for url in cfg.env.rpc_urls]
        chain = ChainConnection(environment=environment, chain_id=cfg.env.chain_id, rpc_urls=templates,
                                confirmations=cfg.env.confirmations, request_timeout_s=cfg.env.rpc_timeout_s)
    except ConfigError as exc:
        return f"{name}: not saved: {exc}"
    save_replacing(chain, name)
    unset = sorted({var for url in templates for var in env_refs(url) if not os.environ.get(var)})
    note = f" (runs need {', '.join('$' + v for v in unset)}: not set here)" if unset else ""
    return f"{name}: chain {cfg.env.chain_id}, RPC {', '.join(chain.labels())}{note}"


def _save_slack(cfg: OpsConfig) -> str:
    slack = SlackConnection(bot_token_env=cfg.slack.bot_token_env, signing_secret_env=cfg.slack.signing_secret_env,
                            api_base_url=str(cfg.slack.api_base_url), channels=cfg.slack.channels.model_dump())
    save_replacing(slack, SLACK_BLOCK)
    if slack.enabled:
        return f"{SLACK_BLOCK}: bot token from ${slack.bot_token_env}"
    return f"{SLACK_BLOCK}: no bot token (${slack.bot_token_env} unset): messages stay in the outbox and run artifacts"


def store_url_template(cfg: OpsConfig) -> str:
    """What the store block holds: `${VVOPS_STORE_URL}` when that variable's URL carries a password, else the
    URL itself (config's store.url cannot hold a literal password; its `${VAR}` parts are kept)."""
    if os.environ.get(StoreSettings.URL_ENV, "").strip():
        url = cfg.store.resolved_url().get_secret_value()
        return "${" + StoreSettings.URL_ENV + "}" if literal_secret_in(url) else url
    return default_store_url(cfg.store.url)


def _save_store(cfg: OpsConfig) -> str:
    template = store_url_template(cfg)
    save_replacing(OpsStore(url=template), STORE_BLOCK)
    shown = redact_url(cfg.store.resolved_url().get_secret_value())
    return f"{STORE_BLOCK}: {template} = {shown}" if template != shown else f"{STORE_BLOCK}: {shown}"
