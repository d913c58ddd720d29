"""Retry and time-out policies shared by tasks, by the system they talk to."""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

# Time-outs live on the clients (RPC, HTTP, Slack, the store's connect/busy timeouts), not on the tasks:
# a task time-out cannot interrupt blocking I/O in a worker thread, it only logs a warning per run.

# The store is local or on the LAN: a locked SQLite file or a PostgreSQL failover clears within seconds.
STORE_RETRIES: dict[str, Any] = dict(retries=3, retry_delay_seconds=[1, 2, 4])

# RPC nodes and HTTP endpoints: jittered backoff so parallel checks don't retry in lockstep.
NETWORK_RETRIES: dict[str, Any] = dict(retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=0.5),
                                       retry_jitter_factor=0.5)
