"""The names under which `vvops up` saves this project's blocks (shared by blocks/register.py and tasks/)."""

from __future__ import annotations

STORE_BLOCK = "vv-store"
SLACK_BLOCK = "vv-slack"


def chain_block_name(environment: str) -> str:
    return f"vv-chain-{environment}"
