"""The store block: the SQLAlchemy URL of the ops store (secret: it may carry a database password)."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class OpsStore(Block):
    """The ops store the flows persist check results, alerts, incidents, approvals and audit records to."""

    _block_type_name = "VeritasVault Ops Store"
    _block_type_slug = "veritasvault-ops-store"
    _description = "SQLAlchemy URL of the ops store: SQLite by default, PostgreSQL for production."

    url: SecretStr = Field(description="SQLAlchemy URL, e.g. postgresql+psycopg://user:pass@host/db.")

    def sqlalchemy_url(self) -> str:
        return self.url.get_secret_value()
