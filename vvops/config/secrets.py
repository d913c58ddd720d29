"""Secrets never live in YAML: they come from environment variables of the process that uses them.

* `${VAR}` (or `${VAR:-default}`) in a config string is resolved only at use time by `resolve_env`;
  an unset variable raises `EnvVarError` naming the variable, never any value.
* `SecretStr` wraps a resolved secret: its str/repr/format print `********`.
* The scanners used by the loader reject secret-looking keys with literal values, URLs with
  embedded credentials and literal API keys in RPC URLs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .errors import ConfigProblem, EnvVarError

__all__ = [
    "MASK",
    "SecretStr",
    "env_refs",
    "has_env_refs",
    "resolve_env",
    "resolve_secret",
    "is_secret_key",
    "url_credentials_problem",
    "literal_key_in_url",
    "literal_secret_in",
    "mask_url",
]

MASK = "********"

_REF = re.compile(r"\$\{([^}]*)\}")
_REF_BODY = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?$", re.S)
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class SecretStr:
    """A secret value that prints as `********` everywhere (str, repr, f-strings, logs)."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        object.__setattr__(self, "_value", str(value))

    def get_secret_value(self) -> str:
        return self._value

    reveal = get_secret_value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("SecretStr is immutable")

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"SecretStr('{MASK}')"

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("SecretStr", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __reduce__(self):  # pickling keeps the value (Prefect may persist task inputs); printing never does
        return (SecretStr, (self._value,))


def env_refs(value: str) -> list[str]:
    """Names of the environment variables a string refers to with `${VAR}` / `${VAR:-default}`."""
    names = []
    for body in _REF.findall(value):
        m = _REF_BODY.match(body)
        if m:
            names.append(m.group("name"))
    return names


def has_env_refs(value: Any) -> bool:
    return isinstance(value, str) and bool(_REF.search(value))


def malformed_env_ref(value: str) -> str | None:
    """The first `${...}` whose inside is not a variable name (None when all are fine)."""
    for body in _REF.findall(value):
        m = _REF_BODY.match(body)
        if not m:
            return "${" + body + "}"
    # an opening `${` that is never closed
    if re.search(r"\$\{[^}]*$", value):
        return "${"
    return None


def resolve_env(
    value: str,
    *,
    environ: Mapping[str, str] | None = None,
    file: str = "(runtime)",
    key_path: str = "(value)",
) -> str:
    """Replace each `${VAR}` / `${VAR:-default}` in `value` with the variable's value.

    Raises `EnvVarError` naming the first unset variable (and where it was used). The error
    never contains the value of any variable or the resolved string.
    """
    env = os.environ if environ is None else environ

    def sub(m: re.Match[str]) -> str:
        body = _REF_BODY.match(m.group(1))
        if not body:
            raise EnvVarError(
                m.group(1),
                ConfigProblem(file, key_path, f"malformed reference ${{{m.group(1)}}}",
                              "write ${NAME} with NAME made of letters, digits and _"),
            )
        name, default = body.group("name"), body.group("default")
        got = env.get(name)
        if got is None or got == "":
            if default is not None:
                return default
            raise EnvVarError(
                name,
                ConfigProblem(file, key_path, f"environment variable {name} is not set",
                              f"export {name}=... before running, or put it in the deployment's environment"),
            )
        return got

    return _REF.sub(sub, value)


def resolve_secret(value: str, **kwargs: Any) -> SecretStr:
    """`resolve_env` for values that are secret once resolved (API keys in RPC URLs, tokens)."""
    return SecretStr(resolve_env(value, **kwargs))


def mask_url(url: str) -> str:
    """A URL safe to log: `${VAR}` parts kept as written, any user:password@ replaced by `********@`."""
    return re.sub(r"(?<=://)[^/@\s]+@", MASK + "@", url)


# ---------------------------------------------------------------------------- scanners

_SECRET_WORDS = {"password", "passwd", "passphrase", "secret", "token", "mnemonic", "apikey", "privatekey",
                 "pwd", "bearer", "seedphrase"}
_SECRET_PAIRS = {("private", "key"), ("api", "key"), ("access", "key"), ("secret", "key"),
                 ("signing", "key"), ("seed", "phrase"), ("client", "secret"), ("auth", "token")}
# a key ending with one of these holds metadata about a secret, not the secret itself
_META_SUFFIXES = {"env", "block", "name", "names", "id", "ids", "address", "symbol", "decimals", "days",
                  "hours", "minutes", "seconds", "s", "count", "header", "policy", "kind", "type", "file",
                  "path", "ttl", "length", "expiry", "expires", "rotated", "created", "owner"}


def _words(key: str) -> list[str]:
    key = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key)
    return [w for w in re.split(r"[^A-Za-z0-9]+", key.lower()) if w]


def is_secret_key(key: str) -> bool:
    """True for keys like `password`, `bot_token`, `apiKey`, `private_key`, `mnemonic`;
    false for `bot_token_env`, `token_block`, `secret_name` (they name where a secret lives)."""
    words = _words(key)
    if not words or words[-1] in _META_SUFFIXES or key.endswith("_env_var"):
        return False
    if any(w in _SECRET_WORDS or w.endswith("password") or w.endswith("secret") for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(words, words[1:]))


_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def literal_secret_value(value: Any) -> bool:
    """Whether a value under a secret-looking key is a literal (and so not allowed)."""
    if value is None or isinstance(value, bool) or isinstance(value, (list, dict)):
        return False
    if isinstance(value, str):
        v = value.strip()
        if not v:
            return False
        if _REF.fullmatch(v):  # `${VAR}`: comes from the environment
            return False
        if _ADDRESS.match(v):  # a public address is not a secret
            return False
    return True


_URL_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://(?P<userinfo>[^/?#@\s]*)@")


def url_credentials_problem(value: str) -> bool:
    """True when a URL carries a literal password (`scheme://user:pass@host`)."""
    m = _URL_USERINFO.match(value.strip())
    if not m:
        return False
    userinfo = m.group("userinfo")
    if ":" not in userinfo:
        return False
    password = userinfo.split(":", 1)[1]
    return bool(password) and not _REF.fullmatch(password)


_KEYLIKE = re.compile(r"[A-Za-z0-9_\-]{20,}")


def _looks_random(token: str) -> bool:
    return bool(re.search(r"[0-9]", token)) and bool(re.search(r"[A-Za-z]", token))


def literal_key_in_url(value: str, *, rpc: bool) -> str | None:
    """Describe a literal credential in a URL, or None.

    Any URL: a query parameter with a secret-looking name and a literal value (`?apikey=abc`).
    RPC URLs (`rpc=True`) also: a long random-looking path segment (`/v2/AbC123...`)."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    if not parts.scheme:
        return None
    for name, val in parse_qsl(parts.query, keep_blank_values=True):
        if is_secret_key(name) and val and not _REF.fullmatch(val):
            return f"query parameter '{name}' holds a literal credential"
    if rpc:
        path = _REF.sub("", parts.path)
        for segment in path.split("/"):
            for token in _KEYLIKE.findall(segment):
                if _looks_random(token):
                    return "URL contains what looks like a literal API key"
    return None


_SLACK_TOKEN = re.compile(r"xox[abposre]-[A-Za-z0-9-]{6,}")


def literal_secret_in(value: str, *, rpc: bool = False) -> str | None:
    """Why `value` would expose a secret if stored as written, or None. `${VAR}` parts are fine (they name
    where the secret lives). Used before a value goes where an API can return it (Prefect block documents)."""
    if url_credentials_problem(value):
        return "URL contains a password (user:password@)"
    found = literal_key_in_url(value, rpc=rpc)
    if found:
        return found
    if rpc:  # providers also take keys as `?key=AbC123...`: a long random-looking query value counts too
        try:
            query = urlsplit(value.strip()).query
        except ValueError:
            query = ""
        for _, val in parse_qsl(_REF.sub("", query), keep_blank_values=True):
            if any(_looks_random(token) for token in _KEYLIKE.findall(val)):
                return "URL query contains what looks like a literal API key"
    if _SLACK_TOKEN.search(value):
        return "contains a Slack token"
    return None


def walk(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any, Any]]:
    """Yield (path, key, value) for every mapping entry and list item in parsed YAML."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield path + (k,), k, v
            yield from walk(v, path + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield path + (i,), i, v
            yield from walk(v, path + (i,))
