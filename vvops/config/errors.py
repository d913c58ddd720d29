"""Configuration problems: one readable line each, never a traceback.

Every problem names the file (relative to the config folder), the key path inside it
(`people[3].roles[0]`: mapping keys joined with dots, list items as `[index]`), what is wrong
and a hint. `str(problem)` is the line `vvops config check` prints.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConfigProblem", "ConfigError", "EnvVarError", "DevnetRefError", "FILE_LEVEL"]

#: key path used for problems about a whole file (missing file, not a mapping, syntax error)
FILE_LEVEL = "(file)"


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    file: str
    key_path: str
    message: str
    hint: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key_path}: {self.message} ({self.hint})"


class ConfigError(Exception):
    """One or more configuration problems. `.problems` holds them all; `str()` lists them one a line."""

    def __init__(self, problems: list[ConfigProblem] | ConfigProblem):
        if isinstance(problems, ConfigProblem):
            problems = [problems]
        self.problems: list[ConfigProblem] = list(problems)
        super().__init__(self._text())

    def _text(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        return f"{len(self.problems)} configuration problems:\n" + "\n".join(str(p) for p in self.problems)

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]

    def __str__(self) -> str:  # keep in sync if problems were edited after construction
        return self._text()


class EnvVarError(ConfigError):
    """A `${VAR}` reference whose variable is not set (the message names the variable, never a value)."""

    def __init__(self, variable: str, problem: ConfigProblem):
        self.variable = variable
        super().__init__(problem)


class DevnetRefError(ConfigError):
    """A `from-devnet:` reference that cannot be resolved (no devnet.json, or no such key in it)."""
