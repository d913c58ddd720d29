"""Grafana dashboards as code: the panels as data, built with grafana-foundation-sdk (Grafana's own typed
builders, pure Python, installs on 3.11), written with their provisioning files under deploy/grafana/.

    python -m vvops.observability.dashboards            # regenerate deploy/grafana/ (commit the result)
    python -m vvops.observability.dashboards --check    # exit 1 when the committed files are out of date

Every panel queries the `vvops-prometheus` datasource (provisioned by deploy/grafana/provisioning/datasources);
`$chain` filters by chain, `$prefect_ui` is where drill-down links go (a run in the Prefect UI: the incident's
incident-response run, a flow's newest run). The test suite runs every panel's query against a real
Prometheus that scraped a devnet scenario and requires data from each.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATASOURCE_UID = "vvops-prometheus"
DEFAULT_PREFECT_UI = "http://127.0.0.1:4200"
OUT_DIR = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
RUN_LINK = "${prefect_ui}/runs/flow-run/"


@dataclass(frozen=True)
class PanelSpec:
    title: str
    exprs: tuple[tuple[str, str], ...]        # (PromQL, legend)
    kind: str = "timeseries"                  # timeseries | stat | table
    unit: str = "short"
    description: str = ""
    link: tuple[str, str] | None = None       # (title, url) data link for drill-down
    width: int = 8


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    description: str
    rows: tuple[tuple[str, tuple[PanelSpec, ...]], ...]
    tags: tuple[str, ...] = field(default=("vvops",))


C = 'chain=~"$chain"'


def _ts(title: str, *exprs: tuple[str, str], **kw: Any) -> PanelSpec:
    return PanelSpec(title, tuple(exprs), **kw)


def _stat(title: str, expr: str, **kw: Any) -> PanelSpec:
    return PanelSpec(title, ((expr, title),), kind="stat", width=kw.pop("width", 4), **kw)


INCIDENT_LINK = ("Incident-response run in Prefect", RUN_LINK + "${__data.fields.flow_run_id}")
FLOW_RUN_LINK = ("Newest run in Prefect", RUN_LINK + "${__data.fields.flow_run_id}")

DASHBOARDS: tuple[DashboardSpec, ...] = (
    DashboardSpec("vvops-overview", "VeritasVault Ops — operations overview",
                  "Is anything on fire, is the watcher keeping up, is anyone waiting on us.", (
        ("Now", (
            _stat("P0 alerts firing", 'sum(vvops_alerts_firing{severity="P0"})'),
            _stat("P1 alerts firing", 'sum(vvops_alerts_firing{severity="P1"})'),
            _stat("Open incidents", "sum(vvops_incidents_open)"),
            _stat("Approvals waiting", "sum(vvops_approvals_waiting_all)"),
            _stat("Slack outbox depth", 'sum(vvops_outbox_messages{status=~"pending|sending"})'),
            _stat("Watcher lag (blocks)", f"max(vvops_watcher_lag_blocks{{{C}}})"),
        )),
        ("Chains", (
            _ts("Head and processed block", (f"vvops_chain_head_block{{{C}}}", "head {{chain}}"),
                (f"vvops_watcher_processed_block{{{C}}}", "processed {{chain}}"), unit="none", width=12),
            _ts("Watcher lag", (f"vvops_watcher_lag_blocks{{{C}}}", "{{chain}}"), unit="none", width=12),
        )),
        ("Alerts, incidents, runs", (
            _ts("Alerts firing by severity", ("sum by (severity) (vvops_alerts_firing)", "{{severity}}"), width=8),
            PanelSpec("Open incidents", (("vvops_incident_open_info", ""),), kind="table", width=8,
                      description="Newest open incidents; click a row for its incident-response run",
                      link=INCIDENT_LINK),
            PanelSpec("Newest run of each flow", (("vvops_flow_run_last_duration_seconds", ""),), kind="table",
                      width=8, unit="s", link=FLOW_RUN_LINK,
                      description="Duration and state of each flow's newest finished run; click for the run"),
        )),
    )),
    DashboardSpec("vvops-protocol-health", "VeritasVault Ops — protocol health",
                  "The vaults as the watcher sees them block by block, and the daily checks.", (
        ("Value", (
            _ts("TVL", (f"vvops_vault_tvl_tokens{{{C}}}", "{{chain}} {{contract}}"), width=12),
            _ts("Deposits and withdrawals (tokens / min)",
                (f"sum by (chain, contract) (rate(vvops_vault_deposited_tokens_total{{{C}}}[$__rate_interval])) * 60",
                 "in {{chain}} {{contract}}"),
                (f"sum by (chain, contract) (rate(vvops_vault_withdrawn_tokens_total{{{C}}}[$__rate_interval])) * 60",
                 "out {{chain}} {{contract}}"), width=12),
        )),
        ("Transactions", (
            _ts("Transactions by function (/ min)",
                (f"sum by (contract, function) (rate(vvops_contract_transactions_total{{{C}}}[$__rate_interval])) * 60",
                 "{{contract}}.{{function}}")),
            _ts("Revert ratio by function",
                (f"sum by (contract, function) (rate(vvops_contract_reverts_total{{{C}}}[$__rate_interval])) / "
                 f"sum by (contract, function) (rate(vvops_contract_transactions_total{{{C}}}[$__rate_interval]))",
                 "{{contract}}.{{function}}"), unit="percentunit"),
            _ts("Gas used by function (/ min)",
                (f"sum by (contract, function) (rate(vvops_contract_gas_used_total{{{C}}}[$__rate_interval])) * 60",
                 "{{contract}}.{{function}}")),
        )),
        ("Control", (
            _ts("Paused", (f"vvops_contract_paused{{{C}}}", "{{chain}} {{contract}}"), unit="bool"),
            _ts("Implementation changes (24 h)",
                (f"increase(vvops_contract_implementation_changes_total{{{C}}}[24h])", "{{chain}} {{contract}}")),
            _ts("Check results by area", ('sum by (area, status) (vvops_check_results{status!="ok"})',
                                          "{{area}} {{status}}"),
                ('sum by (area) (vvops_check_results{status="ok"})', "{{area}} ok")),
        )),
    )),
    DashboardSpec("vvops-incidents-alerts", "VeritasVault Ops — incidents and alerts",
                  "What fired, what is open, who is waiting; drill down to the Prefect run.", (
        ("Alerts", (
            _ts("Open alerts by state", ("sum by (state) (vvops_alerts)", "{{state}}")),
            _ts("Alerts raised (/ h)", ("sum by (severity) (increase(vvops_alerts_raised_total[1h]))", "{{severity}}")),
            _ts("Watcher rule hits (/ min)",
                (f"sum by (chain, severity) (rate(vvops_watcher_alerts_raised_total{{{C}}}[$__rate_interval])) * 60",
                 "{{chain}} {{severity}}")),
        )),
        ("Incidents", (
            _ts("Incidents open by severity", ("sum by (severity) (vvops_incidents_open)", "{{severity}}")),
            PanelSpec("Open incidents", (("vvops_incident_open_info", ""),), kind="table", width=16,
                      description="Click a row for its incident-response run in Prefect", link=INCIDENT_LINK),
        )),
        ("People and notifications", (
            _ts("Approvals waiting", ("vvops_approvals_waiting", "{{procedure}}")),
            _ts("Oldest waiting approval", ("vvops_approval_oldest_waiting_age_seconds", "{{procedure}}"), unit="s"),
            _ts("Slack outbox", ("vvops_outbox_messages", "{{status}}")),
        )),
    )),
    DashboardSpec("vvops-capacity", "VeritasVault Ops — capacity",
                  "How close each part runs to its limits: RPC, the watcher, Slack delivery, Prefect runs, the store.", (
        ("RPC and watcher", (
            _ts("RPC latency p95 by endpoint",
                (f"histogram_quantile(0.95, sum by (chain, endpoint, le) "
                 f"(rate(vvops_rpc_request_duration_seconds_bucket{{{C}}}[$__rate_interval])))", "{{endpoint}}"),
                unit="s"),
            _ts("RPC errors (/ min)",
                (f"sum by (chain, endpoint) (rate(vvops_rpc_errors_total{{{C}}}[$__rate_interval])) * 60",
                 "{{endpoint}}")),
            _ts("Range processing p95",
                (f"histogram_quantile(0.95, sum by (chain, le) "
                 f"(rate(vvops_watcher_range_duration_seconds_bucket{{{C}}}[$__rate_interval])))", "{{chain}}"),
                unit="s"),
            _ts("Blocks processed (/ min)",
                (f"sum by (chain) (rate(vvops_watcher_blocks_processed_total{{{C}}}[$__rate_interval])) * 60",
                 "{{chain}}")),
        )),
        ("Slack and Prefect", (
            _ts("Notification delivery latency (last hour)",
                ("vvops_outbox_delivery_latency_seconds", "q{{quantile}}"), unit="s"),
            _ts("Oldest undelivered notification", ("vvops_outbox_oldest_pending_age_seconds", "age"), unit="s"),
            _ts("Longest flow run (24 h)", ("vvops_flow_run_duration_max_seconds", "{{flow}}"), unit="s"),
            _ts("Flow runs finished (24 h)", ("vvops_flow_runs_finished", "{{flow}} {{state}}")),
        )),
        ("Store", (
            _ts("Store read time per scrape", ("vvops_store_scrape_duration_seconds", "store"), unit="s"),
            _ts("Store and Prefect up", ("vvops_store_up", "store"), ("vvops_prefect_up", "prefect"), unit="bool"),
        )),
    )),
)


# ---------------------------------------------------------------------------- building

def build_dashboard(spec: DashboardSpec, *, prefect_ui: str = DEFAULT_PREFECT_UI) -> dict[str, Any]:
    from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
    from grafana_foundation_sdk.builders.dashboard import Dashboard, DashboardLink, QueryVariable, Row, TextBoxVariable
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import DataSourceRef, DashboardLinkType, VariableRefresh
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat

    ds = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
    board = (Dashboard(spec.title).uid(spec.uid).tags(list(spec.tags)).description(spec.description)
             .refresh("30s").time("now-6h", "now").timezone("utc")
             .with_variable(QueryVariable("chain").label("Chain").datasource(ds)
                            .query("label_values(vvops_watcher_lag_blocks, chain)").multi(True).include_all(True)
                            .all_value(".*").refresh(VariableRefresh.ON_TIME_RANGE_CHANGED))
             .with_variable(TextBoxVariable("prefect_ui").label("Prefect UI").default_value(prefect_ui))
             .link(DashboardLink("Prefect UI").type(DashboardLinkType.LINK).url("${prefect_ui}").target_blank(True))
             .link(DashboardLink("VeritasVault Ops").type(DashboardLinkType.DASHBOARDS).tags(["vvops"])
                   .as_dropdown(True)))
    panel_id = 1
    for row_title, panels in spec.rows:
        board = board.with_row(Row(row_title).id(panel_id))
        panel_id += 1
        for p in panels:
            builder = {"timeseries": timeseries.Panel, "stat": stat.Panel, "table": table.Panel}[p.kind]()
            builder = (builder.id(panel_id).title(p.title).datasource(ds).unit(p.unit).span(p.width).height(8)
                       .description(p.description or p.title))
            for i, (expr, legend) in enumerate(p.exprs):
                q = prometheus.Dataquery().expr(expr).ref_id(chr(ord("A") + i))
                if p.kind == "table":
                    q = q.instant().format(PromQueryFormat.TABLE)
                elif legend:
                    q = q.legend_format(legend)
                builder = builder.with_target(q)
            if p.link:
                builder = builder.data_links([DashboardLink(p.link[0]).url(p.link[1]).target_blank(True)])
            board = board.with_panel(builder)
            panel_id += 1
    return _without_nulls(json.loads(json.dumps(board.build(), cls=JSONEncoder)))


def _without_nulls(value: Any) -> Any:
    """The SDK writes unset fields as null (e.g. "options": null); Grafana wants them absent."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of a built dashboard."""
    return [(p["title"], t["expr"]) for p in dashboard.get("panels", []) for t in p.get("targets", []) if t.get("expr")]


def provisioning_files(*, prometheus_url: str = "http://127.0.0.1:9090") -> dict[str, Any]:
    datasource = {"apiVersion": 1, "datasources": [{
        "name": "VeritasVault Ops Prometheus", "uid": DATASOURCE_UID, "type": "prometheus", "access": "proxy",
        "url": prometheus_url, "isDefault": False, "jsonData": {"timeInterval": "15s"}, "editable": True}]}
    provider = {"apiVersion": 1, "providers": [{
        "name": "vvops", "folder": "VeritasVault Ops", "type": "file", "disableDeletion": False,
        "updateIntervalSeconds": 30, "allowUiUpdates": False,
        "options": {"path": "/etc/grafana/dashboards/vvops", "foldersFromFilesStructure": False}}]}
    return {"provisioning/datasources/vvops.yaml": datasource, "provisioning/dashboards/vvops.yaml": provider}


def rendered_files() -> dict[str, str]:
    """Every file under deploy/grafana/ as text, relative path -> content."""
    import yaml

    header = "# Generated by `python -m vvops.observability.dashboards`: edit the Python, not this file.\n"
    files = {f"dashboards/{spec.uid}.json": json.dumps(build_dashboard(spec), indent=2, sort_keys=True) + "\n"
             for spec in DASHBOARDS}
    for path, data in provisioning_files().items():
        files[path] = header + yaml.safe_dump(data, sort_keys=False)
    return files


def out_of_date(out_dir: Path | None = None) -> list[str]:
    out_dir = out_dir or OUT_DIR
    return [path for path, text in rendered_files().items()
            if not (out_dir / path).exists() or (out_dir / path).read_text() != text]


def write(out_dir: Path | None = None) -> list[str]:
    out_dir = out_dir or OUT_DIR
    written = []
    for path, text in rendered_files().items():
        target = out_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="generate the Grafana dashboards under deploy/grafana/")
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed files are out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = out_of_date()
        for path in stale:
            print(f"out of date: deploy/grafana/{path} (run python -m vvops.observability.dashboards)")
        return 1 if stale else 0
    for path in write():
        print(f"wrote deploy/grafana/{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
