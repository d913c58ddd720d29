"""Where the project keeps its files; every path can be moved with an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """Runtime state (devnet.json, the SQLite store, pid files): `.vvops/` unless VVOPS_HOME says otherwise."""
    return Path(os.environ.get("VVOPS_HOME", REPO_ROOT / ".vvops"))


def config_dir() -> Path:
    """The YAML configuration folder: `config/` unless VVOPS_CONFIG_DIR says otherwise."""
    return Path(os.environ.get("VVOPS_CONFIG_DIR", REPO_ROOT / "config"))


def contracts_dir() -> Path:
    """Solidity sources, the build script and the committed compiled artifacts."""
    return REPO_ROOT / "contracts"


def artifacts_dir() -> Path:
    """Compiled contract JSON (abi, bytecode, storage layout), committed so Python never needs Node."""
    return contracts_dir() / "artifacts"


def devnet_file() -> Path:
    """What `vvops devnet up` wrote: rpc url, chain id, addresses and the devnet role accounts."""
    return state_dir() / "devnet.json"


def node_modules_dir() -> Path:
    return REPO_ROOT / "node_modules"
