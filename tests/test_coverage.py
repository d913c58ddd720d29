"""Playbook coverage: every playbook item is mapped, every mapping is live, the published matrix is current."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from vvops.coverage.checklists import (CONFIRM_ACTION, checklist_for, evidence_from_audit, item_id,
                                       render_checklist)
from vvops.coverage.matrix import render_matrix
from vvops.coverage.playbook import ENV_VAR, PlaybookMissing, load_items, parse_items, playbook_path
from vvops.coverage.registry import CADENCES, REGISTRY, coverage_problems, unresolved_refs

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "playbook-coverage.md"


@pytest.fixture(scope="module")
def items():
    try:
        return load_items()
    except PlaybookMissing as exc:
        pytest.skip(f"playbook coverage needs the operations playbook: {exc}")


# ---- the parser, on a small playbook of our own ---------------------------------------------------------------

SAMPLE = """---
title: x
---

# Title

## Introduction

* not an item

## Operational Structure

### Operations Team

#### Core Roles

* **Lead**:
  * a role duty

### Operational Coverage

* **24/7 Monitoring**: always on
* **On-Call**: rotation

## Regular Operations

### Daily Operations

#### System Health Checks

* **Protocol Health Verification**:
  * Contract state
  * Error rate

## Incident Management

### Incident Classification

* **Severity Levels**:
  * **P0 (Critical)**: outage
  * **P1 (High)**: impairment

## Appendices

### Templates

* Report templates
"""


def test_parser_reads_groups_leaves_and_skips_prose_sections():
    got = [(i.heading_path, i.text, i.detail) for i in parse_items(SAMPLE)]
    assert got == [
        ("Operational Structure / Operational Coverage", "24/7 Monitoring", "always on"),
        ("Operational Structure / Operational Coverage", "On-Call", "rotation"),
        ("Regular Operations / Daily Operations / System Health Checks / Protocol Health Verification",
         "Contract state", ""),
        ("Regular Operations / Daily Operations / System Health Checks / Protocol Health Verification",
         "Error rate", ""),
        ("Incident Management / Incident Classification / Severity Levels", "P0 (Critical)", "outage"),
        ("Incident Management / Incident Classification / Severity Levels", "P1 (High)", "impairment"),
    ]


def test_missing_playbook_names_the_path(tmp_path, monkeypatch):
    missing = tmp_path / "nope.md"
    monkeypatch.setenv(ENV_VAR, str(missing))
    assert playbook_path() == missing
    with pytest.raises(PlaybookMissing, match=str(missing)):
        load_items()
    env = {"PATH": "", ENV_VAR: str(missing)}
    run = subprocess.run([sys.executable, "-m", "vvops.coverage"], cwd=REPO, env=env, capture_output=True, text=True)
    assert run.returncode == 2 and str(missing) in run.stderr and run.stdout == ""


# ---- the registry against the real playbook -------------------------------------------------------------------

def test_every_playbook_item_has_a_registry_entry(items):
    missing = coverage_problems(items).missing
    assert not missing, "playbook items without a registry entry (vvops/coverage/registry.py):\n" + "\n".join(
        f"  {i.heading_path} / {i.text}  (playbook line {i.line})" for i in missing)


def test_no_stale_duplicate_or_invalid_entries(items):
    p = coverage_problems(items)
    bad = [f"stale (no such playbook item): {e.path} / {e.item}" for e in p.stale]
    bad += [f"duplicate: {k}" for k in p.duplicates] + [f"invalid: {m}" for m in p.invalid]
    assert not bad, "\n".join(bad)


def test_every_referenced_module_attribute_exists():
    bad = unresolved_refs()
    assert not bad, "registry references that do not import:\n" + "\n".join(bad)


def test_every_referenced_function_is_reached_from_a_flow_or_a_supervised_service():
    """Importable is not enough: each function or class the registry names is on the static call graph from the
    `@flow`s (and the services `vvops up` supervises), so an entry cannot claim an item with code nothing runs."""
    from vvops.coverage.callgraph import SERVICE_ROOTS, CallGraph, unreached_refs

    graph = CallGraph()
    assert all(graph.resolve(*root.split(":", 1)) == root for root in SERVICE_ROOTS), "a service root was renamed"
    refs = [r for e in REGISTRY for r in e.implemented_by]
    bad = unreached_refs(refs, graph)
    assert not bad, "registry references no flow reaches (call them from a flow, or downgrade the entry):\n" + \
        "\n".join(bad)


def test_the_call_graph_follows_imports_re_exports_and_callbacks_but_not_main_guards(tmp_path):
    from vvops.coverage.callgraph import CallGraph

    (tmp_path / "flows").mkdir()
    (tmp_path / "tasks").mkdir()
    (tmp_path / "vvops" / "pkg").mkdir(parents=True)
    (tmp_path / "flows" / "f.py").write_text(
        "from prefect import flow\nfrom tasks.t import step\n\n@flow(name='f')\ndef f():\n    return step()\n")
    (tmp_path / "tasks" / "t.py").write_text(
        "def step():\n    from vvops.pkg import exported\n    return [exported]\n\ndef orphan():\n    pass\n")
    (tmp_path / "vvops" / "__init__.py").write_text("")
    (tmp_path / "vvops" / "pkg" / "__init__.py").write_text("from .impl import exported\n")
    (tmp_path / "vvops" / "pkg" / "impl.py").write_text(
        "import vvops.pkg.impl as me\n\ndef exported():\n    return helper()\n\ndef helper():\n    pass\n\n"
        "def only_main():\n    pass\n\nif __name__ == '__main__':\n    only_main()\n")
    graph = CallGraph(tmp_path, packages=("flows", "tasks", "vvops"))
    assert graph.flow_roots() == ["flows.f:f"]
    reached = graph.reachable(graph.flow_roots())
    assert {"flows.f:f", "tasks.t:step", "vvops.pkg.impl:exported", "vvops.pkg.impl:helper"} <= reached
    assert "tasks.t:orphan" not in reached and "vvops.pkg.impl:only_main" not in reached


def test_the_monthly_coverage_section_reports_the_automation_level_and_a_stale_matrix(items):
    from vvops.coverage.matrix import coverage_summary, render_coverage_section

    summary = coverage_summary(items, published=DOC.read_text(encoding="utf-8"))
    assert summary["status"] == "ok" and summary["matrix_current"] is True and summary["items"] == len(items)
    assert sum(summary["totals"].values()) == len(items)
    stale = coverage_summary(items, published="old")
    assert stale["matrix_current"] is False and "OUT OF DATE" in render_coverage_section(stale)
    assert "No data" in render_coverage_section(coverage_summary(None))


def test_published_matrix_is_current(items):
    expected = render_matrix(items)
    assert DOC.is_file(), f"{DOC} missing: run `uv run python -m vvops.coverage > docs/playbook-coverage.md`"
    assert DOC.read_text(encoding="utf-8") == expected, (
        "docs/playbook-coverage.md is out of date: run `uv run python -m vvops.coverage > docs/playbook-coverage.md`")


# ---- checklists -----------------------------------------------------------------------------------------------

def test_team_activities_are_on_their_cadence_report():
    texts = {c: {i.playbook_item for i in checklist_for(c)} for c in CADENCES}
    assert any(p.endswith("Team Coordination / Daily standup meeting") for p in texts["daily"])
    assert any("Cross-functional Synchronization /" in p for p in texts["weekly"])
    assert any("Training and Development /" in p for p in texts["weekly"])
    assert any("Strategic Operations / Process Optimization /" in p for p in texts["monthly"])
    for c in CADENCES:
        assert all(i.owner_role for i in checklist_for(c))
    with pytest.raises(ValueError):
        checklist_for("yearly")


def test_checklist_ids_are_unique_and_stable():
    ids = [item_id(e) for e in REGISTRY if e.cadence and e.mode != "automated"]
    assert len(ids) == len(set(ids))
    assert "daily.team-coordination.daily-standup-meeting" in ids


def test_checklist_renders_evidence_only_once_recorded():
    items = checklist_for("daily")
    blank = render_checklist(items)
    standup = next(i for i in items if i.id == "daily.team-coordination.daily-standup-meeting")
    row = next(line for line in blank.splitlines() if standup.id in line)
    assert row.startswith("| ☐ |") and "|  |" in row
    when = datetime(2026, 5, 4, 9, 15, tzinfo=timezone.utc)
    ev = evidence_from_audit([
        {"action": CONFIRM_ACTION, "subject": f"checklist:{standup.id}", "actor": "amara", "at": when},
        {"action": "approval.decision", "subject": f"checklist:{standup.id}", "actor": "x", "at": when},
    ])
    done = render_checklist(items, ev)
    row = next(line for line in done.splitlines() if standup.id in line)
    assert row.startswith("| ✅ |") and "amara 2026-05-04 09:15 UTC" in row
