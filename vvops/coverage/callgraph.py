"""Which functions a running system actually reaches: a static call graph by AST over flows/, tasks/, blocks/ and
vvops/, from the roots that run in production (every `@flow`, and the services `vvops up` supervises). The
coverage test uses it so that a registry entry cannot claim an item with code nothing calls.

Deliberately simple and conservative in one direction only: a reference to a function or class by name (a call,
a callback, a dispatch table entry, an annotation of a reached pydantic model) counts as reaching it; method
calls on objects are not resolved, so reaching a class reaches all its methods. Module-level code of a reached
module is reached (it runs at import). What the graph cannot see (a subprocess started by argv) is declared in
`SERVICE_ROOTS`.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from vvops.paths import REPO_ROOT

PACKAGES = ("flows", "tasks", "blocks", "vvops", "deployments")

# `vvops up` starts these as child processes (`python -m vvops.cli <command>`): the graph cannot follow an argv
SERVICE_ROOTS = (
    "vvops.cli:_cmd_watch",                  # the on-chain watcher
    "vvops.cli:_cmd_metrics_endpoint",       # Prometheus exporter + Alertmanager webhook
    "vvops.cli:_cmd_slack_endpoint",         # Slack Approve/Reject buttons
    "vvops.status_page.cli:cmd_serve",       # the public status page
)


# Code whose product is a committed file another system runs (not a call at run time): the file is what does the
# item, and a test proves it is the code's current output
GENERATED_ARTIFACTS = {
    "vvops.observability.dashboards": "deploy/grafana/dashboards/*.json, Grafana's provisioned dashboards "
                                      "(tests/test_dashboards.py: committed files in sync)",
}


@dataclass
class _Module:
    name: str
    is_package: bool
    defs: dict[str, ast.AST] = field(default_factory=dict)             # top-level functions and classes
    aliases: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # local name -> (module, attr|None)
    top_level: list[ast.AST] = field(default_factory=list)             # module-level statements outside defs


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def _absolute(module: _Module, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = module.name.split(".")
    base = base if module.is_package else base[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, target] if target else base)


def _is_main_guard(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and \
        isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"


def _parse(path: Path, root: Path) -> _Module:
    name, is_package = _module_name(path, root)
    module = _Module(name, is_package)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):  # imports anywhere (lazy imports inside functions are the house style)
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    module.aliases[a.asname] = (a.name, None)
                else:
                    module.aliases.setdefault(a.name.split(".")[0], (a.name.split(".")[0], None))
                    module.aliases[a.name] = (a.name, None)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node.level, node.module)
            for a in node.names:
                module.aliases[a.asname or a.name] = (source, a.name)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            module.defs[node.name] = node
        elif not _is_main_guard(node):  # `python -m` entry points are not run by importing the module
            module.top_level.append(node)
    return module


class CallGraph:
    def __init__(self, root: Path = REPO_ROOT, packages: tuple[str, ...] = PACKAGES):
        self.modules: dict[str, _Module] = {}
        for package in packages:
            for path in sorted((root / package).rglob("*.py")):
                module = _parse(path, root)
                self.modules[module.name] = module

    # -- resolution ------------------------------------------------------------------------------------------
    def resolve(self, module: str, name: str, _depth: int = 0) -> str | None:
        """`module:name` of the definition a name in `module` refers to (following re-exports), or None."""
        m = self.modules.get(module)
        if m is None or _depth > 10:
            return None
        if name in m.defs:
            return f"{module}:{name}"
        if name in m.aliases:
            source, attr = m.aliases[name]
            if attr is None:
                return None  # a module, not a definition
            if f"{source}.{attr}" in self.modules:
                return None  # `from package import submodule`
            return self.resolve(source, attr, _depth + 1)
        return None

    def _module_of(self, module: str, dotted: list[str]) -> tuple[str, list[str]] | None:
        """For `a.b.c` used in `module`: the longest prefix naming one of our modules, and the rest."""
        m = self.modules[module]
        head = dotted[0]
        if head not in m.aliases:
            return None
        source, attr = m.aliases[head]
        base = f"{source}.{attr}" if attr else source
        parts = [*base.split("."), *dotted[1:]]
        for cut in range(len(parts), 0, -1):
            candidate = ".".join(parts[:cut])
            if candidate in self.modules:
                return candidate, parts[cut:]
        return None

    def _refs(self, module: str, nodes: list[ast.AST]) -> set[str]:
        found: set[str] = set()
        for top in nodes:
            for node in ast.walk(top):
                if isinstance(node, ast.Name):
                    target = self.resolve(module, node.id)
                    if target:
                        found.add(target)
                elif isinstance(node, ast.Attribute):
                    dotted, cur = [], node
                    while isinstance(cur, ast.Attribute):
                        dotted.insert(0, cur.attr)
                        cur = cur.value
                    if not isinstance(cur, ast.Name):
                        continue
                    hit = self._module_of(module, [cur.id, *dotted])
                    if hit and hit[1]:
                        target = self.resolve(hit[0], hit[1][0])
                        if target:
                            found.add(target)
        return found

    # -- reachability ----------------------------------------------------------------------------------------
    def flow_roots(self) -> list[str]:
        roots = []
        for name, m in self.modules.items():
            if not name.startswith("flows"):
                continue
            for fn, node in m.defs.items():
                for deco in getattr(node, "decorator_list", []):
                    target = deco.func if isinstance(deco, ast.Call) else deco
                    if isinstance(target, ast.Name) and target.id == "flow" or \
                            isinstance(target, ast.Attribute) and target.attr == "flow":
                        roots.append(f"{name}:{fn}")
        return roots

    def reachable(self, roots: list[str] | None = None) -> set[str]:
        """Every `module:name` reached from the roots (default: every flow and the supervised services)."""
        queue = deque(roots if roots is not None else [*self.flow_roots(), *SERVICE_ROOTS])
        seen: set[str] = set()
        modules_done: set[str] = set()
        while queue:
            ref = queue.popleft()
            if ref in seen:
                continue
            module, name = ref.split(":", 1)
            m = self.modules.get(module)
            if m is None or name not in m.defs:
                continue
            seen.add(ref)
            queue.extend(self._refs(module, [m.defs[name]]))
            if module not in modules_done:  # importing the module runs its top level
                modules_done.add(module)
                queue.extend(self._refs(module, m.top_level))
        return seen


def unreached_refs(refs: list[str], graph: CallGraph | None = None) -> list[str]:
    """The references (`module:attribute`) no flow or supervised service reaches. A module-level constant
    (not a function or class) counts as reached when its module is; `GENERATED_ARTIFACTS` are judged by their
    committed output instead."""
    graph = graph or CallGraph()
    reached = graph.reachable()
    reached_modules = {r.split(":", 1)[0] for r in reached}
    bad = []
    for ref in dict.fromkeys(refs):
        module, name = ref.split(":", 1)
        if module in GENERATED_ARTIFACTS:
            continue
        m = graph.modules.get(module)
        if m is not None and name not in m.defs:
            target = graph.resolve(module, name)
            if target is None:  # a constant: reached with its module
                if module not in reached_modules:
                    bad.append(ref)
                continue
            ref = target
        if ref not in reached:
            bad.append(ref if ref == f"{module}:{name}" else f"{module}:{name} (= {ref})")
    return bad
