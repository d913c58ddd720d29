"""Typed `params` for the built-in daily checks (checks.yaml), keyed by check id.

A check id not listed here keeps free-form params. Relative paths are relative to the state
dir (VVOPS_HOME, default .vvops/) unless they start with `/`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from .schema import Identifier, NonNegInt, PositiveFloat, PositiveInt, Url, problem


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContractStateParams(Params):
    contracts: Annotated[tuple[Identifier, ...], Field(min_length=1)]
    """contracts.yaml names whose state is compared with the expected state."""
    compare_parameters: bool = True
    check_roles: bool = True
    check_implementation: bool = True
    check_invariants: bool = True
    check_expected_values: bool = True


class OnchainActivityParams(Params):
    contracts: Annotated[tuple[Identifier, ...], Field(min_length=1)]
    window_hours: PositiveInt = 24
    max_blocks: PositiveInt = 50_000
    """Cap on the block range scanned in one run."""
    initial_log_range: PositiveInt = 10_000
    """First eth_getLogs block range; halved when the node refuses it, grown back after successes."""


class NetworkConditionsParams(Params):
    fee_history_blocks: PositiveInt = 20
    block_time_sample_blocks: PositiveInt = 100
    """Mean block time is measured over this many latest blocks (compared with the environment's block_time_s)."""


class TxErrorRateParams(Params):
    window_hours: PositiveInt = 24
    min_transactions: NonNegInt = 10
    """Below this many transactions the rate is reported but not alerted on."""
    withdrawal_limit_errors: tuple[str, ...] = ("AboveWithdrawalLimit", "ERC4626ExceededMaxWithdraw",
                                                "ERC4626ExceededMaxRedeem")
    """Revert reasons (custom error names) that count as a withdrawal-limit hit (`withdrawal_limit_hits`)."""


class RpcLatencyParams(Params):
    samples: PositiveInt = 5
    method: str = "eth_blockNumber"
    timeout_s: PositiveFloat = 3.0
    """Timeout of one sample (capped by the chain's request timeout)."""


class HttpEndpoint(Params):
    name: Identifier
    url: Url
    expected_status: Annotated[int, Field(ge=100, le=599)] = 200
    samples: PositiveInt = 3
    timeout_s: PositiveFloat = 5.0
    method: Literal["GET", "HEAD"] = "GET"
    expected_body: str | None = None
    """A substring the response body must contain (e.g. `"status":"ok"`)."""
    verify_tls: bool = True


class HttpEndpointsParams(Params):
    endpoints: tuple[HttpEndpoint, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> HttpEndpointsParams:
        names = [e.name for e in self.endpoints]
        for n in names:
            if names.count(n) > 1:
                raise problem(f"endpoint name '{n}' is used twice", "give each endpoint its own name", at="endpoints")
        return self


class DatabaseParams(Params):
    probe_query: str = "SELECT 1"
    samples: PositiveInt = 3


class StoragePath(Params):
    path: str
    label: str = ""


class StorageParams(Params):
    paths: Annotated[tuple[StoragePath, ...], Field(min_length=1)]


class HostParams(Params):
    cpu_sample_s: PositiveFloat = 1.0


class TlsHost(Params):
    host: str
    port: Annotated[int, Field(gt=0, lt=65536)] = 443


class TlsCertsParams(Params):
    hosts: tuple[TlsHost, ...] = ()
    cert_files: tuple[str, ...] = ()
    """PEM files or folders of them."""
    timeout_s: PositiveFloat = 5.0


class AccessLogSource(Params):
    path: str
    format: Literal["common", "combined", "jsonl"]


class AccessLogsParams(Params):
    sources: tuple[AccessLogSource, ...] = ()
    window_hours: PositiveInt = 24
    baseline_days: PositiveInt = 7
    """Auth-failure counts are compared with the same hours over this many days."""
    admin_path_prefixes: tuple[str, ...] = ("/admin",)
    min_auth_failures: PositiveInt = 10
    """An hour with fewer 401/403 than this is never a spike, whatever its ratio to the baseline."""

    @model_validator(mode="after")
    def _prefixes(self) -> AccessLogsParams:
        for p in self.admin_path_prefixes:
            if not p.startswith("/"):
                raise problem(f"admin path prefix '{p}' does not start with /", f"write /{p}", at="admin_path_prefixes")
        return self


class VulnerabilityReportsParams(Params):
    folder: str
    formats: tuple[Literal["sarif", "json", "osv"], ...] = ("sarif", "json")
    max_report_age_days: PositiveInt = 8
    """Older newest report: scans have stopped."""
    require_reports: bool = True
    """No report at all is a warning (scans are not running)."""
    state_file: str = "state/vulnerability-findings.json"
    """Where the findings seen by the last run are kept (to report new ones)."""


def _stored_in(v: str) -> str:
    if not (v.startswith("env:") or v.startswith("prefect-block:")):
        raise problem(f"'{v}' does not say where the secret is stored",
                      "write env:VARIABLE_NAME or prefect-block:block-name")
    return v


class Credential(Params):
    """Metadata about a credential; its value lives only in the environment or a Prefect Secret block."""

    name: Identifier
    kind: Literal["api_key", "bot_token", "password", "certificate", "ssh_key", "signing_key", "webhook"]
    stored_in: Annotated[str, AfterValidator(_stored_in)]
    owner: Identifier
    """person id responsible for rotating it."""
    created: date
    rotated: date | None = None
    rotation_days: PositiveInt

    @property
    def last_rotated(self) -> date:
        return self.rotated or self.created

    def due(self) -> date:
        from datetime import timedelta

        return self.last_rotated + timedelta(days=self.rotation_days)


class CredentialsParams(Params):
    credentials: tuple[Credential, ...] = ()


class LogFolder(Params):
    path: str
    pattern: str = "*.log"


class LogRotationParams(Params):
    folders: Annotated[tuple[LogFolder, ...], Field(min_length=1)]
    compress_after_days: PositiveInt = 1
    retention_days: PositiveInt = 30

    @model_validator(mode="after")
    def _order(self) -> LogRotationParams:
        if self.compress_after_days >= self.retention_days:
            raise problem("compress_after_days is not before retention_days",
                          "compress logs before they are deleted", at="compress_after_days")
        return self


class BackupsParams(Params):
    folder: str
    pattern: str = "*"
    min_size_bytes: NonNegInt = 1
    take_backup: bool = False
    """Take a backup of the store first (with a .sha256 sidecar and a `backups` row), then verify the newest."""
    restore_check: bool = True
    """Restore the newest backup into a scratch database and validate it with a data-quality suite."""
    keep_last: NonNegInt = 0
    """After taking a backup, delete all but the newest keep_last backups in the folder (0: keep every one)."""


class DataIntegrityParams(Params):
    tables: tuple[Identifier, ...] = ()
    """Store tables to validate (empty: all known tables)."""
    sample_rows: PositiveInt = 10_000


class MetricsRetentionParams(Params):
    retention_days: PositiveInt = 400
    raw_retention_days: PositiveInt = 30
    """Per-run raw samples are kept this long; daily aggregates for retention_days."""


CHECK_PARAMS: dict[str, type[Params]] = {
    "protocol.contract_state": ContractStateParams,
    "protocol.onchain_activity": OnchainActivityParams,
    "protocol.network_conditions": NetworkConditionsParams,
    "protocol.tx_error_rate": TxErrorRateParams,
    "infrastructure.rpc_latency": RpcLatencyParams,
    "infrastructure.http_endpoints": HttpEndpointsParams,
    "infrastructure.database": DatabaseParams,
    "infrastructure.storage": StorageParams,
    "infrastructure.host": HostParams,
    "security.tls_certs": TlsCertsParams,
    "security.access_logs": AccessLogsParams,
    "security.vulnerability_reports": VulnerabilityReportsParams,
    "security.credentials": CredentialsParams,
    "maintenance.log_rotation": LogRotationParams,
    "maintenance.backups": BackupsParams,
    "maintenance.data_integrity": DataIntegrityParams,
    "maintenance.metrics_retention": MetricsRetentionParams,
}
