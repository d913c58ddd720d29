"""Prefect tasks grouped by the system they touch; each declares its retries and time-outs where it is defined."""
