"""Typed, frozen models of the YAML configuration (one root model per file, `OpsConfig` for all).

Validation that only needs one value lives here (addresses, time zones, thresholds, roles);
checks across files live in `loader.py`. Errors raised here carry a message and a hint
(`PydanticCustomError("vvops", ...)` with `hint` in the context) that the loader turns into
`file: key.path: message (hint)` lines.
"""

from __future__ import annotations

import difflib
import re
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from eth_utils import is_checksum_address, is_hex_address, to_checksum_address
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from .secrets import ENV_NAME, SecretStr, malformed_env_ref, resolve_env

# ---------------------------------------------------------------------------- vocabularies

ROLES: tuple[str, ...] = ("ops_lead", "sre", "protocol_specialist", "security_ops", "data_analyst", "support")
"""The playbook's core roles (Protocol Operations Lead, SRE, Protocol Specialist, Security Operations)
and support roles (Data Analyst, User Support Specialist)."""

SEVERITIES: tuple[str, ...] = ("P0", "P1", "P2", "P3")
INCIDENT_TYPES: tuple[str, ...] = ("technical", "security", "operational", "external")
CHECK_AREAS: tuple[str, ...] = ("protocol", "infrastructure", "security", "maintenance")
CONTRACT_KINDS: tuple[str, ...] = ("vault", "timelock", "multicall", "token")
SLACK_CHANNEL_KEYS: tuple[str, ...] = ("ops", "alerts", "incidents", "approvals", "reports", "audit")
WEEKDAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FROM_DEVNET = "from-devnet"
FROM_DEVNET_PREFIX = "from-devnet:"

Role = Literal["ops_lead", "sre", "protocol_specialist", "security_ops", "data_analyst", "support"]
Severity = Literal["P0", "P1", "P2", "P3"]
CheckArea = Literal["protocol", "infrastructure", "security", "maintenance"]
ContractKind = Literal["vault", "timelock", "multicall", "token"]
ProxyKind = Literal["uups", "transparent", "beacon", "none"]
AccessModel = Literal["ownable", "access-control", "none"]
PURPOSES: tuple[str, ...] = ("governance-timelock", "pause-target", "parameter-target", "upgrade-target", "multicall")
Purpose = Literal["governance-timelock", "pause-target", "parameter-target", "upgrade-target", "multicall"]
#: What a contract is to the procedures when contracts.yaml does not say (`purposes:`), by its kind.
DEFAULT_PURPOSES: dict[str, tuple[str, ...]] = {
    "vault": ("pause-target", "parameter-target", "upgrade-target"),
    "timelock": ("governance-timelock",),
    "multicall": ("multicall",),
    "token": (),
}
#: Purposes an environment has at most one contract for (the procedures pick it without being told).
SINGLE_PURPOSES: tuple[str, ...] = ("governance-timelock", "multicall")
SlackChannelKey = Literal["ops", "alerts", "incidents", "approvals", "reports", "audit"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def problem(message: str, hint: str, *, at: str | None = None) -> PydanticCustomError:
    """A validation error the loader prints as `message (hint)`; `at` names the key inside the
    model being validated that the problem is about (appended to the key path)."""
    ctx = {"message": message, "hint": hint}
    if at:
        ctx["at"] = at
    return PydanticCustomError("vvops", "{message}", ctx)


def did_you_mean(word: str, choices: list[str] | tuple[str, ...], *, fallback: str | None = None) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return fallback if fallback is not None else "choose one of: " + ", ".join(choices)


_DURATION_UNITS_MAX = {"_s": 366 * 86400, "_seconds": 366 * 86400, "_minutes": 366 * 1440, "_hours": 366 * 24,
                       "_days": 3660}
"""Every duration in config (a field named *_s, *_seconds, *_minutes, *_hours, *_days) is at most about a
year (days: ten years): a larger value is a typo that would overflow a date later, so `config check` says so."""


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=False)

    @model_validator(mode="after")
    def _durations_in_range(self) -> Any:
        for name in type(self).model_fields:
            suffix = next((s for s in _DURATION_UNITS_MAX if name.endswith(s)), None)
            value = getattr(self, name, None) if suffix else None
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > _DURATION_UNITS_MAX[suffix]:
                unit = suffix.strip("_").replace("s", "seconds", 1) if suffix == "_s" else suffix.strip("_")
                raise problem(f"{name} is {value:g}, longer than any sensible setting",
                              f"at most {_DURATION_UNITS_MAX[suffix]:,} {unit}", at=name)
        return self


# ---------------------------------------------------------------------------- small value types

_IDENT = re.compile(r"^[a-z][a-z0-9_\-]*$")


def _identifier(v: str) -> str:
    if not _IDENT.match(v):
        raise problem(f"'{v}' is not a valid name",
                      "use lowercase letters, digits, '-' and '_', starting with a letter")
    return v


Identifier = Annotated[str, AfterValidator(_identifier)]


def _role(v: str) -> str:
    if v not in ROLES:
        raise problem(f"unknown role '{v}'", did_you_mean(v, ROLES))
    return v


RoleName = Annotated[str, AfterValidator(_role)]


def _tz(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(v, sorted(available_timezones()), n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else "use an IANA time zone name such as Europe/London"
        raise problem(f"unknown time zone '{v}'", hint) from None
    return v


TimeZoneName = Annotated[str, AfterValidator(_tz)]


def _hhmm(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        # YAML 1.1 reads an unquoted 10:00 as the base-60 integer 600
        raise problem("a time must be quoted", f'write it as "{v // 60:02d}:{v % 60:02d}"')
    if isinstance(v, str):
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", v.strip())
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            raise problem(f"'{v}' is not a time of day", 'write it as "HH:MM", e.g. "09:00"')
        return time(int(m.group(1)), int(m.group(2)))
    return v


LocalTime = Annotated[time, BeforeValidator(_hhmm)]


def _env_name(v: str) -> str:
    if not ENV_NAME.match(v):
        raise problem(f"'{v}' is not an environment variable name",
                      "use uppercase letters, digits and _, e.g. SLACK_BOT_TOKEN")
    return v


EnvVarName = Annotated[str, AfterValidator(_env_name)]


def _url(v: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    bad = malformed_env_ref(v)
    if bad:
        raise problem(f"malformed environment reference '{bad}'", "write ${NAME} with NAME in uppercase")
    scheme = v.split("://", 1)[0].lower() if "://" in v else ""
    if scheme not in schemes:
        raise problem("not a URL", f"expected a {' or '.join(s + '://' for s in schemes)} URL")
    return v


Url = Annotated[str, AfterValidator(_url)]


def _rpc_url(v: str) -> str:
    if v == FROM_DEVNET:
        return v
    if v.startswith(FROM_DEVNET):
        raise problem(f"'{v}' is not a valid RPC URL",
                      f"write exactly '{FROM_DEVNET}' to read rpc_url from .vvops/devnet.json")
    return _url(v, ("http", "https", "ws", "wss"))


RpcUrl = Annotated[str, AfterValidator(_rpc_url)]


def _address_ref(v: str) -> str:
    if v.startswith(FROM_DEVNET_PREFIX):
        key = v[len(FROM_DEVNET_PREFIX):]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z_][A-Za-z0-9_\-]*)*", key):
            raise problem(f"'{v}' is not a valid devnet reference",
                          "write from-devnet:<key> (a contracts key) or from-devnet:accounts.<name>")
        return v
    if not is_hex_address(v):
        raise problem(f"'{v}' is not an address",
                      "write a 0x-prefixed 40-hex-digit checksummed address or from-devnet:<key>")
    if not is_checksum_address(v):
        raise problem("address fails the EIP-55 checksum", f"write it as {to_checksum_address(v)}")
    return v


AddressRef = Annotated[str, AfterValidator(_address_ref)]


def _person_address(v: str) -> str:
    if v.startswith(FROM_DEVNET_PREFIX):
        raise problem("a person's address is their own signing address", "write a checksummed 0x address")
    return _address_ref(v)
"""A checksummed 0x address, or `from-devnet:<key>` read from .vvops/devnet.json."""

_GETTER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _getter(v: str) -> str:
    v = v[:-2] if v.endswith("()") else v
    if not _GETTER.match(v):
        raise problem(f"'{v}' is not a contract function name", "write the getter's name, e.g. totalAssets")
    return v


GetterName = Annotated[str, AfterValidator(_getter)]


def _check_id(v: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+", v):
        raise problem(f"'{v}' is not a valid check id", "use dotted lowercase words, e.g. protocol.contract_state")
    return v


CheckId = Annotated[str, AfterValidator(_check_id)]


def _channel(v: str) -> str:
    if re.fullmatch(r"#[a-z0-9][a-z0-9_\-]{0,79}", v) or re.fullmatch(r"[CG][A-Z0-9]{8,}", v):
        return v
    raise problem(f"'{v}' is not a Slack channel", "write #channel-name (lowercase) or a channel id like C0123ABCD")


SlackChannel = Annotated[str, AfterValidator(_channel)]


def _slack_user(v: str) -> str:
    if not re.fullmatch(r"[UW][A-Z0-9]{8,}", v):
        raise problem(f"'{v}' is not a Slack user id", "copy the member id from the Slack profile, e.g. U0123ABCD")
    return v


SlackUserId = Annotated[str, AfterValidator(_slack_user)]


def _email(v: str) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", v):
        raise problem(f"'{v}' is not an email address", "write name@example.com")
    return v


Email = Annotated[str, AfterValidator(_email)]


def _tuple_of(v: Any) -> Any:
    """Let a single string stand for a one-item list (`notify: person:alice`)."""
    return [v] if isinstance(v, str) else v


_TARGET = re.compile(r"^(rotation:[a-z][a-z0-9_\-]*(:secondary)?|person:[a-z][a-z0-9_\-]*|role:[a-z_]+)$")


def _target(v: str) -> str:
    if not _TARGET.match(v):
        raise problem(f"'{v}' is not a notification target",
                      "write rotation:<name>, rotation:<name>:secondary, person:<id> or role:<role>")
    if v.startswith("role:"):
        _role(v[5:])
    return v


NotifyTarget = Annotated[str, AfterValidator(_target)]

PositiveInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


# ---------------------------------------------------------------------------- environments.yaml

class SafeSettings(Frozen):
    """The Safe multisig that holds timelock roles in this environment (docs/deployment.md "Connecting a Safe")."""

    address: AddressRef
    """The Safe proxy. Devnet: `from-devnet:safe`, present only when the devnet runs `--governance safe`."""
    version: Literal["1.3.0", "1.4.1"] = "1.4.1"
    holds: Annotated[tuple[Literal["proposer", "executor"], ...], Field(min_length=1)] = ("proposer",)
    """Timelock roles only the Safe holds: those calls become Safe transactions the owners confirm."""
    executor_role: Identifier = "governance"
    """Signer role whose key sends execTransaction once the owners' threshold is met (it pays the gas)."""
    transaction_service_url: Url | None = None
    """Propose there and poll its confirmations; null: owners sign offline (Prefect UI, Slack, `vvops safe confirm`)."""
    multi_send: AddressRef | None = None
    """MultiSend library (batches); devnet: from-devnet:safe.multi_send."""


def _flow_name(v: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", v):
        raise problem(f"{v!r} is not a flow name", "use a deployment's flow name such as daily-checks")
    return v


def _cron_or_off(v: Any) -> str | None:
    from .cron import CronError, check_cron

    if v is None or v is False or (isinstance(v, str) and v.strip().lower() == "off"):
        return None
    if not isinstance(v, str):
        raise problem(f"{v!r} is not a cron expression", "write a quoted five-field cron such as '0 6 * * *', or off")
    try:
        return check_cron(v)
    except CronError as exc:
        raise problem(str(exc), "write a five-field cron such as '0 6 * * *' (UTC), or off for on demand") from None


FlowName = Annotated[str, AfterValidator(_flow_name)]
CronOrOff = Annotated[str | None, BeforeValidator(_cron_or_off)]


PROOF_KINDS = ("eip712", "slack", "safe", "typed_name")
"""Kinds of proof of a person (vvops.identity.proofs); a new kind is added here and registers a verifier."""


def _proof_kind(v: str) -> str:
    if v not in PROOF_KINDS:
        raise problem(f"'{v}' is not a kind of proof", f"write one of {', '.join(PROOF_KINDS)}")
    return v


class IdentityRules(Frozen):
    """What proves who decided, proposed or acted on this environment (README "Security model")."""

    proofs: Annotated[tuple[Annotated[str, AfterValidator(_proof_kind)], ...], Field(min_length=1)] = ("eip712", "slack", "safe")
    """Accepted proofs (`safe`: a Safe owner confirmation by the person's `safe_owner`). `typed_name` (a name typed in a form or on the CLI) proves nothing: devnet only."""
    devnet_keys: bool = False
    """Trust the roster's public devnet keys (derived from each person's id; anybody can compute them)."""


class Environment(Frozen):
    """One chain the vault runs on."""

    chain_id: PositiveInt
    rpc_urls: Annotated[tuple[RpcUrl, ...], Field(min_length=1)]
    """In priority order (the first healthy one is used). `from-devnet` reads rpc_url from .vvops/devnet.json."""
    confirmations: NonNegInt = 1
    block_time_s: PositiveFloat = 12.0
    explorer_url: Url | None = None
    rpc_timeout_s: PositiveFloat = 10.0
    description: str = ""
    safe: SafeSettings | None = None
    """A Safe holding the timelock's proposer role: procedures go through its owners' confirmations."""
    schedules: dict[FlowName, CronOrOff] = {}
    """Per-flow schedule for this environment's deployments: a cron (UTC), or `off` for on demand only.
    A flow not listed keeps its default (deployments/__init__.py)."""
    identity: IdentityRules = IdentityRules()

    @property
    def uses_devnet(self) -> bool:
        return FROM_DEVNET in self.rpc_urls

    def resolve_rpc_urls(self, *, devnet_json: dict | None = None, environ: dict[str, str] | None = None,
                         name: str = "?") -> tuple[SecretStr, ...]:
        """The RPC URLs with `${VAR}` resolved and `from-devnet` read from devnet.json (secrets: print masked)."""
        from .loader import devnet_rpc_url  # local import: loader imports this module

        out = []
        for i, url in enumerate(self.rpc_urls):
            if url == FROM_DEVNET:
                out.append(SecretStr(devnet_rpc_url(devnet_json)))
            else:
                out.append(SecretStr(resolve_env(url, environ=environ, file="environments.yaml",
                                                 key_path=f"environments.{name}.rpc_urls[{i}]")))
        return tuple(out)


class StoreSettings(Frozen):
    """Where flows keep results. The URL can be replaced only through the VVOPS_STORE_URL variable."""

    URL_ENV: ClassVar[str] = "VVOPS_STORE_URL"
    url: str = "sqlite:///ops.db"
    """A relative sqlite path is relative to the state dir (VVOPS_HOME, default .vvops/)."""
    connect_timeout_s: PositiveFloat = 10.0
    audit_key_env: EnvVarName = "VVOPS_AUDIT_KEY"
    """The variable holding the audit chain's HMAC key (never in config or the database; devnet has a default)."""
    audit_anchor_file: str = "audit-anchors.jsonl"
    """Append-only file of published audit heads (relative: in the state dir); ship it off-host."""

    def anchor_path(self) -> Path:
        from vvops import paths

        path = Path(self.audit_anchor_file)
        return path if path.is_absolute() else paths.state_dir() / path

    @model_validator(mode="after")
    def _no_password(self) -> StoreSettings:
        if "://" not in self.url:
            raise problem("url is not a database URL", "write sqlite:///ops.db; set VVOPS_STORE_URL for PostgreSQL",
                          at="url")
        return self

    def resolved_url(self) -> SecretStr:
        """VVOPS_STORE_URL when set, else `url` with a relative sqlite path placed in the state dir."""
        from vvops.store.db import default_store_url

        return SecretStr(default_store_url(self.url))


class PrefectSettings(Frozen):
    api_url: Url = "http://127.0.0.1:4200/api"
    """Used when PREFECT_API_URL is not set."""
    work_pool: Identifier | None = None
    flow_run_retention_days: PositiveInt = 30


class EnvironmentsFile(Frozen):
    default_environment: str = "devnet"
    environments: Annotated[dict[Identifier, Environment], Field(min_length=1)]
    store: StoreSettings = StoreSettings()
    prefect: PrefectSettings = PrefectSettings()


# ---------------------------------------------------------------------------- contracts.yaml

class Parameter(Frozen):
    """A bounded, governable parameter: read with `getter`, changed with `setter` (through the timelock)."""

    getter: GetterName
    setter: GetterName | None = None
    min: int
    max: int
    unit: str = ""
    decimals: NonNegInt | None = None
    description: str = ""

    @model_validator(mode="after")
    def _order(self) -> Parameter:
        if self.min > self.max:
            raise problem(f"min ({self.min}) is larger than max ({self.max})", "swap them", at="min")
        return self

    def allows(self, value: int) -> bool:
        return self.min <= value <= self.max


_OPS = {">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b,
        "<": lambda a, b: a < b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}


class Invariant(Frozen):
    """`left op right`: both sides are getters, or `right_value` is a constant."""

    name: Identifier
    left: GetterName
    op: Literal[">=", ">", "<=", "<", "==", "!="]
    right: GetterName | None = None
    right_value: int | None = None
    severity: Severity = "P1"
    description: str = ""

    @model_validator(mode="after")
    def _one_right(self) -> Invariant:
        if (self.right is None) == (self.right_value is None):
            raise problem("give exactly one of right or right_value",
                          "right: <getter> compares two getters; right_value: <number> compares with a constant")
        return self

    def holds(self, left: int, right: int) -> bool:
        return _OPS[self.op](left, right)

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right if self.right is not None else self.right_value}"


_ACCESS_ROLE = re.compile(r"^([A-Z][A-Z0-9_]*|0x[0-9a-fA-F]{64})$")


def _access_role(v: str) -> str:
    if not _ACCESS_ROLE.match(v):
        raise problem(f"'{v}' is not an AccessControl role",
                      "write the role's constant name (GOVERNANCE_ROLE, DEFAULT_ADMIN_ROLE) or its 0x bytes32 id")
    return v


AccessRoleName = Annotated[str, AfterValidator(_access_role)]


class Deployment(Frozen):
    """Where a contract lives in one environment and what its state must be."""

    address: AddressRef
    roles: dict[GetterName, AddressRef] = {}
    """`access: ownable`: getter → expected account (e.g. owner: from-devnet:timelock)."""
    role_holders: dict[AccessRoleName, Annotated[tuple[AddressRef, ...], BeforeValidator(_tuple_of)]] = {}
    """`access: access-control`: role name → every account expected to hold it (checked with hasRole; any other
    holder found by replaying RoleGranted/RoleRevoked is reported)."""
    approved_implementations: tuple[AddressRef, ...] = ()
    expect: dict[GetterName, bool | int | str] = {}
    """getter → expected value (e.g. paused: false)."""
    deployed_block: NonNegInt | None = None


class ActivityEvent(Frozen):
    """Which event is a deposit (or withdrawal) and which of its fields are the user and the amount (unset: the
    usual names — owner/user/account/receiver/sender, assets/amount/value)."""

    event: GetterName
    user: GetterName | None = None
    amount: GetterName | None = None


class ActivityEvents(Frozen):
    deposit: ActivityEvent | None = None
    withdraw: ActivityEvent | None = None


class Contract(Frozen):
    name: Identifier
    kind: ContractKind
    artifact: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    """contracts/artifacts/<artifact>.json holds the ABI."""
    abi: str | None = None
    """Path to the ABI (relative to the repo root, or absolute): a Foundry `out/X.sol/X.json`, a Hardhat artifact,
    our artifacts or a plain ABI JSON list. Wins over `artifact`."""
    proxy: ProxyKind = "none"
    """How the contract is upgraded: uups (upgradeToAndCall on the proxy), transparent (the ProxyAdmin in the
    ERC-1967 admin slot), beacon (upgradeTo on the beacon in the ERC-1967 beacon slot), none."""
    access: AccessModel = "ownable"
    """ownable: `roles` are getters returning one account; access-control: `role_holders` by role name."""
    purposes: tuple[Purpose, ...] | None = None
    """What the procedures use it as (default by kind: vault → pause/parameter/upgrade target, timelock →
    governance-timelock, multicall → multicall)."""
    activity: ActivityEvents | None = None
    """Event mapping for the activity check (default: Deposit/Withdraw; ERC-4626 and ours both match)."""
    description: str = ""
    deployments: dict[Identifier, Deployment]
    getters: tuple[GetterName, ...] = ()
    """Extra view functions the state check records (e.g. version, paused)."""
    parameters: dict[GetterName, Parameter] = {}
    """parameter name (usually its getter, e.g. feeBps) → bounds."""
    invariants: tuple[Invariant, ...] = ()

    def deployment(self, environment: str) -> Deployment | None:
        return self.deployments.get(environment)

    @property
    def serves(self) -> tuple[str, ...]:
        return self.purposes if self.purposes is not None else DEFAULT_PURPOSES.get(self.kind, ())

    @property
    def abi_source(self) -> str | None:
        """What to load the ABI from: `abi` (a path) or `artifact` (a name in contracts/artifacts)."""
        return self.abi or self.artifact

    @property
    def activity_events(self) -> dict[str, tuple[str, str | None, str | None]]:
        """{"deposit"|"withdraw": (event, user field, amount field)} for what contracts.yaml maps."""
        if self.activity is None:
            return {}
        return {kind: (e.event, e.user, e.amount) for kind, e in (("deposit", self.activity.deposit),
                                                                  ("withdraw", self.activity.withdraw)) if e}


class ContractsFile(Frozen):
    contracts: tuple[Contract, ...]

    def get(self, name: str) -> Contract:
        for c in self.contracts:
            if c.name == name:
                return c
        raise KeyError(name)

    def of_kind(self, kind: str) -> tuple[Contract, ...]:
        return tuple(c for c in self.contracts if c.kind == kind)

    def deployed_in(self, environment: str) -> tuple[Contract, ...]:
        return tuple(c for c in self.contracts if environment in c.deployments)

    def serving(self, purpose: str, environment: str) -> tuple[Contract, ...]:
        """Contracts deployed in `environment` that serve `purpose` (see PURPOSES)."""
        return tuple(c for c in self.deployed_in(environment) if purpose in c.serves)


# ---------------------------------------------------------------------------- checks.yaml

class Threshold(Frozen):
    """`direction: above` — higher is worse, so warn < crit; `below` — lower is worse, so warn > crit."""

    warn: float | None = None
    crit: float | None = None
    direction: Literal["above", "below"]
    unit: str

    @model_validator(mode="after")
    def _order(self) -> Threshold:
        w, c = self.warn, self.crit
        if w is None and c is None:
            raise problem("a threshold needs warn, crit or both", "add crit: <value>", at="crit")
        if w is not None and c is not None:
            if self.direction == "above" and not w < c:
                raise problem(f"warn ({_num(w)}) must be below crit ({_num(c)}) when direction is above",
                              "with direction: above a higher value is worse, so warn < crit", at="warn")
            if self.direction == "below" and not w > c:
                raise problem(f"warn ({_num(w)}) must be above crit ({_num(c)}) when direction is below",
                              "with direction: below a lower value is worse, so warn > crit", at="warn")
        return self

    def evaluate(self, value: float) -> Literal["ok", "warn", "crit"]:
        worse = (lambda v, t: v >= t) if self.direction == "above" else (lambda v, t: v <= t)
        if self.crit is not None and worse(value, self.crit):
            return "crit"
        if self.warn is not None and worse(value, self.warn):
            return "warn"
        return "ok"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


class AlertSeverity(Frozen):
    """Which incident severity a warn / crit result raises."""

    warn: Severity = "P3"
    crit: Severity = "P2"


class CheckOverride(Frozen):
    """Per-environment changes: `params` are merged key by key, `thresholds` replace by name."""

    enabled: bool | None = None
    params: dict[str, Any] = {}
    thresholds: dict[Identifier, Threshold] = {}


class Check(Frozen):
    id: CheckId
    area: CheckArea
    title: str
    description: str = ""
    enabled: bool = True
    params: dict[str, Any] = {}
    thresholds: dict[Identifier, Threshold] = {}
    severity: AlertSeverity = AlertSeverity()
    timeout_s: PositiveFloat = 60.0
    overrides: dict[Identifier, CheckOverride] = {}
    """environment name → CheckOverride."""

    def for_environment(self, environment: str) -> Check:
        """This check with the environment's override applied (and `overrides` emptied)."""
        o = self.overrides.get(environment)
        update: dict[str, Any] = {"overrides": {}}
        if o is not None:
            if o.enabled is not None:
                update["enabled"] = o.enabled
            update["params"] = {**self.params, **o.params}
            update["thresholds"] = {**self.thresholds, **o.thresholds}
        return self.model_copy(update=update)

    def typed_params(self, environment: str | None = None) -> BaseModel | dict[str, Any]:
        """The params as their typed model (see `vvops.config.checks_params`), or the dict for custom checks."""
        from .check_params import CHECK_PARAMS

        params = self.for_environment(environment).params if environment else self.params
        model = CHECK_PARAMS.get(self.id)
        return model.model_validate(params) if model else dict(params)


class ChecksFile(Frozen):
    checks: tuple[Check, ...]

    def get(self, check_id: str) -> Check:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def enabled(self, environment: str | None = None) -> tuple[Check, ...]:
        checks = (c.for_environment(environment) if environment else c for c in self.checks)
        return tuple(c for c in checks if c.enabled)

    def by_area(self, area: str) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.area == area)


# ---------------------------------------------------------------------------- team.yaml

class Person(Frozen):
    id: Identifier
    name: str
    email: Email
    slack_user_id: SlackUserId
    timezone: TimeZoneName
    roles: Annotated[tuple[RoleName, ...], Field(min_length=1)]
    active: bool = True
    safe_owner: dict[Identifier, AddressRef] = Field(default_factory=dict)
    """environment → the Safe owner address this person signs with (their confirmation is their approval)."""
    address: Annotated[str, AfterValidator(_person_address)] | None = None
    """The Ethereum address whose EIP-712 signatures prove this person (checksummed)."""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class TeamFile(Frozen):
    team: str = "VeritasVault Operations"
    people: Annotated[tuple[Person, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_addresses(self) -> TeamFile:
        if len({p.id for p in self.people}) != len(self.people):
            return self  # a duplicate person is reported as such by the loader
        seen: dict[str, str] = {}
        for i, p in enumerate(self.people):
            if p.address and p.address.lower() in seen:
                raise problem(f"{p.id} and {seen[p.address.lower()]} list the same address",
                              "each person signs with their own key", at=f"people.{i}.address")
            if p.address:
                seen[p.address.lower()] = p.id
        return self

    def get(self, person_id: str) -> Person:
        for p in self.people:
            if p.id == person_id:
                return p
        raise KeyError(person_id)

    def with_role(self, role: str, *, active_only: bool = True) -> tuple[Person, ...]:
        return tuple(p for p in self.people if role in p.roles and (p.active or not active_only))


# ---------------------------------------------------------------------------- slack.yaml

class SlackChannels(Frozen):
    ops: SlackChannel
    alerts: SlackChannel
    incidents: SlackChannel
    approvals: SlackChannel
    reports: SlackChannel
    audit: SlackChannel = "#vv-audit"
    """The published head of the audit log (rows + hash) after every ops sweep that changed it."""

    def for_key(self, key: str) -> str:
        return getattr(self, key)


class SlackFile(Frozen):
    enabled: bool = True
    """false: messages are logged instead of sent (also the behaviour when the token variable is unset)."""
    channels: SlackChannels
    bot_token_env: EnvVarName = "SLACK_BOT_TOKEN"
    signing_secret_env: EnvVarName = "SLACK_SIGNING_SECRET"
    api_base_url: Url = "https://slack.com/api/"
    incident_mode: Literal["thread", "channel"] = "thread"
    """thread: one thread per incident in #incidents; channel: a new channel per incident."""
    incident_channel_prefix: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")] = "inc-"
    mention_oncall_for: tuple[Severity, ...] = ("P0", "P1")
    timeout_s: PositiveFloat = 10.0
    max_retries: NonNegInt = 3

    def bot_token(self, environ: dict[str, str] | None = None) -> SecretStr | None:
        import os

        value = (os.environ if environ is None else environ).get(self.bot_token_env)
        return SecretStr(value) if value else None

    def signing_secret(self, environ: dict[str, str] | None = None) -> SecretStr | None:
        import os

        value = (os.environ if environ is None else environ).get(self.signing_secret_env)
        return SecretStr(value) if value else None


# ---------------------------------------------------------------------------- oncall.yaml

class Override(Frozen):
    """`person` covers `slot` from `start` to `end` (naive times are in the rotation's time zone)."""

    person: Identifier
    start: datetime
    end: datetime
    reason: str = ""
    slot: Literal["primary", "secondary"] = "primary"

    @model_validator(mode="after")
    def _order(self) -> Override:
        a, b = self.start, self.end
        if (a.tzinfo is None) == (b.tzinfo is None) and b <= a:
            raise problem("end must be after start", "check the dates of the override", at="end")
        return self


class Rotation(Frozen):
    name: Identifier
    description: str = ""
    members: Annotated[tuple[Identifier, ...], Field(min_length=1)]
    """Person ids in hand-off order; the secondary is the next member."""
    handoff: Literal["daily", "weekly"]
    handoff_day: Weekday | None = None
    handoff_time: LocalTime = time(9, 0)
    timezone: TimeZoneName
    start: date
    """Date of the first hand-off, when members[0] takes over (a handoff_day for weekly rotations)."""
    overrides: tuple[Override, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Rotation:
        if self.handoff == "weekly":
            if self.handoff_day is None:
                raise problem("a weekly rotation needs handoff_day", "add handoff_day: monday (or another weekday)",
                              at="handoff_day")
            want = WEEKDAYS.index(self.handoff_day)
            if self.start.weekday() != want:
                fix = self.start + timedelta(days=(want - self.start.weekday()) % 7)
                raise problem(f"start {self.start.isoformat()} is a {WEEKDAYS[self.start.weekday()]} "
                              f"but handoff_day is {self.handoff_day}", f"use start: {fix.isoformat()}", at="start")
        elif self.handoff_day is not None:
            raise problem("handoff_day is only used by weekly rotations", "remove it or use handoff: weekly",
                          at="handoff_day")
        seen = set()
        for m in self.members:
            if m in seen:
                raise problem(f"'{m}' is listed twice in members", "list each person once", at="members")
            seen.add(m)
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class EscalationStep(Frozen):
    notify: Annotated[tuple[NotifyTarget, ...], BeforeValidator(_tuple_of), Field(min_length=1)]
    wait_minutes: NonNegInt = 15
    """How long to wait for an acknowledgement before the next step."""


class EscalationPolicy(Frozen):
    name: Identifier
    description: str = ""
    steps: Annotated[tuple[EscalationStep, ...], Field(min_length=1)]
    repeat: NonNegInt = 0
    """How many more times to run all steps when nobody acknowledges."""


class SeverityLevel(Frozen):
    name: str
    description: str
    ack_sla_minutes: PositiveInt
    response_sla_minutes: PositiveInt
    update_interval_minutes: PositiveInt
    escalation_policy: Identifier
    page: bool = False
    """Page the on-call (mention + escalation) rather than post only."""
    war_room: bool = False

    @model_validator(mode="after")
    def _order(self) -> SeverityLevel:
        if self.ack_sla_minutes > self.response_sla_minutes:
            raise problem("ack_sla_minutes is longer than response_sla_minutes",
                          "acknowledging comes before responding: ack_sla_minutes <= response_sla_minutes",
                          at="ack_sla_minutes")
        return self


class SeverityMatrix(Frozen):
    P0: SeverityLevel
    P1: SeverityLevel
    P2: SeverityLevel
    P3: SeverityLevel

    def get(self, severity: str) -> SeverityLevel:
        return getattr(self, severity)

    def items(self) -> list[tuple[str, SeverityLevel]]:
        return [(s, getattr(self, s)) for s in SEVERITIES]


class IncidentType(Frozen):
    description: str
    owner_role: RoleName
    examples: tuple[str, ...] = ()
    escalation_policy: Identifier | None = None


class IncidentTypes(Frozen):
    technical: IncidentType
    security: IncidentType
    operational: IncidentType
    external: IncidentType

    def get(self, kind: str) -> IncidentType:
        return getattr(self, kind)


class OncallFile(Frozen):
    rotations: Annotated[tuple[Rotation, ...], Field(min_length=1)]
    escalation_policies: Annotated[tuple[EscalationPolicy, ...], Field(min_length=1)]
    severities: SeverityMatrix
    incident_types: IncidentTypes

    def rotation(self, name: str) -> Rotation:
        for r in self.rotations:
            if r.name == name:
                return r
        raise KeyError(name)

    def policy(self, name: str) -> EscalationPolicy:
        for p in self.escalation_policies:
            if p.name == name:
                return p
        raise KeyError(name)


# ---------------------------------------------------------------------------- procedures.yaml

class ApprovalOverride(Frozen):
    approver_role: RoleName | None = None
    quorum: NonNegInt | None = None
    proposer_excluded: bool | None = None
    expiry_minutes: PositiveInt | None = None
    escalate_after_minutes: PositiveInt | None = None
    escalation_policy: Identifier | None = None
    auto_approve_severities: tuple[Severity, ...] | None = None


class ApprovalPolicy(Frozen):
    """Who must approve a procedure before it runs."""

    approver_role: RoleName = "ops_lead"
    quorum: NonNegInt = 1
    proposer_excluded: bool = True
    """The person who proposed the change cannot approve it."""
    expiry_minutes: PositiveInt = 240
    """The request fails (and nothing runs) when not approved in time."""
    escalate_after_minutes: PositiveInt | None = None
    escalation_policy: Identifier | None = None
    auto_approve_severities: tuple[Severity, ...] = ()
    """Incident severities for which the procedure runs at once (e.g. emergency pause on P0)."""
    channel: SlackChannelKey = "approvals"
    environments: dict[Identifier, ApprovalOverride] = {}
    """environment name → fields that differ there (e.g. mainnet: {quorum: 2})."""

    @model_validator(mode="after")
    def _quorum(self) -> ApprovalPolicy:
        if self.quorum == 0 and not self.auto_approve_severities:
            raise problem("quorum 0 means nobody approves", "use quorum: 1 or more", at="quorum")
        if self.escalate_after_minutes and self.escalate_after_minutes >= self.expiry_minutes:
            raise problem("escalate_after_minutes is not before expiry_minutes",
                          "escalate before the request expires", at="escalate_after_minutes")
        return self

    def for_environment(self, environment: str | None) -> ApprovalPolicy:
        o = self.environments.get(environment) if environment else None
        update: dict[str, Any] = {"environments": {}}
        if o is not None:
            update.update({k: v for k, v in o.model_dump(exclude_none=True).items()})
            if "auto_approve_severities" in update:
                update["auto_approve_severities"] = tuple(update["auto_approve_severities"])
        return self.model_copy(update=update)

    def auto_approves(self, severity: str | None) -> bool:
        return severity is not None and severity in self.auto_approve_severities


class ApprovalPolicies(Frozen):
    parameter_change: ApprovalPolicy
    upgrade_rollout: ApprovalPolicy
    emergency_pause: ApprovalPolicy
    unpause: ApprovalPolicy
    incident_containment: ApprovalPolicy
    public_statement: ApprovalPolicy
    """Anything said in public about an incident (status page text, webhooks, partner email)."""
    public_statement_security: ApprovalPolicy
    """A second approval for statements about security incidents (security operations signs off too)."""

    def get(self, procedure: str) -> ApprovalPolicy:
        if procedure not in type(self).model_fields:
            raise KeyError(procedure)
        return getattr(self, procedure)

    def items(self) -> list[tuple[str, ApprovalPolicy]]:
        return [(k, getattr(self, k)) for k in type(self).model_fields]


class IncidentProcedure(Frozen):
    post_incident_report_due_days: PositiveInt = 5
    """The post-incident report is due this many days after resolution."""
    reopen_window_hours: NonNegInt = 24
    action_item_due_days: PositiveInt = 14
    """A post-incident action item without its own `due YYYY-MM-DD` is due this many days after resolution."""


class UpgradeProcedure(Frozen):
    stabilisation_hours: PositiveInt = 24
    """Watch period after an upgrade before it is declared done."""
    stabilisation_check_every_minutes: PositiveInt = 15
    """During that period the protocol-health checks run this often (from the every-minute ops sweep)."""
    require_approved_implementation: bool = True


class DrillProcedure(Frozen):
    dr_drill_every_days: PositiveInt = 90
    tabletop_every_days: PositiveInt = 180


class ParameterChangeProcedure(Frozen):
    max_relative_change_pct: PositiveFloat | None = None
    """Reject a change that moves a parameter by more than this share of its current value."""
    cooldown_hours: NonNegInt = 0


class ActionRoles(Frozen):
    """Roles allowed to take a CLI action that changes what others rely on (proven like a decision)."""

    slot_release: Annotated[tuple[RoleName, ...], Field(min_length=1)] = ("ops_lead", "sre")
    """`vvops slots release`: free a contract slot someone else's run holds."""
    checklist_signoff_other_role: Annotated[tuple[RoleName, ...], Field(min_length=1)] = ("ops_lead",)
    """`vvops checklist confirm` of an item owned by a role the person does not hold."""
    action_item_close_other_roles: Annotated[tuple[RoleName, ...], Field(min_length=1)] = ("ops_lead",)
    """`vvops action-items done` of an item someone else owns."""


class ProceduresFile(Frozen):
    approvals: ApprovalPolicies
    actions: ActionRoles = ActionRoles()
    incidents: IncidentProcedure = IncidentProcedure()
    upgrades: UpgradeProcedure = UpgradeProcedure()
    drills: DrillProcedure = DrillProcedure()
    parameter_changes: ParameterChangeProcedure = ParameterChangeProcedure()


# ---------------------------------------------------------------------------- capacity.yaml

class CapacitySeries(Frozen):
    """A metric series the weekly capacity planning forecasts, with the limit it must stay within."""

    metric: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.]*$")]
    labels: dict[str, str] = {}
    title: str = ""
    limit: float
    direction: Literal["above", "below"] = "above"
    unit: str = ""
    action: str = ""

    def matches(self, metric: str, labels: dict[str, Any] | None) -> bool:
        """This entry covers the series `metric{labels}` (its labels include every configured one)."""
        have = {k: str(v) for k, v in (labels or {}).items()}
        return metric == self.metric and all(have.get(k) == v for k, v in self.labels.items())


class CapacityFile(Frozen):
    planning_horizon_days: PositiveInt = 90
    lookback_days: PositiveInt = 90
    resample: Literal["1h", "1D"] = "1D"
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95
    availability_slo_pct: Annotated[float, Field(gt=0, le=100)] = 99.5
    series: tuple[CapacitySeries, ...] = ()

    def spec_for(self, metric: str, labels: dict[str, Any] | None = None) -> CapacitySeries | None:
        """The first entry covering `metric{labels}`, or None."""
        return next((s for s in self.series if s.matches(metric, labels)), None)


# ---------------------------------------------------------------------------- alerting.yaml

from .alerting_schema import AlertingFile  # noqa: E402  (it builds on the types above)
from .communications_schema import CommunicationsFile  # noqa: E402
from .status_page_schema import StatusPageFile  # noqa: E402
from .runbooks_schema import RunbooksFile  # noqa: E402

# ---------------------------------------------------------------------------- everything

class OpsConfig(Frozen):
    """The whole validated configuration, for one selected environment."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    config_dir: Path
    environment: str
    environments: EnvironmentsFile
    contracts: ContractsFile
    checks: ChecksFile
    team: TeamFile
    slack: SlackFile
    oncall: OncallFile
    procedures: ProceduresFile
    capacity: CapacityFile = CapacityFile()
    alerting: AlertingFile = AlertingFile()
    status_page: StatusPageFile = StatusPageFile()
    communications: CommunicationsFile = CommunicationsFile()
    runbooks: RunbooksFile = RunbooksFile()

    @property
    def env(self) -> Environment:
        """The selected environment's chain settings."""
        return self.environments.environments[self.environment]

    @property
    def store(self) -> StoreSettings:
        return self.environments.store

    @property
    def prefect(self) -> PrefectSettings:
        return self.environments.prefect

    @property
    def people(self) -> tuple[Person, ...]:
        return self.team.people

    def person(self, person_id: str) -> Person:
        return self.team.get(person_id)

    def people_with_role(self, role: str) -> tuple[Person, ...]:
        return self.team.with_role(role)

    def contract_for(self, purpose: str) -> Contract:
        """The one contract of this environment that serves `purpose` (governance-timelock, multicall, ...); for
        pause/parameter/upgrade targets the first one. ConfigError names the purpose when there is none."""
        from .errors import ConfigError, ConfigProblem

        found = self.contracts.serving(purpose, self.environment)
        if not found:
            raise ConfigError(ConfigProblem("contracts.yaml", "contracts",
                                            f"no contract serves as {purpose} in environment '{self.environment}'",
                                            f"add `purposes: [{purpose}]` to the contract and a deployments."
                                            f"{self.environment} entry"))
        return found[0]

    def contract(self, name: str) -> Contract:
        return self.contracts.get(name)

    def check(self, check_id: str) -> Check:
        """The check with this environment's overrides applied."""
        return self.checks.get(check_id).for_environment(self.environment)

    def enabled_checks(self) -> tuple[Check, ...]:
        return self.checks.enabled(self.environment)

    def rotation(self, name: str) -> Rotation:
        return self.oncall.rotation(name)

    def escalation_policy(self, name: str) -> EscalationPolicy:
        return self.oncall.policy(name)

    def severity(self, severity: str) -> SeverityLevel:
        return self.oncall.severities.get(severity)

    def resolve_rpc_urls(self, *, devnet_json: dict | None = None,
                         environ: dict[str, str] | None = None) -> tuple[SecretStr, ...]:
        """The selected environment's RPC URLs, resolved (`${VAR}`, from-devnet); they print masked."""
        return self.env.resolve_rpc_urls(devnet_json=devnet_json, environ=environ, name=self.environment)

    def approval_policy(self, procedure: str) -> ApprovalPolicy:
        """The approval policy for `procedure` with this environment's override applied."""
        return self.procedures.approvals.get(procedure).for_environment(self.environment)

    def summary(self) -> str:
        return (f"{len(self.checks.checks)} checks, {len(self.team.people)} people, "
                f"{len(self.contracts.contracts)} contracts, {len(self.oncall.rotations)} rotations, "
                f"{len(self.oncall.escalation_policies)} escalation policies, "
                f"{len(self.environments.environments)} environments")

