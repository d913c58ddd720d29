"""Load config/*.yaml, validate every file and the references between them, report every problem.

    cfg = load_config()                      # devnet, from vvops.paths.config_dir()
    cfg = load_config(environment="mainnet")
    lines = check_config(path)               # [] when valid; validates every environment

Problems are collected across all files (a broken file does not hide problems in the others);
checks that need a file which itself failed validation are skipped for that run.
Key paths: mapping keys joined with `.`, list items as `[index]` (e.g. `people[3].roles[0]`).
"""

from __future__ import annotations

import collections.abc
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from eth_utils import is_hex_address, to_checksum_address
from pydantic import BaseModel, ValidationError

from vvops import paths

from .check_params import CHECK_PARAMS
from .errors import FILE_LEVEL, ConfigError, ConfigProblem, DevnetRefError
from .schema import (
    FROM_DEVNET_PREFIX,
    SINGLE_PURPOSES,
    ROLES,
    CapacityFile,
    ChecksFile,
    ContractsFile,
    EnvironmentsFile,
    OncallFile,
    OpsConfig,
    ProceduresFile,
    SlackFile,
    TeamFile,
    did_you_mean,
)
from .alerting_schema import AlertingFile, Route  # noqa: E402,I001  (after .schema: it builds on it)
from .communications_schema import CommunicationsFile  # noqa: E402
from .status_page_schema import StatusPageFile  # noqa: E402
from .runbooks_schema import RunbooksFile, runbook_problems  # noqa: E402
from .secrets import (
    is_secret_key,
    literal_key_in_url,
    literal_secret_value,
    malformed_env_ref,
    url_credentials_problem,
    walk,
)

__all__ = [
    "CONFIG_FILES",
    "load_config",
    "check_config",
    "load_devnet_json",
    "devnet_address",
    "devnet_rpc_url",
    "resolve_deployment",
    "resolve_purpose",
    "ResolvedDeployment",
]

#: file name → (root model, what the file holds). Every file is required.
CONFIG_FILES: dict[str, tuple[type[BaseModel], str]] = {
    "environments.yaml": (EnvironmentsFile, "chains, RPC URLs, store and Prefect settings"),
    "contracts.yaml": (ContractsFile, "contract addresses, roles, parameter bounds and invariants"),
    "checks.yaml": (ChecksFile, "the daily checks and their thresholds"),
    "team.yaml": (TeamFile, "the people, their Slack ids and roles"),
    "slack.yaml": (SlackFile, "Slack channels and the token variable names"),
    "oncall.yaml": (OncallFile, "rotations, escalation policies and the severity matrix"),
    "procedures.yaml": (ProceduresFile, "approval policies and procedure timings"),
    "alerting.yaml": (AlertingFile, "alert rules, the routing tree, inhibition rules, silences and maintenance windows"),
    "capacity.yaml": (CapacityFile, "capacity planning: limits per metric series and the planning horizon"),
}

#: file name → (root model, what the file holds) for files a deployment may leave out (their defaults apply).
OPTIONAL_CONFIG_FILES: dict[str, tuple[type[BaseModel], str]] = {
    "status_page.yaml": (StatusPageFile, "the public status page: components and the checks that set their state"),
    "communications.yaml": (CommunicationsFile, "public statements: templates, channels, partner and exchange contacts"),
    "runbooks.yaml": (RunbooksFile, "the runbook section that handles each alert rule and each check"),
}

ENVIRONMENT_VAR = "VVOPS_ENVIRONMENT"


# ---------------------------------------------------------------------------- YAML reading

class _DuplicateKey(Exception):
    pass


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: ~10x faster


class _StrictLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader that remembers duplicate keys (plain PyYAML silently keeps the last one)."""

    def __init__(self, stream: Any):
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            try:
                key = self.construct_object(key_node, deep=True)
                hash(key)
            except Exception:
                continue
            if key in seen:
                self.duplicates.append((key_node.start_mark.line + 1, str(key)))
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


MAX_YAML_NODES = 200_000
"""Values a config file may hold once its aliases are expanded (the shipped files hold a few thousand):
an alias bomb (`a: &a [x, x]`, `b: &b [*a, *a]`, ...) is refused before anything walks the expansion."""


def _expanded_size(root: yaml.Node | None) -> int:
    """How many nodes the document holds with every alias expanded, counted once per distinct node
    (memoised, so a bomb is measured in the time it takes to read it, not to expand it)."""
    if root is None:
        return 0
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                    else list(node.value))
        if children_done:
            sizes[id(node)] = min(1 + sum(sizes.get(id(c), 1) for c in children), 1 << 62)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def _read_yaml(path: Path, name: str, problems: list[ConfigProblem]) -> Any | None:
    if not path.is_file():
        _, what = CONFIG_FILES[name]
        problems.append(ConfigProblem(name, FILE_LEVEL, "file is missing",
                                      f"expected {name} in {path.parent}: {what}"))
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        problems.append(ConfigProblem(name, FILE_LEVEL, f"cannot read the file: {type(e).__name__}",
                                      "check the file's permissions and that it is UTF-8 text"))
        return None
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        expanded = _expanded_size(node)
        if expanded > MAX_YAML_NODES:
            problems.append(ConfigProblem(name, FILE_LEVEL,
                                          f"aliases expand to more than {MAX_YAML_NODES:,} values",
                                          "a config file is small: remove the nested &anchor/*alias chain"))
            return None
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else FILE_LEVEL
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        problems.append(ConfigProblem(name, where, f"invalid YAML: {what}",
                                      "check indentation, colons and quotes around that line"))
        return None
    finally:
        loader.dispose()
    for line, key in loader.duplicates:
        problems.append(ConfigProblem(name, f"line {line}", f"duplicate key '{key}'",
                                      "a key may appear once in a mapping; the later one would silently win"))
    if data is None:
        problems.append(ConfigProblem(name, FILE_LEVEL, "file is empty", f"it should hold {CONFIG_FILES[name][1]}"))
        return None
    if not isinstance(data, dict):
        problems.append(ConfigProblem(name, FILE_LEVEL, f"expected a mapping at the top, got {_describe(data)}",
                                      "write `key: value` lines at the top level"))
        return None
    return data


# ---------------------------------------------------------------------------- key paths and messages

def key_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """('people', 3, 'roles', 0) → 'people[3].roles[0]'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or FILE_LEVEL


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else "a long text"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def _unwrap(t: Any) -> Any:
    while True:
        origin = typing.get_origin(t)
        if origin is typing.Annotated:
            t = typing.get_args(t)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(t) if a is not type(None)]
            if len(args) != 1:
                return t
            t = args[0]
        else:
            return t


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class describing the mapping at `loc` (for 'did you mean' on unknown keys)."""
    t: Any = model
    for part in loc:
        t = _unwrap(t)
        if isinstance(t, type) and issubclass(t, BaseModel):
            f = t.model_fields.get(part) if isinstance(part, str) else None
            if f is None:
                return None
            t = f.annotation
        else:
            origin = typing.get_origin(t)
            args = typing.get_args(t)
            if origin in (list, tuple, collections.abc.Sequence) and args:
                t = args[0]
            elif origin in (dict, collections.abc.Mapping) and len(args) == 2:
                t = args[1]
            else:
                return None
    t = _unwrap(t)
    return t if isinstance(t, type) and issubclass(t, BaseModel) else None


def _clean_loc(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Drop pydantic's union-member and dict-key tags that are not real keys of the YAML."""
    out: list[Any] = []
    cur = data
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(cur, dict) and part in cur:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            out.append(part)
            cur = cur[part]
        elif isinstance(part, str) and (part in {"str", "int", "float", "bool", "none", "date", "datetime"}
                                         or "[" in part or part.startswith(("function-", "lax-", "json-"))):
            continue  # a union tag
        else:
            out.append(part)
            cur = None
    return tuple(out)


_TYPE_MESSAGES = {
    "int": ("expected a whole number", "write a number such as 12, without quotes or units"),
    "float": ("expected a number", "write a number such as 1.5, without quotes or units"),
    "bool": ("expected true or false", "write true or false"),
    "string": ("expected text", "put the value in quotes"),
    "list": ("expected a list", "write one `- item` per line, or [a, b]"),
    "tuple": ("expected a list", "write one `- item` per line, or [a, b]"),
    "dict": ("expected a mapping", "write `key: value` lines indented under this key"),
    "model": ("expected a mapping", "write `key: value` lines indented under this key"),
    "date": ("expected a date", "write YYYY-MM-DD, e.g. 2025-01-06"),
    "datetime": ("expected a date and time",
                 "write 2025-03-01T09:00:00+00:00 (without an offset it is read in the rotation's time zone)"),
    "time": ("expected a time of day", 'write "HH:MM" in quotes, e.g. "09:00"'),
}


def _translate(err: dict[str, Any], model: type[BaseModel], data: Any, file: str,
               prefix: tuple[Any, ...] = ()) -> ConfigProblem:
    rel = _clean_loc(tuple(err["loc"]), data)
    etype: str = err["type"]
    ctx = err.get("ctx") or {}
    if etype == "vvops" and ctx.get("at"):
        rel += tuple(str(ctx["at"]).split("."))
    loc = prefix + rel
    value = err.get("input")
    last = loc[-1] if loc else ""
    path = key_path(loc)
    if etype == "vvops":
        return ConfigProblem(file, path, str(ctx.get("message")), str(ctx.get("hint")))
    if etype == "missing":
        parent = key_path(loc[:-1]) if len(loc) > 1 else ""
        return ConfigProblem(file, path, "required key is missing",
                             f"add `{last}:` under {parent}" if parent else f"add `{last}:` at the top level")
    if etype == "extra_forbidden":
        owner = _model_at(model, rel[:-1])
        allowed = [k for k in owner.model_fields] if owner else []
        hint = did_you_mean(str(last), allowed, fallback=("allowed keys: " + ", ".join(allowed)) if allowed
                            else "remove it")
        return ConfigProblem(file, path, f"unknown key '{last}'", hint)
    if etype == "literal_error":
        import re

        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return ConfigProblem(file, path, f"{_describe(value)} is not allowed here", did_you_mean(str(value), choices))
    if etype in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[etype]
        bound = next(iter(ctx.values()), "?")
        return ConfigProblem(file, path, f"must be {op} {bound}, got {_describe(value)}", "change the value")
    if etype == "too_short":
        n = ctx.get("min_length", 1)
        return ConfigProblem(file, path, f"needs at least {n} item{'s' if n != 1 else ''}", "add the missing entries")
    if etype == "too_long":
        return ConfigProblem(file, path, f"has more than {ctx.get('max_length')} items", "remove some entries")
    if etype == "string_pattern_mismatch":
        return ConfigProblem(file, path, f"{_describe(value)} has the wrong format",
                             f"it must match {ctx.get('pattern')}")
    family = etype.split("_", 1)[0]
    if etype.startswith("datetime"):
        family = "datetime"
    if family in _TYPE_MESSAGES:
        msg, hint = _TYPE_MESSAGES[family]
        return ConfigProblem(file, path, f"{msg}, got {_describe(value)}", hint)
    if etype in ("value_error", "assertion_error"):
        msg = str(err.get("msg", "")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return ConfigProblem(file, path, msg, f"see the shipped config/{file}")
    return ConfigProblem(file, path, str(err.get("msg", "invalid value")), f"see the shipped config/{file}")


def _validate(model: type[BaseModel], data: Any, file: str, problems: list[ConfigProblem],
              prefix: tuple[Any, ...] = (), skip: set[tuple[Any, ...]] | None = None) -> BaseModel | None:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        seen: set[str] = set()
        found: list[tuple[tuple[Any, ...], str, ConfigProblem]] = []
        for err in e.errors(include_url=False):
            p = _translate(err, model, data, file, prefix)
            loc = prefix + _clean_loc(tuple(err["loc"]), data)
            if skip and any(loc[: len(s)] == s for s in skip):
                continue  # already reported (e.g. a secret written in YAML)
            if p.key_path in seen:
                continue
            seen.add(p.key_path)
            found.append((loc, err["type"], p))
        for loc, etype, p in found:
            # "needs at least 1 item" after its only item was rejected is noise
            if etype == "too_short" and any(len(o) > len(loc) and o[: len(loc)] == loc for o, _, _ in found):
                continue
            problems.append(p)
        return None


# ---------------------------------------------------------------------------- secrets in YAML

def _scan_secrets(data: Any, file: str) -> tuple[list[ConfigProblem], set[tuple[Any, ...]]]:
    problems: list[ConfigProblem] = []
    reported: set[tuple[Any, ...]] = set()
    for path, key, value in walk(data):
        if isinstance(key, str) and is_secret_key(key) and literal_secret_value(value):
            problems.append(ConfigProblem(
                file, key_path(path),
                "secrets come only from environment variables",
                f"use `{key}_env: NAME`"))
            reported.add(path)
            continue
        if not isinstance(value, str):
            continue
        in_rpc = any(isinstance(p, str) and ("rpc_url" in p or p.endswith("ws_url")) for p in path)
        if url_credentials_problem(value):
            if path[:2] == ("store", "url"):
                hint = "set the VVOPS_STORE_URL environment variable instead"
            else:
                hint = "take credentials from the environment: write user:${PASSWORD_VAR}@ or put the URL in a variable"
            problems.append(ConfigProblem(file, key_path(path), "URL contains embedded credentials (user:password@)",
                                          hint))
            reported.add(path)
            continue
        found = literal_key_in_url(value, rpc=in_rpc)
        if found:
            env = path[1] if len(path) > 1 and path[0] == "environments" else "ENV"
            var = f"VVOPS_{str(env).upper().replace('-', '_')}_RPC_KEY"
            problems.append(ConfigProblem(file, key_path(path), found,
                                          f"use ${{{var}}} in the URL and set the variable at run time"))
            reported.add(path)
            continue
        bad = malformed_env_ref(value)
        if bad:
            problems.append(ConfigProblem(file, key_path(path), f"malformed environment reference '{bad}'",
                                          "write ${NAME} with NAME made of uppercase letters, digits and _"))
            reported.add(path)
    return problems, reported


# ---------------------------------------------------------------------------- cross-file checks

@dataclass
class _Ctx:
    files: dict[str, BaseModel | None]
    environments: list[str]
    artifacts_dir: Path
    problems: list[ConfigProblem] = field(default_factory=list)

    def add(self, file: str, loc: tuple[Any, ...] | str, message: str, hint: str) -> None:
        self.problems.append(ConfigProblem(file, loc if isinstance(loc, str) else key_path(loc), message, hint))


def _duplicates(ctx: _Ctx, file: str, items: tuple[Any, ...], attr: str, top: str, what: str) -> None:
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        v = getattr(item, attr)
        if v in first:
            ctx.add(file, (top, i, attr), f"duplicate {what} '{v}'", f"already used by {top}[{first[v]}]")
        else:
            first[v] = i


_PLURAL = {"person": "person ids", "escalation policy": "escalation policies"}


def _unknown(kind: str, value: str, known: list[str], defined_in: str) -> tuple[str, str]:
    what = _PLURAL.get(kind, kind + "s")
    return (f"unknown {kind} '{value}'",
            did_you_mean(value, known, fallback=f"{what} are defined in {defined_in}"
                         + (f": {', '.join(known)}" if 0 < len(known) <= 8 else "")))


def _check_parameter_types(ctx: Any, index: int, contract: Any) -> None:
    """A parameter's bounds must fit its setter's Solidity type (a max above uint256 cannot be set)."""
    from vvops.procedures.parameters import solidity_int_range

    try:
        from vvops.chain.abi import Abi

        doc = json.loads((ctx.artifacts_dir / f"{contract.artifact}.json").read_text(encoding="utf-8"))
        abi = Abi(doc.get("abi", doc) if isinstance(doc, dict) else doc)
    except Exception:  # noqa: BLE001 - an unreadable artifact is reported by the caller
        return
    for name, param in contract.parameters.items():
        if not param.setter:
            continue
        try:
            inputs = abi.function(param.setter).get("inputs", [])
        except KeyError:
            continue
        if len(inputs) != 1:
            continue
        solidity_type = inputs[0].get("type", "")
        bounds = solidity_int_range(solidity_type)
        if bounds is None:
            continue
        for key in ("min", "max"):
            value = getattr(param, key)
            if not bounds[0] <= value <= bounds[1]:
                ctx.add("contracts.yaml", ("contracts", index, "parameters", name, key),
                        f"{key} {value} does not fit {param.setter}'s {solidity_type}",
                        f"keep it within [{bounds[0]}, {bounds[1]}]")


def _abi_functions(artifacts_dir: Path, artifact: str) -> set[str] | None:
    path = artifacts_dir / f"{artifact}.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    abi = doc.get("abi", doc) if isinstance(doc, dict) else doc
    if not isinstance(abi, list):
        return None
    return {e.get("name") for e in abi if isinstance(e, dict) and e.get("type") == "function"}


def _abi_path_functions(ctx: _Ctx, loc: tuple[Any, ...], source: str) -> set[str] | None:
    """Function names of a contracts.yaml `abi:` path (a problem when it is missing or holds no ABI)."""
    from vvops.chain.abi import AbiSourceError, abi_list_of, resolve_abi_path

    path = resolve_abi_path(source)
    try:
        abi = abi_list_of(json.loads(path.read_text(encoding="utf-8")), where=str(path))
    except OSError:
        ctx.add("contracts.yaml", loc, f"ABI file '{source}' not found",
                f"looked for {path}; a relative path is read from the config folder, then the repo root")
        return None
    except (ValueError, AbiSourceError) as error:
        ctx.add("contracts.yaml", loc, f"ABI file '{source}' holds no ABI ({type(error).__name__})",
                "give a plain ABI JSON list, a Foundry out/X.sol/X.json or a Hardhat artifact")
        return None
    return {e.get("name") for e in abi if e.get("type") == "function"}


def _cross_checks(ctx: _Ctx) -> None:
    envf: EnvironmentsFile | None = ctx.files.get("environments.yaml")  # type: ignore[assignment]
    contracts: ContractsFile | None = ctx.files.get("contracts.yaml")  # type: ignore[assignment]
    checks: ChecksFile | None = ctx.files.get("checks.yaml")  # type: ignore[assignment]
    team: TeamFile | None = ctx.files.get("team.yaml")  # type: ignore[assignment]
    oncall: OncallFile | None = ctx.files.get("oncall.yaml")  # type: ignore[assignment]
    procedures: ProceduresFile | None = ctx.files.get("procedures.yaml")  # type: ignore[assignment]

    env_names = list(envf.environments) if envf else None

    def env_ref(file: str, loc: tuple[Any, ...], name: str) -> None:
        if env_names is not None and name not in env_names:
            msg, hint = _unknown("environment", name, env_names, "environments.yaml")
            ctx.add(file, loc, msg, hint)

    # environments.yaml
    if envf:
        if envf.default_environment not in envf.environments:
            ctx.add("environments.yaml", ("default_environment",),
                    *_unknown("environment", envf.default_environment, env_names or [], "environments.yaml"))

    # team.yaml
    person_ids: list[str] | None = None
    role_count: dict[str, int] = {}
    if team:
        _duplicates(ctx, "team.yaml", team.people, "id", "people", "person id")
        _duplicates(ctx, "team.yaml", team.people, "slack_user_id", "people", "Slack user id")
        _duplicates(ctx, "team.yaml", team.people, "email", "people", "email")
        person_ids = [p.id for p in team.people]
        for role in ROLES:
            role_count[role] = len(team.with_role(role))

    if team:
        owners_seen: dict[tuple[str, str], str] = {}
        for i, p in enumerate(team.people):
            for env, address in p.safe_owner.items():
                env_ref("team.yaml", ("people", i, "safe_owner", env), env)
                other = owners_seen.setdefault((env, address.lower()), p.id)
                if other != p.id:
                    ctx.add("team.yaml", ("people", i, "safe_owner", env),
                            f"Safe owner {address} is already {other}'s in {env}", "one owner address per person")

    def person_ref(file: str, loc: tuple[Any, ...], pid: str) -> None:
        if person_ids is not None and pid not in person_ids:
            ctx.add(file, loc, *_unknown("person", pid, person_ids, "team.yaml"))

    # contracts.yaml
    contract_names: list[str] | None = None
    if contracts:
        _duplicates(ctx, "contracts.yaml", contracts.contracts, "name", "contracts", "contract name")
        contract_names = [c.name for c in contracts.contracts]
        artifacts_exist = ctx.artifacts_dir.is_dir()
        for i, c in enumerate(contracts.contracts):
            for env in c.deployments:
                env_ref("contracts.yaml", ("contracts", i, "deployments", env), env)
            # A contract need not be deployed everywhere (the OpenZeppelin devnet runs other contracts than ours);
            # only the selected environments' deployments are judged, so `-e X` validates X alone.
            for env, dep in c.deployments.items():
                if env not in ctx.environments:
                    continue
                if dep.role_holders and c.access != "access-control":
                    ctx.add("contracts.yaml", ("contracts", i, "deployments", env, "role_holders"),
                            f"role_holders needs `access: access-control` (this contract is {c.access})",
                            "ownable contracts list getter → account under roles")
            if envf:
                for env, dep in c.deployments.items():
                    e = envf.environments.get(env)
                    if e is None or e.uses_devnet or env not in ctx.environments:
                        continue
                    refs: list[tuple[tuple[Any, ...], str]] = [(("address",), dep.address)]
                    refs += [(("roles", k), v) for k, v in dep.roles.items()]
                    refs += [(("role_holders", k, j), v) for k, vs in dep.role_holders.items() for j, v in enumerate(vs)]
                    refs += [(("approved_implementations", j), v) for j, v in enumerate(dep.approved_implementations)]
                    for sub, ref in refs:
                        if ref.startswith(FROM_DEVNET_PREFIX):
                            ctx.add("contracts.yaml", ("contracts", i, "deployments", env) + sub,
                                    f"'{ref}' only works in an environment whose rpc_urls is from-devnet",
                                    "write the checksummed address deployed there")
            fns = None
            if c.abi:
                fns = _abi_path_functions(ctx, ("contracts", i, "abi"), c.abi)
            elif c.artifact and artifacts_exist:
                fns = _abi_functions(ctx.artifacts_dir, c.artifact)
                if not (ctx.artifacts_dir / f"{c.artifact}.json").is_file():
                    ctx.add("contracts.yaml", ("contracts", i, "artifact"), f"artifact '{c.artifact}' not found",
                            f"expected {ctx.artifacts_dir.name}/{c.artifact}.json; build the contracts")
                    fns = None
            if fns is not None:
                if True:
                    used: list[tuple[tuple[Any, ...], str]] = [(("getters", j), g) for j, g in enumerate(c.getters)]
                    used += [(("parameters", k, "getter"), p.getter) for k, p in c.parameters.items()]
                    used += [(("parameters", k, "setter"), p.setter) for k, p in c.parameters.items() if p.setter]
                    for j, inv in enumerate(c.invariants):
                        used.append((("invariants", j, "left"), inv.left))
                        if inv.right:
                            used.append((("invariants", j, "right"), inv.right))
                    if c.access == "access-control" and any(d.role_holders for d in c.deployments.values()):
                        used.append((("access",), "hasRole"))
                    for env, dep in c.deployments.items():
                        if env not in ctx.environments:
                            continue
                        used += [(("deployments", env, "roles", k), k) for k in dep.roles]
                        used += [(("deployments", env, "expect", k), k) for k in dep.expect]
                    for sub, fn in used:
                        if fn not in fns:
                            ctx.add("contracts.yaml", ("contracts", i) + sub,
                                    f"'{fn}' is not a function of {c.abi_source}",
                                    did_you_mean(fn, sorted(f for f in fns if f),
                                                 fallback=f"see the ABI in {c.abi_source}"))
                    _check_parameter_types(ctx, i, c)

        for env in ctx.environments:
            if env_names is not None and env in env_names and not contracts.deployed_in(env):
                ctx.add("contracts.yaml", ("contracts",), f"no contract is deployed in environment '{env}'",
                        f"add deployments.{env}.address to the contracts that run there")
                continue
            if env_names is not None and env in env_names and not contracts.serving("multicall", env):
                ctx.add("contracts.yaml", ("contracts",), f"no multicall contract in environment '{env}'",
                        "the checks read through Multicall3: add it (canonical address "
                        "0xcA11bde05977b3631167028862bE2a173976CA11) with a deployment there")
            for purpose in SINGLE_PURPOSES:
                serving = contracts.serving(purpose, env)
                if len(serving) > 1:
                    ctx.add("contracts.yaml", ("contracts",),
                            f"{len(serving)} contracts serve as {purpose} in environment '{env}' "
                            f"({', '.join(c.name for c in serving)})",
                            "keep one: set `purposes:` on the others")

    # checks.yaml
    if checks:
        _duplicates(ctx, "checks.yaml", checks.checks, "id", "checks", "check id")
        for i, chk in enumerate(checks.checks):
            for env in chk.overrides:
                env_ref("checks.yaml", ("checks", i, "overrides", env), env)
            if chk.id not in CHECK_PARAMS:
                continue
            try:
                typed = chk.typed_params()
            except ValidationError:
                continue  # reported by the per-file pass
            for j, name in enumerate(getattr(typed, "contracts", ()) or ()):
                if contract_names is not None and name not in contract_names:
                    ctx.add("checks.yaml", ("checks", i, "params", "contracts", j),
                            *_unknown("contract", name, contract_names, "contracts.yaml"))
            for j, cred in enumerate(getattr(typed, "credentials", ()) or ()):
                person_ref("checks.yaml", ("checks", i, "params", "credentials", j, "owner"), cred.owner)

    # oncall.yaml
    policy_names: list[str] | None = None
    if oncall:
        _duplicates(ctx, "oncall.yaml", oncall.rotations, "name", "rotations", "rotation name")
        _duplicates(ctx, "oncall.yaml", oncall.escalation_policies, "name", "escalation_policies",
                    "escalation policy name")
        rotation_names = [r.name for r in oncall.rotations]
        policy_names = [p.name for p in oncall.escalation_policies]
        for i, r in enumerate(oncall.rotations):
            for j, m in enumerate(r.members):
                person_ref("oncall.yaml", ("rotations", i, "members", j), m)
            for j, o in enumerate(r.overrides):
                person_ref("oncall.yaml", ("rotations", i, "overrides", j, "person"), o.person)
        for i, pol in enumerate(oncall.escalation_policies):
            for j, step in enumerate(pol.steps):
                for k, target in enumerate(step.notify):
                    loc = ("escalation_policies", i, "steps", j, "notify", k)
                    kind, _, rest = target.partition(":")
                    if kind == "rotation":
                        name = rest.split(":", 1)[0]
                        if name not in rotation_names:
                            ctx.add("oncall.yaml", loc, *_unknown("rotation", name, rotation_names, "oncall.yaml"))
                    elif kind == "person":
                        person_ref("oncall.yaml", loc, rest)
                    elif kind == "role" and team and role_count.get(rest, 0) == 0:
                        ctx.add("oncall.yaml", loc, f"nobody in team.yaml has role '{rest}'",
                                "give the role to someone or notify another target")
        for sev, level in oncall.severities.items():
            if level.escalation_policy not in policy_names:
                ctx.add("oncall.yaml", ("severities", sev, "escalation_policy"),
                        *_unknown("escalation policy", level.escalation_policy, policy_names, "oncall.yaml"))
        for kind in ("technical", "security", "operational", "external"):
            it = oncall.incident_types.get(kind)
            if it.escalation_policy and it.escalation_policy not in policy_names:
                ctx.add("oncall.yaml", ("incident_types", kind, "escalation_policy"),
                        *_unknown("escalation policy", it.escalation_policy, policy_names, "oncall.yaml"))

    _alerting_checks(ctx, policy_names, person_ids, checks)

    # procedures.yaml
    if procedures:
        for name, pol in procedures.approvals.items():
            base = ("approvals", name)
            variants: list[tuple[tuple[Any, ...], Any]] = [(base, pol)]
            for env, o in pol.environments.items():
                env_ref("procedures.yaml", base + ("environments", env), env)
                variants.append((base + ("environments", env), pol.for_environment(env)))
            for loc, eff in variants:
                own = pol if loc == base else pol.environments[loc[-1]]
                if own.escalation_policy and policy_names is not None and own.escalation_policy not in policy_names:
                    ctx.add("procedures.yaml", loc + ("escalation_policy",),
                            *_unknown("escalation policy", own.escalation_policy, policy_names, "oncall.yaml"))
                if team and (loc == base or own.quorum is not None or own.approver_role is not None):
                    holders = role_count.get(eff.approver_role, 0)
                    if eff.quorum > holders:
                        field_ = "quorum" if (loc == base or own.quorum is not None) else "approver_role"
                        ctx.add("procedures.yaml", loc + (field_,),
                                f"quorum {eff.quorum} is larger than the {holders} "
                                f"{'person' if holders == 1 else 'people'} with role {eff.approver_role}",
                                f"lower the quorum or give {eff.approver_role} to more people in team.yaml")


def _alerting_checks(ctx: _Ctx, policy_names: list[str] | None, person_ids: list[str] | None,
                     checks: ChecksFile | None) -> None:
    """alerting.yaml → oncall.yaml (escalation policies), team.yaml (people), checks.yaml (check ids)."""
    import fnmatch

    alerting: AlertingFile | None = ctx.files.get("alerting.yaml")  # type: ignore[assignment]
    if not alerting:
        return
    file = "alerting.yaml"
    _duplicates(ctx, file, alerting.rules, "name", "rules", "rule name")

    def walk_routes(route: Route, loc: tuple[Any, ...]) -> None:
        if route.escalation_policy and policy_names is not None and route.escalation_policy not in policy_names:
            ctx.add(file, loc + ("escalation_policy",),
                    *_unknown("escalation policy", route.escalation_policy, policy_names, "oncall.yaml"))
        for i, child in enumerate(route.routes):
            walk_routes(child, loc + ("routes", i))

    walk_routes(alerting.route, ("route",))
    check_ids = [c.id for c in checks.checks] if checks else None
    for i, rule in enumerate(alerting.rules):
        if rule.kind == "check" and check_ids is not None:
            pat = rule.pattern
            if not any(fnmatch.fnmatchcase(cid, pat) or pat.startswith(cid + ".") for cid in check_ids):
                ctx.add(file, ("rules", i, "source"), f"'{rule.source}' matches no check in checks.yaml",
                        did_you_mean(pat, check_ids, fallback="write check:<check id>, globs like protocol.* work"))
    for key in ("silences", "maintenance_windows"):
        for i, item in enumerate(getattr(alerting, key)):
            if item.created_by and person_ids is not None and item.created_by not in person_ids:
                ctx.add(file, (key, i, "created_by"), *_unknown("person", item.created_by, person_ids, "team.yaml"))


# ---------------------------------------------------------------------------- entry points

def _status_page_checks(ctx: _Ctx) -> None:
    """Every component's checks and contracts must exist: a typo would leave it silently at `no data`."""
    page = ctx.files.get("status_page.yaml")
    contracts = ctx.files.get("contracts.yaml")
    checks = ctx.files.get("checks.yaml")
    if not isinstance(page, StatusPageFile):
        return
    contract_names = [c.name for c in contracts.contracts] if isinstance(contracts, ContractsFile) else None
    check_ids = [c.id for c in checks.checks] if isinstance(checks, ChecksFile) else None
    for i, component in enumerate(page.components):
        for j, check in enumerate(component.checks):
            if check_ids is not None and not any(c == check or c.startswith(check + ".") for c in check_ids):
                ctx.add("status_page.yaml", ("components", i, "checks", j), f"no check is named {check!r}",
                        did_you_mean(check, check_ids))
        for j, name in enumerate(component.contracts):
            if contract_names is not None and name not in contract_names:
                ctx.add("status_page.yaml", ("components", i, "contracts", j), f"no contract is named {name!r}",
                        did_you_mean(name, contract_names))


def _runbook_checks(ctx: _Ctx, config_dir: Path) -> None:
    """Every alert rule and check has a runbook section that is a heading of the document (runbooks_schema)."""
    books = ctx.files.get("runbooks.yaml")
    if not isinstance(books, RunbooksFile):
        return
    checks, alerting = ctx.files.get("checks.yaml"), ctx.files.get("alerting.yaml")
    for file, loc, message, hint in runbook_problems(
            books, config_dir, check_ids=[c.id for c in checks.checks] if isinstance(checks, ChecksFile) else None,
            alert_rules=[r.name for r in alerting.rules] if isinstance(alerting, AlertingFile) else None):
        ctx.add(file, loc, message, hint)


def _collect(config_dir: Path, environments: list[str] | None, artifacts_dir: Path | None
             ) -> tuple[list[ConfigProblem], dict[str, BaseModel | None], list[str]]:
    problems: list[ConfigProblem] = []
    files: dict[str, BaseModel | None] = {}
    present_optional = {name: spec for name, spec in OPTIONAL_CONFIG_FILES.items() if (config_dir / name).is_file()}
    for name, (model, _) in {**CONFIG_FILES, **present_optional}.items():
        file_problems: list[ConfigProblem] = []
        data = _read_yaml(config_dir / name, name, file_problems)
        if data is None:
            problems += file_problems
            files[name] = None
            continue
        if environments is not None:
            data = _only_environments(name, data, set(environments))
        try:
            secret_problems, reported = _scan_secrets(data, name)
            file_problems += secret_problems
            obj = _validate(model, data, name, file_problems, skip=reported)
            if obj is not None and name == "checks.yaml":
                _validate_check_params(obj, data, file_problems, reported)  # type: ignore[arg-type]
        except Exception as e:  # a bug here must still end as a line, not a traceback
            obj = None
            file_problems.append(ConfigProblem(name, FILE_LEVEL, f"internal error while validating: {type(e).__name__}",
                                               "please report it"))
        problems += file_problems
        files[name] = obj if not file_problems else None
    envf = files.get("environments.yaml")
    defined = list(envf.environments) if isinstance(envf, EnvironmentsFile) else []
    wanted = list(environments) if environments is not None else defined
    for env in wanted:
        if envf is not None and env not in defined:
            problems.append(ConfigProblem("environments.yaml", "environments",
                                          *_unknown("environment", env, defined, "environments.yaml")))
    ctx = _Ctx(files=files, environments=wanted, artifacts_dir=artifacts_dir or paths.artifacts_dir())
    try:
        _cross_checks(ctx)
        _status_page_checks(ctx)
        _runbook_checks(ctx, config_dir)
    except Exception as e:  # a bug here must still end as a line, not a traceback
        ctx.add("(config)", FILE_LEVEL, f"internal error in the cross-file checks: {type(e).__name__}",
                "please report it; the problems listed before this line are still valid")
    problems += ctx.problems
    unique: list[ConfigProblem] = []
    for p in problems:
        if p not in unique:
            unique.append(p)
    return unique, files, wanted


def _only_environments(name: str, data: Any, keep: set[str]) -> Any:
    """`-e X` validates X alone: drop the other environments' contract deployments, check overrides and approval
    overrides before validating (list positions stay, so key paths still point at the file's own lines)."""
    import copy

    def prune(mapping: Any) -> Any:
        return {k: v for k, v in mapping.items() if k in keep} if isinstance(mapping, dict) else mapping

    data = copy.deepcopy(data)
    if name == "contracts.yaml" and isinstance(data, dict) and isinstance(data.get("contracts"), list):
        for c in data["contracts"]:
            if isinstance(c, dict) and "deployments" in c:
                c["deployments"] = prune(c["deployments"])
    elif name == "checks.yaml" and isinstance(data, dict) and isinstance(data.get("checks"), list):
        for c in data["checks"]:
            if isinstance(c, dict) and "overrides" in c:
                c["overrides"] = prune(c["overrides"])
    elif name == "procedures.yaml" and isinstance(data, dict) and isinstance(data.get("approvals"), dict):
        for policy in data["approvals"].values():
            if isinstance(policy, dict) and "environments" in policy:
                policy["environments"] = prune(policy["environments"])
    return data


def _validate_check_params(checks: ChecksFile, data: dict, problems: list[ConfigProblem],
                           skip: set[tuple[Any, ...]]) -> None:
    raw_checks = data.get("checks") or []
    for i, chk in enumerate(checks.checks):
        model = CHECK_PARAMS.get(chk.id)
        if model is None:
            continue
        raw = raw_checks[i] if i < len(raw_checks) and isinstance(raw_checks[i], dict) else {}
        raw_params = raw.get("params") or {}
        _validate(model, chk.params, "checks.yaml", problems, prefix=("checks", i, "params"), skip=skip)
        for env, o in chk.overrides.items():
            merged = {**chk.params, **o.params}
            env_problems: list[ConfigProblem] = []
            _validate(model, merged, "checks.yaml", env_problems, prefix=("checks", i, "overrides", env, "params"),
                      skip=skip)
            for p in env_problems:
                top = p.key_path.split(f"overrides.{env}.params", 1)[1].lstrip(".").split(".")[0].split("[")[0]
                if top in o.params or (not top and not raw_params):
                    problems.append(p)


def load_config(config_dir: Path | None = None, *, environment: str | None = "devnet",
                artifacts_dir: Path | None = None) -> OpsConfig:
    """Load and validate config/*.yaml for `environment` (None: $VVOPS_ENVIRONMENT, else default_environment).

    Raises `ConfigError` listing every problem found. `${VAR}` references are not resolved here
    (see `vvops.config.secrets.resolve_env`), so a valid config loads without any secret set.
    """
    config_dir = Path(config_dir) if config_dir is not None else paths.config_dir()
    explicit = environment or os.environ.get(ENVIRONMENT_VAR)
    problems, files, _ = _collect(config_dir, [explicit] if explicit else None, artifacts_dir)
    if problems:
        raise ConfigError(problems)
    envf = files["environments.yaml"]
    assert isinstance(envf, EnvironmentsFile)
    chosen = explicit or envf.default_environment
    if chosen not in envf.environments:  # only possible when no environment was named
        raise ConfigError(ConfigProblem("environments.yaml", "default_environment",
                                        *_unknown("environment", chosen, list(envf.environments), "environments.yaml")))
    return OpsConfig(config_dir=config_dir, environment=chosen, **{
        name.removesuffix(".yaml"): files[name] for name in (*CONFIG_FILES, *OPTIONAL_CONFIG_FILES) if name in files})


def check_config(config_dir: Path | None = None, environment: str | None = None,
                 *, artifacts_dir: Path | None = None) -> list[str]:
    """Every problem as a `file: key.path: message (hint)` line; [] when the config is valid.

    environment=None validates every environment defined in environments.yaml.
    """
    config_dir = Path(config_dir) if config_dir is not None else paths.config_dir()
    problems, _, _ = _collect(config_dir, [environment] if environment else None, artifacts_dir)
    return [str(p) for p in problems]


def config_summary(config_dir: Path | None = None) -> str:
    """`17 checks, 10 people, ...` for `vvops config check` to print after `config OK: `
    (call it after check_config returned [])."""
    cfg = load_config(config_dir, environment=None)
    return cfg.summary()


# ---------------------------------------------------------------------------- devnet references

def load_devnet_json(path: Path | None = None) -> dict:
    """What `vvops devnet up` wrote (rpc_url, chain_id, contracts{...}, accounts{...})."""
    path = Path(path) if path is not None else paths.devnet_file()
    if not path.is_file():
        raise DevnetRefError(ConfigProblem("devnet.json", FILE_LEVEL, f"{path} not found",
                                           "run `vvops devnet up` first"))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DevnetRefError(ConfigProblem("devnet.json", FILE_LEVEL, f"cannot read {path}: {type(e).__name__}",
                                           "run `vvops devnet up` again")) from None
    if not isinstance(data, dict):
        raise DevnetRefError(ConfigProblem("devnet.json", FILE_LEVEL, f"{path} is not a JSON object",
                                           "run `vvops devnet up` again"))
    return data


def devnet_rpc_url(devnet_json: dict | None = None) -> str:
    data = devnet_json if devnet_json is not None else load_devnet_json()
    url = data.get("rpc_url")
    if not isinstance(url, str) or not url:
        raise DevnetRefError(ConfigProblem("devnet.json", "rpc_url", "no rpc_url in devnet.json",
                                           "run `vvops devnet up` again"))
    return url


def devnet_address(ref: str, devnet_json: dict | None = None) -> str:
    """Resolve an address reference to a checksummed address.

    `from-devnet:vault` → devnet_json["contracts"]["vault"] (falling back to a top-level "vault");
    `from-devnet:accounts.guardian` → devnet_json["accounts"]["guardian"]; a 0x address is returned
    checksummed. devnet_json=None reads .vvops/devnet.json.
    """
    if not ref.startswith(FROM_DEVNET_PREFIX):
        if not is_hex_address(ref):
            raise DevnetRefError(ConfigProblem("devnet.json", ref, "not an address or from-devnet reference",
                                               "write 0x... or from-devnet:<key>"))
        return to_checksum_address(ref)
    data = devnet_json if devnet_json is not None else load_devnet_json()
    key = ref[len(FROM_DEVNET_PREFIX):]
    parts = key.split(".")
    candidates: list[list[str]] = [["contracts", *parts], parts] if len(parts) == 1 else [parts]
    for cand in candidates:
        cur: Any = data
        for p in cand:
            cur = cur.get(p) if isinstance(cur, dict) else None
        if isinstance(cur, dict) and isinstance(cur.get("address"), str):
            cur = cur["address"]
        if isinstance(cur, str) and is_hex_address(cur):
            return to_checksum_address(cur)
    known = sorted((data.get("contracts") or {}).keys()) if isinstance(data.get("contracts"), dict) else []
    known += [f"accounts.{a}" for a in sorted((data.get("accounts") or {}).keys())] \
        if isinstance(data.get("accounts"), dict) else []
    hint = did_you_mean(key, known, fallback="run `vvops devnet up` again; it writes the contracts and accounts")
    raise DevnetRefError(ConfigProblem("devnet.json", key, f"no address for '{ref}' in devnet.json", hint))


@dataclass(frozen=True)
class ResolvedDeployment:
    """A contracts.yaml deployment with every reference turned into a checksummed address."""

    address: str
    roles: dict[str, str]
    approved_implementations: tuple[str, ...]
    expect: dict[str, Any]
    role_holders: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """AccessControl role name → expected holders (access-control contracts)."""
    name: str = ""


def resolve_deployment(cfg: OpsConfig, contract: str, devnet_json: dict | None = None) -> ResolvedDeployment:
    """The selected environment's deployment of `contract`, with from-devnet refs resolved."""
    dep = cfg.contract(contract).deployment(cfg.environment)
    if dep is None:
        raise ConfigError(ConfigProblem("contracts.yaml", f"contracts.{contract}.deployments",
                                        f"no deployment for environment '{cfg.environment}'",
                                        f"add deployments.{cfg.environment}.address"))
    needs_devnet = any(r.startswith(FROM_DEVNET_PREFIX) for r in
                       (dep.address, *dep.roles.values(), *dep.approved_implementations,
                        *(h for hs in dep.role_holders.values() for h in hs)))
    if needs_devnet and devnet_json is None:
        devnet_json = load_devnet_json()
    return ResolvedDeployment(
        address=devnet_address(dep.address, devnet_json),
        roles={k: devnet_address(v, devnet_json) for k, v in dep.roles.items()},
        approved_implementations=tuple(devnet_address(v, devnet_json) for v in dep.approved_implementations),
        expect=dict(dep.expect),
        role_holders={k: tuple(devnet_address(v, devnet_json) for v in vs) for k, vs in dep.role_holders.items()},
        name=contract,
    )


def load_environments(config_dir: Path | None = None) -> EnvironmentsFile:
    """environments.yaml alone, validated: what deployments need (every environment and its schedules)
    without loading the files that only a flow run of one environment reads. Raises ConfigError."""
    config_dir = Path(config_dir) if config_dir is not None else paths.config_dir()
    problems: list[ConfigProblem] = []
    data = _read_yaml(config_dir / "environments.yaml", "environments.yaml", problems)
    model = _validate(EnvironmentsFile, data, "environments.yaml", problems) if data is not None else None
    if problems or model is None:
        raise ConfigError(problems)
    assert isinstance(model, EnvironmentsFile)
    return model
def resolve_purpose(cfg: OpsConfig, purpose: str, devnet_json: dict | None = None) -> ResolvedDeployment:
    """The deployment of the contract that serves `purpose` in the selected environment (governance-timelock,
    multicall, pause-target, ...): procedures find their contracts by what they are, not by fixed names."""
    return resolve_deployment(cfg, cfg.contract_for(purpose).name, devnet_json)
