"""Small measurement helpers shared by the benchmark scripts."""

from __future__ import annotations

from pathlib import Path


def rss_mb() -> float:
    """This process's resident memory in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], p: float) -> float:
    """The p-th percentile with linear interpolation; NaN for no values."""
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def immediate_alerting(engine, *, slack_url: str):
    """The alert service and Slack outbox notifier the watcher benchmarks use: config/alerting.yaml with
    group_interval 0, so each alert's notification goes out at once and its latency can be measured."""
    from datetime import timedelta

    from tests.slack_standin import DEFAULT_TOKEN
    from vvops.alerting.service import AlertService
    from vvops.config import load_config
    from vvops.watcher.sinks import OutboxNotifier

    cfg = load_config(environment="devnet")
    route = cfg.alerting.route.model_copy(update={"group_interval": timedelta(0)})
    cfg = cfg.model_copy(update={"alerting": cfg.alerting.model_copy(update={"route": route})})
    notifier = OutboxNotifier(engine, dict(cfg.slack.channels.model_dump()), token=DEFAULT_TOKEN,
                              base_url=slack_url, timeout_s=5)
    return AlertService(engine, cfg), notifier
