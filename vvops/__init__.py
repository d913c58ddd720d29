"""VeritasVault Ops core: the playbook's rules as plain Python (no Prefect imports outside vvops.cli)."""

__version__ = "0.1.0"
