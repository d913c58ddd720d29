"""A real Prometheus (Debian's) scrapes the watcher's and the exporter's /metrics while the devnet runs a drain:
the PromQL queries an SRE would type return the series the scenario must produce, and every query of every
Grafana dashboard panel returns data."""

from __future__ import annotations

import pytest

from tests.fixtures.prometheus_fixtures import PrometheusServer, require_binary
from tests.watcher_helpers import StoreView, WatcherThread, wait_until
from vvops.devnet import AnvilProcess, deploy_devnet, free_port
from vvops.devnet.scenarios import run_scenario
from vvops.observability.exporter import exporter_app, ops_registry, run_in_thread, serve_registry
from vvops.observability.watcher_metrics import WatcherMetrics
from vvops.store import make_engine, migrate

pytestmark = pytest.mark.devnet


def _seed_people_and_procedures(engine, flow_run_id: str) -> None:
    """What other procedures write in a running system (an incident with its incident-response run, an approval
    waiting, a daily-check run, a delivered Slack message), so every dashboard panel has its input."""
    from datetime import datetime, timedelta, timezone

    from vvops.store import session_scope
    from vvops.store.models import (ApprovalRequest, CheckResult, CheckRun, Incident, IncidentEvent,
                                    NotificationOutbox)

    now = datetime.now(timezone.utc)
    with session_scope(engine) as s:
        incident = Incident(key="INC-0001", title="drain on devnet", type="security", severity="P0", status="open",
                            opened_at=now)
        s.add(incident)
        s.flush()
        s.add(IncidentEvent(incident_id=incident.id, kind="opened", data={"flow_run_id": flow_run_id}))
        s.add(ApprovalRequest(procedure="parameter_change", subject="vault.feeBps 50 -> 60", risk="medium",
                              proposer="mei", required_role="protocol_lead", requested_at=now - timedelta(minutes=5)))
        run = CheckRun(flow_name="daily-checks", environment="devnet", status="ok", started_at=now,
                       finished_at=now)
        s.add(run)
        s.flush()
        s.add_all([CheckResult(run_id=run.id, check_id="protocol.contract_state.vault.paused", area="protocol",
                               status="ok"),
                   CheckResult(run_id=run.id, check_id="infrastructure.rpc_latency.devnet", area="infrastructure",
                               status="warn")])
        s.add(NotificationOutbox(idempotency_key="probe-1", sequence=1, channel="#ops", kind="alert.firing",
                                 payload={}, status="sent", created_at=now - timedelta(seconds=2), sent_at=now))


@pytest.fixture(scope="module")
def flow_run_id(prefect_api):
    """One finished flow run on the Prefect test server, for the flow-run metrics."""
    from prefect import flow

    @flow(name="metrics-probe")
    def probe() -> str:
        from prefect.runtime import flow_run

        return flow_run.id

    return probe()


@pytest.fixture(scope="module")
def scraped(tmp_path_factory, prefect_api, flow_run_id):
    require_binary("prometheus")
    tmp = tmp_path_factory.mktemp("prometheus")
    node = AnvilProcess(free_port(), block_time=1, log_path=tmp / "anvil.log")
    node.start()
    stack = []
    try:
        info = deploy_devnet(node.rpc_url)
        url = f"sqlite:///{tmp / 'ops.db'}"
        migrate(url)
        engine = make_engine(url)
        metrics = WatcherMetrics()
        watcher_port, exporter_port = free_port(), free_port()
        watcher_http = serve_registry(metrics.registry, "127.0.0.1", watcher_port)
        stack.append(watcher_http.shutdown)
        _seed_people_and_procedures(engine, flow_run_id)
        server, thread = run_in_thread(exporter_app(ops_registry(engine, prefect_api_url=prefect_api)),
                                       "127.0.0.1", exporter_port)
        stack.append(lambda: (setattr(server, "should_exit", True), thread.join(10)))
        watcher = WatcherThread(url, [node.rpc_url], info, metrics=metrics).start()
        stack.append(watcher.stop)
        view = StoreView(url)
        wait_until(lambda: view.checkpoint() is not None, 30, what="the watcher's first block")
        prom = PrometheusServer([{"job": "vvops-watcher", "target": f"127.0.0.1:{watcher_port}"},
                                 {"job": "vvops", "target": f"127.0.0.1:{exporter_port}"}], tmp)
        stack.append(prom.stop)
        prom.wait_for('up{job="vvops"} == 1')
        prom.wait_for('up{job="vvops-watcher"} == 1')
        report = run_scenario("drain", devnet_info=info)
        wait_until(lambda: {"tvl_drop", "large_withdrawals"} <= {a.rule for a in view.alerts()}, 30,
                   what="the drain's alerts in the store")
        yield {"prom": prom, "report": report, "view": view, "engine": engine, "info": info, "metrics": metrics}
        engine.dispose()
    finally:
        for stop in reversed(stack):
            stop()
        node.stop()


def test_drain_fires_p0_in_prometheus(scraped):
    prom = scraped["prom"]
    (p0,) = prom.wait_for('vvops_alerts_firing{job="vvops", severity="P0"} > 0')
    assert float(p0["value"][1]) >= 1
    assert prom.wait_for('vvops_alerts_firing{severity="P1"} > 0')
    assert prom.wait_for('vvops_store_up{job="vvops"} == 1')


def test_watcher_series_after_the_drain(scraped):
    prom = scraped["prom"]
    withdrawals = len(scraped["report"].txs)
    got = prom.wait_for(f'vvops_contract_transactions_total{{contract="vault", function="withdraw"}} >= {withdrawals}')
    assert got[0]["metric"]["chain"] == "devnet"
    assert prom.wait_for('vvops_contract_gas_used_total{function="withdraw"} > 0')
    assert prom.wait_for(f'vvops_vault_withdrawals_total{{contract="vault"}} >= {withdrawals}')
    # TVL in token units (18 decimals read from the vault), after the drain well below what it was
    tvl_after = scraped["report"].details["tvl_after"] / 10**18
    (tvl,) = prom.wait_for(f'vvops_vault_tvl_tokens{{contract="vault"}} < {tvl_after + 1}')
    assert abs(float(tvl["value"][1]) - tvl_after) < 1
    assert prom.wait_for('vvops_contract_paused{contract="vault"} == 0')
    assert prom.wait_for('vvops_watcher_lag_blocks{chain="devnet"} >= 0')
    assert prom.wait_for('vvops_chain_head_block{chain="devnet"} > 0')
    assert prom.wait_for('sum by (endpoint) (vvops_rpc_request_duration_seconds_count) > 0')
    assert prom.wait_for('vvops_watcher_alerts_raised_total{severity="P0"} >= 1')
    assert prom.wait_for('histogram_quantile(0.95, sum by (le) (rate(vvops_watcher_range_duration_seconds_bucket[1m]))) > 0')


def test_exposition_follows_the_naming_conventions(scraped):
    """Counters end in _total, units are in the names, no label has an unbounded value (addresses, hashes)."""
    from prometheus_client.parser import text_string_to_metric_families

    from prometheus_client import generate_latest

    text = generate_latest(scraped["metrics"].registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if family.type == "counter":
                assert sample.name.endswith(("_total", "_created")), sample.name
            for value in sample.labels.values():
                assert not value.startswith("0x"), (sample.name, sample.labels)


def test_flow_runs_from_prefect(scraped, flow_run_id):
    (last,) = scraped["prom"].wait_for('vvops_flow_run_last_duration_seconds{flow="metrics-probe"}')
    assert last["metric"]["flow_run_id"] == flow_run_id and last["metric"]["state"] == "completed"
    assert scraped["prom"].wait_for('vvops_flow_runs_finished{flow="metrics-probe", state="completed"} == 1')


def test_every_dashboard_panel_returns_data(scraped):
    """Each query of each generated dashboard, as Grafana would send it (all chains, a 1m rate interval)."""
    from vvops.observability.dashboards import DASHBOARDS, build_dashboard, panel_queries

    prom = scraped["prom"]
    empty = []
    for spec in DASHBOARDS:
        for title, expr in panel_queries(build_dashboard(spec)):
            promql = expr.replace("$chain", ".*").replace("$__rate_interval", "1m")
            try:
                prom.wait_for(promql, timeout=15)
            except AssertionError:
                empty.append(f"{spec.uid} / {title}: {promql}")
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_incident_drill_down_reaches_the_run(scraped, flow_run_id):
    (row,) = scraped["prom"].wait_for('vvops_incident_open_info{incident="INC-0001"}')
    assert row["metric"]["flow_run_id"] == flow_run_id and row["metric"]["severity"] == "P0"
