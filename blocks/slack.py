"""The Slack block: bot token (secret), API base URL and the channel map from config/slack.yaml."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class SlackConnection(Block):
    """Where notifications go; without a bot token messages stay in the outbox and the run's artifacts."""

    _block_type_name = "VeritasVault Slack"
    _block_type_slug = "veritasvault-slack"
    _description = "Slack bot token, signing secret, API base URL and the channel for each kind of message."

    bot_token: SecretStr | None = Field(default=None, description="xoxb- bot token; empty keeps Slack off.")
    signing_secret: SecretStr | None = Field(default=None, description="Verifies interactive button clicks.")
    api_base_url: str = Field(default="https://slack.com/api/", description="Slack Web API base URL.")
    channels: dict[str, str] = Field(default_factory=dict, description="Purpose (ops, alerts, ...) to channel.")

    @property
    def enabled(self) -> bool:
        return self.bot_token is not None and bool(self.bot_token.get_secret_value())
