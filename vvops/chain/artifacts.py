"""Compiled contract artifacts (contracts/artifacts/<Name>.json): loading, freshness and ABI helpers.

Python never needs Node to use them: the JSON files are committed. `npm run build:contracts` rebuilds them.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from vvops import paths

BUILD_HINT = "run `npm run build:contracts` in the repo root"

#: The compiler settings every artifact must carry (contracts/build.js pins them).
EXPECTED_EVM_VERSION = "cancun"
EXPECTED_OPTIMIZER = {"enabled": True, "runs": 200}


class ArtifactError(RuntimeError):
    """An artifact is missing, unreadable or stale; the message names the file and how to rebuild."""


def artifact_path(name: str) -> Path:
    return paths.artifacts_dir() / f"{name}.json"


def artifact_names() -> list[str]:
    """Names of every committed artifact (sorted)."""
    return sorted(p.stem for p in paths.artifacts_dir().glob("*.json"))


@functools.lru_cache(maxsize=64)
def _load_cached(path_str: str, mtime_ns: int) -> dict[str, Any]:
    with open(path_str, encoding="utf-8") as fh:
        return json.load(fh)


def load_artifact(name: str) -> dict[str, Any]:
    """The artifact dict of contract `name` (keys: contractName, sourceName, abi, bytecode, deployedBytecode,
    storageLayout, compiler, sourceHash). Cached; do not mutate the result."""
    path = artifact_path(name)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ArtifactError(f"contract artifact {path} is missing: {BUILD_HINT}") from None
    try:
        return _load_cached(str(path), stat.st_mtime_ns)
    except (OSError, json.JSONDecodeError) as error:
        raise ArtifactError(f"cannot read contract artifact {path} ({error}): {BUILD_HINT}") from error


def abi_of(name: str) -> list[dict[str, Any]]:
    return load_artifact(name)["abi"]


def bytecode_of(name: str) -> bytes:
    code = load_artifact(name)["bytecode"]
    if code in ("", "0x"):
        raise ArtifactError(f"{name} has no creation bytecode (an interface or abstract contract?)")
    return bytes.fromhex(code[2:])


def deployed_bytecode_of(name: str) -> bytes:
    return bytes.fromhex(load_artifact(name)["deployedBytecode"][2:])


def storage_layout_of(name: str) -> list[dict[str, Any]]:
    """The `storage` entries (label, slot, offset, type, contract, astId) of the contract's storage layout."""
    return load_artifact(name)["storageLayout"]["storage"]


def storage_layout_summary(name: str) -> list[tuple[str, int, int, str]]:
    """(label, slot, offset, type) per variable: what an upgrade-compatibility check compares."""
    return [(s["label"], int(s["slot"]), int(s["offset"]), s["type"]) for s in storage_layout_of(name)]


def source_files() -> list[Path]:
    return sorted((paths.contracts_dir() / "src").glob("*.sol"), key=lambda p: p.name)


def compute_source_hash() -> str:
    """sha256 over every contracts/src/*.sol sorted by name: utf8(name) + NUL + bytes + NUL (as build.js)."""
    digest = hashlib.sha256()
    for path in source_files():
        digest.update(path.name.encode("utf-8"))
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def stale_artifacts() -> list[str]:
    """Names of artifacts whose sourceHash or compiler settings do not match the current sources (empty = fresh)."""
    current = compute_source_hash()
    stale = []
    for name in artifact_names():
        art = load_artifact(name)
        compiler = art.get("compiler", {})
        if (
            art.get("sourceHash") != current
            or compiler.get("evmVersion") != EXPECTED_EVM_VERSION
            or compiler.get("optimizer") != EXPECTED_OPTIMIZER
        ):
            stale.append(name)
    return stale


def ensure_artifacts_fresh() -> None:
    """Raise ArtifactError if any artifact was built from other sources than contracts/src/ holds now."""
    if not artifact_names():
        raise ArtifactError(f"no artifacts in {paths.artifacts_dir()}: {BUILD_HINT}")
    stale = stale_artifacts()
    if stale:
        raise ArtifactError(f"artifacts out of date with contracts/src ({', '.join(stale)}): {BUILD_HINT}")
