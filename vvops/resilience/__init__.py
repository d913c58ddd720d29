"""Operational Resilience: backups, restores and the evidence a recovery drill produces."""
