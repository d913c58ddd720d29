"""VeritasVault Ops configuration: config/*.yaml validated into frozen pydantic models.

    from vvops.config import load_config, check_config, ConfigError
    cfg = load_config(environment="devnet")
    cfg.env.rpc_urls, cfg.check("protocol.contract_state"), cfg.approval_policy("unpause")

Plain Python (no Prefect imports), so the CLI can check config before anything heavy loads.
"""

from .errors import ConfigError, ConfigProblem, DevnetRefError, EnvVarError
from .loader import (
    CONFIG_FILES,
    ResolvedDeployment,
    check_config,
    config_summary,
    devnet_address,
    devnet_rpc_url,
    load_config,
    load_devnet_json,
    load_environments,
    resolve_deployment,
    resolve_purpose,
)
from .oncall import OnCall, Shift, upcoming_shifts, who_is_on_call
from .schema import ROLES, SEVERITIES, OpsConfig
from .secrets import SecretStr, mask_url, resolve_env, resolve_secret

__all__ = [
    "CONFIG_FILES",
    "ConfigError",
    "ConfigProblem",
    "DevnetRefError",
    "EnvVarError",
    "OnCall",
    "OpsConfig",
    "ROLES",
    "ResolvedDeployment",
    "SEVERITIES",
    "SecretStr",
    "Shift",
    "check_config",
    "config_summary",
    "devnet_address",
    "devnet_rpc_url",
    "load_config",
    "load_devnet_json",
    "mask_url",
    "resolve_deployment",
    "resolve_purpose",
    "resolve_env",
    "resolve_secret",
    "upcoming_shifts",
    "who_is_on_call",
]
