"""The store block: the SQLAlchemy URL of the ops store, with any password left as `${VAR}`."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, field_validator

from blocks.references import refuse_literal_secret, resolve

BLOCK = "veritasvault-ops-store"


class OpsStore(Block):
    """The ops store the flows persist check results, alerts, incidents, approvals and audit records to."""

    _block_type_name = "VeritasVault Ops Store"
    _block_type_slug = BLOCK
    _description = "SQLAlchemy URL of the ops store: SQLite by default, PostgreSQL for production."

    url: str = Field(description="SQLAlchemy URL, e.g. sqlite:///ops.db, or ${VVOPS_STORE_URL} when the URL carries "
                                 "a password: the run reads the variable from its environment.")

    @field_validator("url")
    @classmethod
    def _password_by_reference(cls, url: str) -> str:
        return refuse_literal_secret(url, block=BLOCK, field="url",
                                     hint="set VVOPS_STORE_URL and save ${VVOPS_STORE_URL} as the url")

    def sqlalchemy_url(self) -> str:
        """The URL with `${VAR}` resolved from this process's environment (EnvVarError names an unset one)."""
        return resolve(self.url, block=BLOCK, field="url")
