"""Prefect blocks for the connections the flows use: the chain RPC, Slack and the ops store."""

from blocks.chain import ChainConnection
from blocks.slack import SlackConnection
from blocks.store import OpsStore

ALL_BLOCK_TYPES = (ChainConnection, SlackConnection, OpsStore)

__all__ = ["ALL_BLOCK_TYPES", "ChainConnection", "OpsStore", "SlackConnection"]
