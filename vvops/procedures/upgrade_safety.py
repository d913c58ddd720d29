"""Protocol Upgrades / Pre-deployment Checklist: is the new implementation's storage layout safe to upgrade to?

Judged by OpenZeppelin's `@openzeppelin/upgrades-core` (npm), the industry's validator, rather than by rules of
our own: `contracts/upgrade-safety/validate.js` runs its `validateUpgradeSafety` offline on Hardhat-format solc
build-info files (input + output with ASTs and storage layouts) and we report what it says, one message per
problem. It understands what a slot-by-slot comparison gets wrong: ERC-7201 namespaced storage (OpenZeppelin 5's
own pattern, absent from solc's storageLayout), `__gap` arrays shrinking as variables are appended, structs and
enums compared by meaning across builds (their type ids carry AST ids), renames (`@custom:oz-renamed-from`) and
retypes (`@custom:oz-retyped-from`).

- `find_build_info(contract, dirs=None) -> Path`: the build-info file that compiled `contract` ("Name" or
  "path.sol:Name"), searched in `build_info_dirs()`: contracts/artifacts/build-info/ (written by
  contracts/build.js for the reference contracts) and every directory in $VVOPS_BUILD_INFO_DIRS (a team's Hardhat
  `artifacts/build-info` or Foundry `out/build-info`, os.pathsep-separated).
- `validate_upgrade(reference, proposed, dirs=None) -> UpgradeSafetyReport`: `.storage_problems` (they block an
  upgrade), `.safety_findings` (upgrades-core's checks of the implementation itself: constructors, immutables,
  selfdestruct, delegatecall...; reported, see `ok`), `.explain` (upgrades-core's own text).
  Raises `UpgradeSafetyUnavailable` (one clear line) when Node.js or the npm package is missing or a contract's
  build-info cannot be found: the checklist item then fails — a check that cannot run never passes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from vvops import paths

BUILD_INFO_DIRS_ENV = "VVOPS_BUILD_INFO_DIRS"
VALIDATOR = paths.contracts_dir() / "upgrade-safety" / "validate.js"
PACKAGE = "@openzeppelin/upgrades-core"


class UpgradeSafetyUnavailable(RuntimeError):
    """The validator could not run (Node.js or the npm package missing, no build-info for a contract)."""


@dataclass(frozen=True)
class UpgradeSafetyReport:
    reference: str
    proposed: str
    storage_problems: list[str] = field(default_factory=list)
    safety_findings: list[str] = field(default_factory=list)
    explain: str = ""

    @property
    def ok(self) -> bool:
        """The storage layout is safe to upgrade to (what the checklist item blocks on)."""
        return not self.storage_problems


def build_info_dirs() -> list[Path]:
    dirs = [paths.artifacts_dir() / "build-info"]
    dirs += [Path(d) for d in os.environ.get(BUILD_INFO_DIRS_ENV, "").split(os.pathsep) if d.strip()]
    return dirs


@lru_cache(maxsize=64)
def _contracts_in(path: Path, mtime_ns: int) -> frozenset[str]:
    """Every "Name" and "source:Name" a build-info file compiled (cached per file version)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return frozenset()
    output = data.get("output") or {}
    names = set()
    for source, contracts in (output.get("contracts") or {}).items():
        for name in contracts or {}:
            names.update((name, f"{source}:{name}"))
    return frozenset(names)


def find_build_info(contract: str, dirs: list[Path] | None = None) -> Path:
    searched = dirs if dirs is not None else build_info_dirs()
    for directory in searched:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.json")):
            if path.name.endswith(".output.json"):
                continue
            if contract in _contracts_in(path, path.stat().st_mtime_ns):
                return path
    where = ", ".join(str(d) for d in searched) or "nowhere"
    raise UpgradeSafetyUnavailable(
        f"no solc build-info compiles `{contract}` (searched {where}): build it with storageLayout and ast output "
        f"(`npm run build:contracts`, Hardhat's artifacts/build-info, Foundry `--build-info`) and list its directory "
        f"in ${BUILD_INFO_DIRS_ENV}")


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise UpgradeSafetyUnavailable(f"Node.js is not installed: the storage-layout check runs {PACKAGE} "
                                       "(install Node.js 20+, then `npm ci` in the repo root)")
    if not (paths.node_modules_dir() / "@openzeppelin" / "upgrades-core" / "package.json").is_file():
        raise UpgradeSafetyUnavailable(f"{PACKAGE} is not installed: run `npm ci` in the repo root")
    return node


def validate_upgrade(reference: str, proposed: str, *, dirs: list[Path] | None = None,
                     timeout_s: float = 180.0) -> UpgradeSafetyReport:
    """upgrades-core's verdict on upgrading from `reference` to `proposed` (contract names; see module docstring)."""
    node = _node()
    request = {"reference": {"build_info": str(find_build_info(reference, dirs)), "contract": reference},
               "proposed": {"build_info": str(find_build_info(proposed, dirs)), "contract": proposed}}
    try:
        done = subprocess.run([node, str(VALIDATOR)], input=json.dumps(request), capture_output=True, text=True,
                              timeout=timeout_s, cwd=paths.REPO_ROOT)
    except subprocess.TimeoutExpired:
        raise UpgradeSafetyUnavailable(f"{PACKAGE} did not answer within {timeout_s:.0f} s") from None
    if done.returncode != 0:
        line = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise UpgradeSafetyUnavailable(f"{PACKAGE} could not validate {proposed} against {reference}: {line}")
    try:
        verdict = json.loads(done.stdout)
    except ValueError:
        raise UpgradeSafetyUnavailable(f"{PACKAGE} gave no verdict (unreadable output)") from None
    problems = verdict.get("problems") or []
    return UpgradeSafetyReport(
        reference=reference, proposed=proposed,
        storage_problems=[p["message"] for p in problems if p.get("kind") == "storage"],
        safety_findings=[p["message"] for p in problems if p.get("kind") != "storage"],
        explain=verdict.get("explain", ""))
