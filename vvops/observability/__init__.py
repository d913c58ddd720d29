"""Metrics the way SREs run them: Prometheus exposition (`/metrics`), Grafana dashboards as code, Alertmanager
interop.

- `watcher_metrics.WatcherMetrics`: per-block figures the watcher counts as it processes ranges (transactions,
  reverts and gas by function, deposits/withdrawals, pauses, upgrades, RPC latency), plus live head/lag.
- `store_collector.StoreCollector`: a custom collector reading current state from the ops store on scrape
  (alerts, incidents, outbox, approvals, check results, watcher checkpoints).
- `prefect_collector.PrefectRunsCollector`: flow-run durations and outcomes from the Prefect API.
- `exporter`: the `vvops metrics-endpoint` HTTP service (`/metrics`, the Alertmanager webhook receiver).
- `alertmanager`: our alerts to an Alertmanager (v2 API) and Alertmanager's webhook alerts into ours.
- `dashboards`: the Grafana dashboards and provisioning files under deploy/grafana/.
"""

METRIC_PREFIX = "vvops"
