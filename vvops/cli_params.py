"""`vvops run -p KEY=VALUE`: parameters checked against the flow's own signature before anything runs.

The flow function is the single source of truth: unknown names, missing required parameters and values
of the wrong type are refused with one line naming the parameter, what it expects and what it got — the
same rules whatever the flow. Values are read as JSON when they parse (`-p window_hours=24`,
`-p dry_run=true`), as text otherwise (`-p proposer=dana`). Types are checked strictly: `true` is not an
integer and `"24"` is not a number, so a typo cannot turn into a different value on the way to the chain.
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError


_TEXT_TYPES = re.compile(r"\b(datetime|date|time|timedelta|UUID)\b")


class ParameterError(ValueError):
    """A `-p` parameter the flow cannot take; the message is one line for the operator."""


def parse_pairs(pairs: Iterable[str]) -> dict[str, tuple[Any, str]]:
    """`KEY=VALUE` strings → {key: (JSON-or-text value, raw text)}; a pair without `=` is refused."""
    out: dict[str, tuple[Any, str]] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParameterError(f"--param {pair!r}: expected KEY=VALUE")
        if key in out:
            raise ParameterError(f"--param {key} given twice")
        try:
            value = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            value = raw
        out[key] = (value, raw)
    return out


def _describe(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return "any value"
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "")


def _short(raw: str, limit: int = 60) -> str:
    return repr(raw if len(raw) <= limit else raw[:limit] + "…")


def validate_flow_params(fn: Callable[..., Any], pairs: Iterable[str], *,
                         fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """Parameters for `fn` from `-p` pairs plus `fixed` ones (e.g. the environment), each checked by type."""
    signature = inspect.signature(fn)
    hints = typing.get_type_hints(fn, include_extras=True)
    given = parse_pairs(pairs)
    names = [n for n, p in signature.parameters.items()
             if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    unknown = [k for k in given if k not in names]
    if unknown:
        raise ParameterError(f"unknown parameter {unknown[0]!r} for {fn.__name__}: it takes "
                             + ", ".join(names))
    params: dict[str, Any] = {}
    for name, (value, raw) in given.items():
        annotation = hints.get(name, inspect.Parameter.empty)
        params[name] = _check_value(name, annotation, value, raw)
    for name, value in (fixed or {}).items():
        if name in names and name not in params:
            params[name] = value
    missing = [n for n in names if signature.parameters[n].default is inspect.Parameter.empty and n not in params]
    if missing:
        raise ParameterError(f"missing required parameter{'s' if len(missing) > 1 else ''} "
                             + ", ".join(f"{m} ({_describe(hints.get(m, inspect.Parameter.empty))})" for m in missing)
                             + ": add -p " + " -p ".join(f"{m}=..." for m in missing))
    return params


def _check_value(name: str, annotation: Any, value: Any, raw: str) -> Any:
    if annotation is inspect.Parameter.empty:
        return value
    adapter = TypeAdapter(annotation, config=ConfigDict(strict=True))
    errors = []
    for candidate in (value, raw) if value != raw else (value,):
        try:
            if isinstance(candidate, str) and _TEXT_TYPES.search(str(annotation)):
                return TypeAdapter(annotation).validate_strings(candidate)  # ISO dates and ids come as text
            return adapter.validate_python(candidate)
        except ValidationError as error:
            errors.append(error)
        except (OverflowError, ValueError, TypeError) as error:  # a validator's own refusal
            raise ParameterError(f"-p {name}={_short(raw)}: {error}") from None
    detail = errors[0].errors()[0].get("msg", "invalid value") if errors else "invalid value"
    raise ParameterError(f"-p {name}={_short(raw)}: expected {_describe(annotation)} ({detail.lower()})")
