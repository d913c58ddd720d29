"""House rules checked on the source tree: blocks/ never import tasks/ or flows/, production code never imports
vvops/devnet/, vvops/ stays free of Prefect (outside the CLI)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _modules(*dirs: str) -> list[Path]:
    return [p for d in dirs for p in sorted((ROOT / d).rglob("*.py"))]


@pytest.mark.parametrize("path", _modules("blocks"), ids=lambda p: str(p.relative_to(ROOT)))
def test_blocks_never_import_tasks_or_flows(path):
    bad = sorted(n for n in _imports(path) if n.split(".")[0] in ("tasks", "flows"))
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


PRODUCTION = [p for p in _modules("blocks", "tasks", "flows", "deployments", "vvops")
              if "devnet" not in p.relative_to(ROOT).parts and p.name != "cli.py"]


@pytest.mark.parametrize("path", PRODUCTION, ids=lambda p: str(p.relative_to(ROOT)))
def test_production_code_never_imports_devnet(path):
    bad = sorted(n for n in _imports(path) if n == "vvops.devnet" or n.startswith("vvops.devnet."))
    assert not bad, f"{path.relative_to(ROOT)} imports devnet code {bad}"


def test_abi_handling_lives_in_the_chain_package():
    from vvops.chain.abi import Abi, contract_abi  # noqa: F401
    from vvops.chain.artifacts import load_artifact  # noqa: F401

    assert not (ROOT / "vvops/devnet/abi.py").exists()
