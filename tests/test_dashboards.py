"""The Grafana files under deploy/grafana/ are what the Python generates, and each dashboard is well formed."""

from __future__ import annotations

import json

from vvops.observability.dashboards import DASHBOARDS, OUT_DIR, build_dashboard, out_of_date, panel_queries


def test_committed_grafana_files_are_in_sync():
    assert out_of_date() == [], "run: python -m vvops.observability.dashboards (then commit deploy/grafana/)"


def test_dashboards_are_complete_and_link_to_prefect():
    titles = {spec.title.split("— ")[1] for spec in DASHBOARDS}
    assert titles == {"operations overview", "protocol health", "incidents and alerts", "capacity"}
    for spec in DASHBOARDS:
        board = json.loads((OUT_DIR / "dashboards" / f"{spec.uid}.json").read_text())
        assert board["uid"] == spec.uid
        panels = [p for p in board["panels"] if p["type"] != "row"]
        assert panels and all(p["datasource"]["uid"] == "vvops-prometheus" for p in panels)
        assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
        assert panel_queries(build_dashboard(spec))
    overview = json.loads((OUT_DIR / "dashboards" / "vvops-overview.json").read_text())
    links = [l["url"] for p in overview["panels"] for l in p.get("fieldConfig", {}).get("defaults", {}).get("links", [])]
    assert "${prefect_ui}/runs/flow-run/${__data.fields.flow_run_id}" in links


def test_check_mode_reports_a_stale_file(tmp_path, capsys, monkeypatch):
    from vvops.observability import dashboards

    monkeypatch.setattr(dashboards, "OUT_DIR", tmp_path)
    assert dashboards.main(["--check"]) == 1
    assert "out of date: deploy/grafana/dashboards/vvops-overview.json" in capsys.readouterr().out
