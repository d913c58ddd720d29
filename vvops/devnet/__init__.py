"""The local devnet: anvil, the VeritasVault reference contracts, synthetic activity and cheat codes.

Plain Python (no Prefect). Main entry points:
- `AnvilProcess`, `anvil_binary`, `free_port`                      (vvops.devnet.anvil)
- `deploy_devnet`, `DevnetInfo`, `write_devnet_file`, `load_devnet_file`  (vvops.devnet.deploy)
- `Chain`, `BoundContract`, `make_web3`                          (vvops.devnet.chain)
- `load_artifact`, `decode_revert`, `Abi`                         (vvops.chain.artifacts / abi)
- `ActivityGenerator`, `ActivityThread`                           (vvops.devnet.activity)
- `devnet_up`, `devnet_down`, `devnet_status`, `start_devnet_background`  (vvops.devnet.service)
- `increase_time`, `snapshot`, `revert`, `impersonate`, `set_storage_at`  (vvops.devnet.timetravel)
"""

from vvops.chain.abi import Abi, DecodedError, DecodedEvent, decode_revert, error_selector_map
from vvops.devnet.anvil import AnvilError, AnvilProcess, anvil_binary, free_port
from vvops.chain.artifacts import ArtifactError, load_artifact
from vvops.devnet.chain import BoundContract, CallReverted, Chain, RpcError, TxReverted, make_web3
from vvops.devnet.deploy import (
    DevnetAccount,
    DevnetAccounts,
    DevnetContracts,
    DevnetInfo,
    deploy_devnet,
    load_devnet_file,
    write_devnet_file,
)
from vvops.devnet.activity import ActivityGenerator, ActivityRecord, ActivityThread
from vvops.devnet.service import (
    DevnetError,
    devnet_down,
    devnet_status,
    devnet_up,
    start_devnet_background,
    stop_devnet_background,
)
from vvops.devnet.timetravel import impersonate, increase_time, revert, set_storage_at, snapshot

__all__ = [
    "ActivityGenerator", "ActivityRecord", "ActivityThread", "DevnetError", "devnet_down", "devnet_status",
    "devnet_up", "start_devnet_background", "stop_devnet_background",
    "Abi", "AnvilError", "AnvilProcess", "ArtifactError", "BoundContract", "CallReverted", "Chain",
    "DecodedError", "DecodedEvent", "DevnetAccount", "DevnetAccounts", "DevnetContracts", "DevnetInfo",
    "RpcError", "TxReverted", "anvil_binary", "decode_revert", "deploy_devnet", "error_selector_map",
    "free_port", "impersonate", "increase_time", "load_artifact", "load_devnet_file", "make_web3", "revert",
    "set_storage_at", "snapshot", "write_devnet_file",
]
