"""Blocks hold where a secret lives, never the secret itself.

The Prefect API returns a block document's data to any caller it lets in (`include_secrets: true` unmasks
SecretStr fields), so a value saved in a block is a value published. Our blocks therefore keep `${VAR}`
templates and names of environment variables; the process that uses a connection resolves them from its own
environment. A Prefect `Secret` block is no way out: its value comes back through the same API call.
"""

from __future__ import annotations

from prefect.blocks.core import Block

from vvops.config import ConfigError, ConfigProblem, resolve_env
from vvops.config.secrets import ENV_NAME, literal_secret_in


def refuse_literal_secret(value: str, *, block: str, field: str, hint: str, rpc: bool = False) -> str:
    """`value` unchanged, or ConfigError (one line, never the value) when it holds a secret literally.

    Raised from pydantic validators on purpose: ConfigError is not a ValueError, so pydantic lets it through
    as is instead of wrapping it in a ValidationError that would print the offending input."""
    reason = literal_secret_in(value, rpc=rpc)
    if reason:
        raise ConfigError(ConfigProblem(f"{block} block", field, f"{reason}; the Prefect API would return it", hint))
    return value


def refuse_non_env_name(value: str, *, block: str, field: str) -> str:
    """`value` when it is an environment variable name (what the `*_env` fields hold), else ConfigError."""
    if not ENV_NAME.match(value):
        raise ConfigError(ConfigProblem(f"{block} block", field, "not an environment variable name",
                                        "write the variable's name, e.g. SLACK_BOT_TOKEN; its value stays in "
                                        "the environment"))
    return value


def resolve(template: str, *, block: str, field: str) -> str:
    """`${VAR}` parts replaced from this process's environment (EnvVarError names an unset variable)."""
    return resolve_env(template, file=f"{block} block", key_path=field)


def save_replacing(block: Block, name: str) -> None:
    """Save `block` under `name`, replacing the stored data.

    `Block.save(overwrite=True)` merges into the stored document, so a field an older version of the block had
    (`bot_token` holding the token itself) would stay in the document and readable through the API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import BlockDocumentUpdate

    block.save(name, overwrite=True, _sync=True)
    document = block._to_block_document(name=name, include_secrets=True)
    with get_client(sync_client=True) as client:
        stored = client.read_block_document_by_name(name, block.get_block_type_slug(), include_secrets=False)
        if set(stored.data) - set(document.data):
            client.update_block_document(stored.id, BlockDocumentUpdate(
                block_schema_id=document.block_schema_id, data=document.data, merge_existing_data=False))
