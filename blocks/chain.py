"""The chain block: where to read a chain from, in priority order, and how deep a block must be to count."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, field_validator

from blocks.references import refuse_literal_secret, resolve
from vvops.chain.rpc import endpoint_label
from vvops.config.secrets import has_env_refs

BLOCK = "veritasvault-chain"


class ChainConnection(Block):
    """A chain to operate on: chain id and RPC URLs in priority order. API keys stay `${VAR}` in the URLs
    (resolved in the run that connects), so the block shows which variable each key comes from."""

    _block_type_name = "VeritasVault Chain"
    _block_type_slug = BLOCK
    _description = "Chain id, RPC URLs in failover order and the confirmation depth the watcher waits for."

    environment: str = Field(description="Environment name in config/environments.yaml, e.g. devnet.")
    chain_id: int = Field(description="EIP-155 chain id the RPC must answer with.")
    rpc_urls: list[str] = Field(description="RPC URLs, first is primary; later ones are failover. Write API keys "
                                            "as ${VAR}: the run reads them from its environment.")
    confirmations: int = Field(default=1, ge=0, description="Blocks on top before a block counts as final.")
    request_timeout_s: float = Field(default=5.0, gt=0, description="Timeout of one RPC request per URL.")

    @field_validator("rpc_urls")
    @classmethod
    def _keys_by_reference(cls, urls: list[str]) -> list[str]:
        for i, url in enumerate(urls):
            refuse_literal_secret(url, block=BLOCK, field=f"rpc_urls[{i}]", rpc=True,
                                  hint="put the key in an environment variable and write ${NAME} in the URL")
        return urls

    def urls(self) -> list[str]:
        """The RPC URLs in priority order with `${VAR}` resolved from this process's environment (for the RPC
        client only; EnvVarError names an unset variable)."""
        return [resolve(url, block=BLOCK, field=f"rpc_urls[{i}]") for i, url in enumerate(self.rpc_urls)]

    def labels(self) -> list[str]:
        """The RPC URLs as log-safe labels, in the same order: a template as written (it holds no secret),
        a literal URL as scheme://host:port."""
        return [url if has_env_refs(url) else endpoint_label(url) for url in self.rpc_urls]
