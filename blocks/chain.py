"""The chain block: where to read a chain from, in priority order, and how deep a block must be to count."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from vvops.chain.rpc import endpoint_label


class ChainConnection(Block):
    """A chain to operate on: chain id, RPC URLs in priority order (secret: they often carry API keys)."""

    _block_type_name = "VeritasVault Chain"
    _block_type_slug = "veritasvault-chain"
    _description = "Chain id, RPC URLs in failover order and the confirmation depth the watcher waits for."

    environment: str = Field(description="Environment name in config/environments.yaml, e.g. devnet.")
    chain_id: int = Field(description="EIP-155 chain id the RPC must answer with.")
    rpc_urls: list[SecretStr] = Field(description="RPC URLs, first is primary; later ones are failover.")
    confirmations: int = Field(default=1, ge=0, description="Blocks on top before a block counts as final.")
    request_timeout_s: float = Field(default=5.0, gt=0, description="Timeout of one RPC request per URL.")

    def urls(self) -> list[str]:
        """The RPC URLs in priority order, with secrets revealed (for the RPC client only)."""
        return [url.get_secret_value() for url in self.rpc_urls]

    def labels(self) -> list[str]:
        """The RPC URLs as log-safe labels, in the same order."""
        return [endpoint_label(url) for url in self.urls()]
