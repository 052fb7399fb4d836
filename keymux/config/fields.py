"""Small typed-field readers for the config loader, and `ConfigError`.

Every reader takes the raw YAML value and its path in the document (`model_list[2].litellm_params.rpm`)
and either returns a clean Python value or raises `ConfigError` naming the file, the path and what was
expected. Values are never echoed when they could be secrets: a string is quoted back only when it is
short, lower-case and not from a secret field or an environment variable (`"five"`, `"60s"`); anything
else is described by its shape (`a string of 39 characters`).
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping
from typing import Any

ENV_PREFIX = "os.environ/"
_GLOB_CHARS = frozenset("*?[")
_SAFE_STRING = re.compile(r"^[a-z0-9][a-z0-9 ./_:+-]{0,23}$")
_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,39}$")
_SECRET_PREFIXES = ("aiza", "sk-", "ya29.", "ghp_", "github_pat_", "xox", "hf_", "gsk_", "akia", "glpat-")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
# YAML 1.1 (PyYAML) reads `1e-6` as a string; YAML 1.2 and LiteLLM users mean a number.
# Template text left in a config: `<your redis host>`, `your-api-key-here`, `postgresql://<user>:<password>@...`.
_PLACEHOLDER = re.compile(r"<[A-Za-z][^<>]*>|\byour[-_ ][A-Za-z0-9_ -]*[-_ ]here\b", re.IGNORECASE)
_SCI_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


class ConfigError(Exception):
    """A config that cannot run: `str(err)` is `"<file>: <path>: expected <what>, got <shape>"`.

    Errors that are not type errors (a missing environment variable, an unknown fallback group, a YAML
    syntax error) carry a full sentence instead of "expected ..., got ...". `expected` always says what
    would have been valid. `line`/`column` (1-based) are set for YAML syntax errors.
    """

    def __init__(self, file: str, path: str, expected: str, got: str | None = None, *,
                 message: str | None = None, line: int | None = None, column: int | None = None) -> None:
        self.file = file
        self.path = path
        self.expected = expected
        self.got = got
        self.line = line
        self.column = column
        self.env_name: str | None = None  # the variable, when the error is an unset environment variable
        if message is None:
            message = f"expected {expected}, got {got}" if got is not None else f"expected {expected}"
        self.message = message
        super().__init__(f"{file}: {path}: {message}" if path else f"{file}: {message}")

    def __str__(self) -> str:
        return str(self.args[0])


def looks_secret(text: str) -> bool:
    """Whether a string could be a credential (known key prefixes, or a long random-looking token)."""
    if text.lower().startswith(_SECRET_PREFIXES):
        return True
    return (len(text) >= 30 and _TOKEN.match(text) is not None and sum(c.isupper() for c in text) >= 3
            and sum(c.isdigit() for c in text) >= 3)


def show_value(text: str) -> str:
    """A name from the config (model, group, id) as it may appear in a message."""
    return "<a value that looks like a key>" if looks_secret(text) else text


def show_name(name: object) -> str:
    """A mapping key as it may appear in a message (keys are names, but never echo one that looks like a key)."""
    if isinstance(name, str) and _SAFE_NAME.match(name) and not looks_secret(name):
        return name
    if isinstance(name, (int, float, bool)) or name is None:
        return repr(name)
    return "<a key that is not a plain name>"


def describe(value: object, *, secret: bool = False) -> str:
    """A short description of a value's type and shape, safe to print."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean" if secret else f"boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return "an integer" if secret else f"integer {value}"
    if isinstance(value, float):
        return "a number" if secret else f"number {value:g}"
    if isinstance(value, str):
        if not value:
            return "an empty string"
        if not secret and _SAFE_STRING.match(value) and not looks_secret(value):
            return f'string "{value}"'
        return f"a string of {len(value)} characters"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return f"a mapping of {len(value)} entr{'y' if len(value) == 1 else 'ies'}"
    return f"a {type(value).__name__}"


def join_path(path: str, key: object) -> str:
    """`path.key` for a mapping key (list items are written `path[i]` by the caller)."""
    name = show_name(key)
    return f"{path}.{name}" if path else name


def natural_key(name: str) -> list[Any]:
    """GEMINI_KEY_2 before GEMINI_KEY_10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class Fields:
    """Typed readers bound to one file and one environment; collects warnings and inactive settings."""

    def __init__(self, file: str, env: Mapping[str, str], *, literal: bool = False) -> None:
        self.file = file
        self.env = env
        self.literal = literal  # values from an API or a database: `os.environ/...` is text, never looked up
        self.warnings: list[str] = []
        self.inactive: list[str] = []
        self._prefix = ""

    def for_file(self, file: str) -> Fields:
        """Readers for a file named by `include:`: same environment, same warning lists, file-prefixed."""
        other = Fields(file, self.env)
        other.warnings, other.inactive, other._prefix = self.warnings, self.inactive, f"{file}: "
        return other

    # --- reporting -----------------------------------------------------------------------------
    def error(self, path: str, expected: str, value: object = None, *, secret: bool = False,
              message: str | None = None) -> ConfigError:
        got = None if message is not None else describe(value, secret=secret)
        return ConfigError(self.file, path, expected, got, message=message)

    def warn(self, text: str) -> None:
        text = self._prefix + text
        if text not in self.warnings:
            self.warnings.append(text)

    def unknown(self, path: str, key: object) -> None:
        self.warn(f"{join_path(path, key)}: unknown setting, ignored")

    def mark_inactive(self, path: str, what: str) -> None:
        text = f"{self._prefix}{path} ({what}): accepted, not active yet"
        if text not in self.inactive:
            self.inactive.append(text)

    # --- environment ---------------------------------------------------------------------------
    def env_var(self, path: str, name: str) -> str:
        if not name:
            raise self.error(path, "os.environ/<VARIABLE NAME>",
                             message="os.environ/ needs a variable name after the slash")
        if any(c in _GLOB_CHARS for c in name):
            raise self.error(path, "os.environ/<VARIABLE NAME>",
                             message=f"environment variable patterns ({ENV_PREFIX}{show_value(name)}) are only "
                                     "allowed in api_key")
        if name not in self.env:
            err = self.error(path, f"environment variable {show_value(name)} to be set",
                             message=f"environment variable {show_value(name)} is not set")
            err.env_name = name  # load.py gathers every missing variable before refusing
            raise err
        return self.env[name]

    def env_glob(self, path: str, pattern: str) -> list[tuple[str, str]]:
        """(name, value) of every variable matching `pattern`, in natural name order."""
        names = sorted((n for n in self.env if fnmatch.fnmatchcase(n, pattern)), key=natural_key)
        if not names:
            shown = show_value(pattern)
            raise self.error(path, f"environment variables matching {shown}",
                             message=f"no environment variable matches {ENV_PREFIX}{shown}")
        return [(n, self.env[n]) for n in names]

    # --- scalars -------------------------------------------------------------------------------
    def mapping(self, value: object, path: str, *, what: str = "a mapping") -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(path, what, value)
        return value

    def string(self, value: object, path: str, *, secret: bool = False, empty_ok: bool = False,
               resolve: bool = True, what: str = "a string") -> str:
        """A string; `os.environ/VAR` is replaced by the variable's value."""
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not secret:
            value = str(value)  # `project: 123456789012`, `id: 1`
        if not isinstance(value, str):
            raise self.error(path, what, value, secret=secret)
        from_env = False
        if resolve and not self.literal and value.startswith(ENV_PREFIX):
            name = value[len(ENV_PREFIX):]
            value = self.env_var(path, name)
            from_env = True
        if not value and not empty_ok:
            if from_env:
                raise self.error(path, f"a non-empty {what.removeprefix('a ')}",
                                 message=f"environment variable {show_value(name)} is empty")
            raise self.error(path, f"a non-empty {what.removeprefix('a ')}", value)
        if not self.literal and _PLACEHOLDER.search(value):
            where = f"environment variable {show_value(name)}" if from_env else "the value"
            raise self.error(path, "a real value", message=f"{where} is still a placeholder (like <...> or "
                             "your-...-here): replace it with the real value")
        return value

    def _env_number(self, value: object, path: str) -> tuple[object, bool]:
        """A number may come from an environment variable, which is always a string."""
        if isinstance(value, str) and not self.literal and value.startswith(ENV_PREFIX):
            return self.env_var(path, value[len(ENV_PREFIX):]).strip(), True
        return value, False

    def integer(self, value: object, path: str, *, minimum: int = 0) -> int:
        what = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
        value, from_env = self._env_number(value, path)
        if from_env and isinstance(value, str) and re.fullmatch(r"[-+]?\d+", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path, what, value, secret=from_env)
        if value < minimum:
            raise self.error(path, what, value)
        return value

    def number(self, value: object, path: str, *, positive: bool = False) -> float:
        what = "a positive number" if positive else "a non-negative number"
        value, from_env = self._env_number(value, path)
        if isinstance(value, str) and (_SCI_FLOAT.match(value) or
                                       (from_env and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)", value))):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(path, what, value, secret=from_env)
        value = float(value)
        if math.isnan(value) or math.isinf(value) or value < 0 or (positive and value == 0):
            raise self.error(path, what, value)
        return value

    def boolean(self, value: object, path: str) -> bool:
        value, from_env = self._env_number(value, path)
        if from_env and isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise self.error(path, "true or false", value, secret=from_env)
        return value

    def choice(self, value: object, path: str, choices: tuple[str, ...]) -> str:
        text = self.string(value, path, what="one of: " + ", ".join(choices))
        if text not in choices:
            raise self.error(path, "one of: " + ", ".join(choices), text, secret=text != value)
        return text

    def string_list(self, value: object, path: str, *, what: str = "a list of strings") -> tuple[str, ...]:
        """A list of strings; a single string is taken as a list of one."""
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.error(path, what, value)
        return tuple(self.string(item, f"{path}[{i}]", resolve=False) for i, item in enumerate(value))
