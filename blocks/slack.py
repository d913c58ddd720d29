"""The Slack block: which environment variables hold the bot token and signing secret, the API base URL and
the channel map from config/slack.yaml."""

from __future__ import annotations

import os

from prefect.blocks.core import Block
from pydantic import Field, field_validator

from blocks.references import refuse_literal_secret, refuse_non_env_name
from vvops.config import SecretStr

BLOCK = "veritasvault-slack"


class SlackConnection(Block):
    """Where notifications go; without a bot token in the run's environment messages stay in the outbox and the
    run's artifacts. The block names the variables only: the API never holds the token."""

    _block_type_name = "VeritasVault Slack"
    _block_type_slug = BLOCK
    _description = ("Names of the environment variables holding the Slack bot token and signing secret, the API "
                    "base URL and the channel for each kind of message.")

    bot_token_env: str = Field(default="SLACK_BOT_TOKEN",
                               description="Variable holding the xoxb- bot token; unset keeps Slack off.")
    signing_secret_env: str = Field(default="SLACK_SIGNING_SECRET",
                                    description="Variable holding the secret that verifies button clicks.")
    api_base_url: str = Field(default="https://slack.com/api/", description="Slack Web API base URL.")
    channels: dict[str, str] = Field(default_factory=dict, description="Purpose (ops, alerts, ...) to channel.")

    @field_validator("bot_token_env", "signing_secret_env")
    @classmethod
    def _names_not_values(cls, value: str, info) -> str:
        return refuse_non_env_name(value, block=BLOCK, field=info.field_name)

    @field_validator("api_base_url")
    @classmethod
    def _no_secret_in_url(cls, value: str) -> str:
        return refuse_literal_secret(value, block=BLOCK, field="api_base_url", hint="write the URL without it")

    def bot_token(self) -> SecretStr | None:
        """The token from this process's environment (None when the variable is unset or empty)."""
        value = os.environ.get(self.bot_token_env)
        return SecretStr(value) if value else None

    def signing_secret(self) -> SecretStr | None:
        value = os.environ.get(self.signing_secret_env)
        return SecretStr(value) if value else None

    @property
    def enabled(self) -> bool:
        return self.bot_token() is not None
