"""Flow-run durations and outcomes from the Prefect API (the runs the team sees in the Prefect UI).

On scrape (at most once per `cache_s`; Prometheus scrapes every 15-30 s, the answer is reused in between) two
requests: `POST /flow_runs/filter` for the runs that finished in the last `window` (newest first, at most
`limit`), then `POST /flows/filter` for their flow names. No Prefect import: plain httpx with a short timeout,
so a slow or down API costs a scrape at most `timeout_s` and shows as `vvops_prefect_up 0`.

`vvops_flow_run_last_duration_seconds` carries the newest run's id (one series per flow, bounded by our
deployments): the dashboards link from it to the run in the Prefect UI.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import httpx
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

FINISHED = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
DURATION_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)


def _duration(run: dict[str, Any]) -> float | None:
    value = run.get("total_run_time")
    if isinstance(value, (int, float)) and value > 0:
        return float(value)
    start, end = run.get("start_time"), run.get("end_time")
    if start and end:
        return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())
    return None


def auth_headers() -> dict[str, str]:
    """The Prefect API's credentials as the rest of vvops sends them (PREFECT_API_KEY bearer for Prefect Cloud,
    PREFECT_API_AUTH_STRING basic auth for a self-hosted server)."""
    from vvops.services import prefect_api_headers

    return prefect_api_headers()


class PrefectRunsCollector(Collector):
    def __init__(self, api_url: str, *, window: timedelta = timedelta(hours=24), limit: int = 200,
                 cache_s: float = 10.0, timeout_s: float = 3.0):
        self.api_url = api_url.rstrip("/")
        self.window = window
        self.limit = limit
        self.cache_s = cache_s
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Any]] | None = None

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self.cache_s:
                return self._cached[1]
            families = self._read()
            self._cached = (time.monotonic(), families)
            return families

    def _read(self) -> list[Any]:
        up = GaugeMetricFamily("vvops_prefect_up", "1 when the Prefect API answered")
        try:
            runs, names = self._fetch()
        except (httpx.HTTPError, ValueError, KeyError) as error:
            log.warning("Prefect flow runs unavailable: %s", type(error).__name__)
            up.add_metric([], 0.0)
            return [up]
        up.add_metric([], 1.0)
        window_h = f"{self.window.total_seconds() / 3600:g}h"
        count = GaugeMetricFamily("vvops_flow_runs_finished", f"Flow runs finished in the last {window_h}, by state",
                                  labels=["flow", "state"])
        maximum = GaugeMetricFamily("vvops_flow_run_duration_max_seconds",
                                    f"Longest flow run in the last {window_h}", labels=["flow"])
        total = GaugeMetricFamily("vvops_flow_run_duration_sum_seconds",
                                  f"Summed run time of the flow runs finished in the last {window_h}", labels=["flow"])
        last = GaugeMetricFamily("vvops_flow_run_last_duration_seconds",
                                 "Run time of each flow's newest finished run (its id for drill-down)",
                                 labels=["flow", "state", "flow_run_id"])
        buckets = GaugeMetricFamily("vvops_flow_runs_slower_than",
                                    f"Flow runs of the last {window_h} that ran longer than `le` seconds",
                                    labels=["flow", "le"])
        by_flow: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for run in runs:   # newest first
            by_flow[names.get(run.get("flow_id"), "unknown")].append(run)
        for flow, flow_runs in sorted(by_flow.items()):
            states: dict[str, int] = defaultdict(int)
            durations = []
            for run in flow_runs:
                states[str(run.get("state_type") or "UNKNOWN").lower()] += 1
                d = _duration(run)
                if d is not None:
                    durations.append(d)
            for st, n in sorted(states.items()):
                count.add_metric([flow, st], float(n))
            if durations:
                maximum.add_metric([flow], max(durations))
                total.add_metric([flow], sum(durations))
                for le in DURATION_BUCKETS:
                    buckets.add_metric([flow, f"{le:g}"], float(sum(1 for d in durations if d > le)))
            newest = flow_runs[0]
            d = _duration(newest)
            if d is not None:
                last.add_metric([flow, str(newest.get("state_type") or "").lower(), str(newest["id"])], d)
        return [up, count, maximum, total, last, buckets]

    def _fetch(self) -> tuple[list[dict[str, Any]], dict[str, str]]:
        after = (datetime.now(timezone.utc) - self.window).isoformat()
        with httpx.Client(timeout=self.timeout_s, headers=auth_headers()) as http:
            r = http.post(f"{self.api_url}/flow_runs/filter", json={
                "flow_runs": {"state": {"type": {"any_": list(FINISHED)}}, "end_time": {"after_": after}},
                "sort": "END_TIME_DESC", "limit": self.limit})
            r.raise_for_status()
            runs = r.json()
            ids = sorted({run["flow_id"] for run in runs if run.get("flow_id")})
            names: dict[str, str] = {}
            if ids:
                f = http.post(f"{self.api_url}/flows/filter", json={"flows": {"id": {"any_": ids}}, "limit": len(ids)})
                f.raise_for_status()
                names = {flow["id"]: flow["name"] for flow in f.json()}
        return runs, names
