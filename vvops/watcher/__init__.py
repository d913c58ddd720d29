"""The real-time chain watcher: follow blocks, evaluate rules from config/watcher.yaml, raise alerts.

Public API: `run_watcher(environment=..., stop_event=...)`, `ChainWatcher`, `ConditionEvaluator`,
`WatcherAlert`, the sinks (`AlertSink`, `StoreAlertSink`, `PrefectEventSink`), `load_watcher_config`.
"""

from vvops.watcher.conditions import BlockData, ChainLog, ChainTx, ConditionEvaluator, WatcherAlert, approval_matches
from vvops.watcher.config import WatcherConfig, load_watcher_config
from vvops.watcher.service import ChainWatcher, WatcherStats, run_watcher
from vvops.watcher.sinks import AlertSink, FanoutSink, ListSink, PrefectEventSink, StoreAlertSink

__all__ = ["AlertSink", "BlockData", "ChainLog", "ChainTx", "ChainWatcher", "ConditionEvaluator", "FanoutSink",
           "ListSink", "PrefectEventSink", "StoreAlertSink", "WatcherAlert", "WatcherConfig", "WatcherStats",
           "approval_matches", "load_watcher_config", "run_watcher"]
