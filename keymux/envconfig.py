"""A config document from environment variables alone: what `keymux init` writes and what `keymux serve`
runs when no config file is given (a container on a PaaS, where settings are env vars).

Keys: every `GEMINI_KEY_<JOB>[_<N>]` / `GOOGLE_AI_STUDIO_KEY_<JOB>[_<N>]` variable; `<JOB>` names the model
group (`GEMINI_KEY_CHAT_1` -> `gemini-chat`, `GEMINI_KEY_PRO_CHAT_2` -> `gemini-pro-chat`, `GEMINI_KEY_3` ->
`gemini-chat`). Per job: `KEYMUX_MODEL_<JOB>` (default gemini-2.5-flash, or gemini-2.5-flash-image for a job
named image), `KEYMUX_RPM_<JOB>`, `KEYMUX_RPD_<JOB>`. The document never holds a key or a password: every
value that comes from the environment stays an `os.environ/` reference, resolved when the config is parsed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keymux.config.fields import natural_key

KEY_PREFIXES = ("GEMINI_KEY", "GOOGLE_AI_STUDIO_KEY")
DEFAULT_JOB = "chat"
DEFAULT_MODEL = "gemini-2.5-flash"
IMAGE_MODEL = "gemini-2.5-flash-image"
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Settings a PaaS user sets as env vars: (variable, section, setting). Referenced, never copied.
SETTINGS = (
    ("KEYMUX_MASTER_KEY", "general_settings", "master_key"),
    ("KEYMUX_DATABASE_URL", "general_settings", "database_url"),
    ("KEYMUX_ROUTING_STRATEGY", "router_settings", "routing_strategy"),
    ("KEYMUX_NUM_RETRIES", "router_settings", "num_retries"),
    ("KEYMUX_QUEUE_TIMEOUT", "router_settings", "queue_timeout"),
    ("KEYMUX_TIMEOUT", "router_settings", "timeout"),
    ("KEYMUX_REDIS_URL", "router_settings", "redis_url"),
    ("KEYMUX_REDIS_NAMESPACE", "router_settings", "redis_namespace"),
)
DEFAULTS = {"routing_strategy": "simple-shuffle", "num_retries": 3, "queue_timeout": 30}


class EnvConfigError(ValueError):
    """The environment (or init's flags) cannot make a config: no keys, or a malformed name."""


@dataclass
class Job:
    name: str  # lower-case words joined by '-': the group is gemini-<name>
    variables: list[str] = field(default_factory=list)
    model: str = ""
    rpm: str | int | None = None
    rpd: str | int | None = None

    @property
    def group(self) -> str:
        return f"gemini-{self.name}"


def job_of(variable: str) -> str | None:
    """`GEMINI_KEY_PRO_CHAT_2` -> 'pro-chat'; None when the variable is not a key variable."""
    for prefix in KEY_PREFIXES:
        if variable == prefix or variable.startswith(prefix + "_"):
            words = [w for w in variable[len(prefix):].split("_") if w]
            if words and words[-1].isdigit():
                words.pop()
            return "-".join(w.lower() for w in words) or DEFAULT_JOB
    return None


def _env_name(job: str) -> str:
    return job.upper().replace("-", "_")


def jobs_from_environ(env: Mapping[str, str]) -> list[Job]:
    """Key variables grouped by job, in natural name order; empty variables are left out."""
    jobs: dict[str, Job] = {}
    for name in sorted(env, key=natural_key):
        job = job_of(name)
        if job is not None and env[name].strip():
            jobs.setdefault(job, Job(job)).variables.append(name)
    return [fill_job(j, env) for j in jobs.values()]


def fill_job(job: Job, env: Mapping[str, str]) -> Job:
    """Model and limits from KEYMUX_MODEL_/RPM_/RPD_<JOB> where init's flags did not set them."""
    suffix = _env_name(job.name)
    job.model = job.model or env.get(f"KEYMUX_MODEL_{suffix}", "").strip() or (
        IMAGE_MODEL if "image" in job.name.split("-") else DEFAULT_MODEL)
    for limit in ("rpm", "rpd"):
        var = f"KEYMUX_{limit.upper()}_{suffix}"
        if getattr(job, limit) is None and env.get(var, "").strip():
            setattr(job, limit, f"os.environ/{var}")
    return job


def check_variable(name: str) -> str:
    """init's `--key JOB=VAR` takes the NAME of a variable; a key pasted there must not reach the file."""
    if not _VAR_NAME.match(name):
        raise EnvConfigError(f"expected the name of an environment variable (letters, digits, _), "
                             f"not {len(name)} characters of something else: keys never go into the file")
    return name


def document(jobs: list[Job], env: Mapping[str, str], *, sqlite_dir: str | None = None) -> dict[str, Any]:
    """The LiteLLM-format document for these jobs and the KEYMUX_* settings present in `env`.

    `sqlite_dir`: where the ledger goes when KEYMUX_DATABASE_URL is unset (serving with no config file,
    which has no directory of its own to put it beside)."""
    if not jobs:
        raise EnvConfigError("no keys: set GEMINI_KEY_<JOB>_<N> (or GOOGLE_AI_STUDIO_KEY_<JOB>_<N>) variables, "
                             "e.g. GEMINI_KEY_CHAT_1, or pass --key JOB=VARIABLE")
    model_list = []
    for job in jobs:
        for var in job.variables:
            params: dict[str, Any] = {"model": f"gemini/{job.model}", "api_key": f"os.environ/{var}"}
            for limit in ("rpm", "rpd"):
                if getattr(job, limit) is not None:
                    params[limit] = getattr(job, limit)
            model_list.append({"model_name": job.group, "litellm_params": params})
    doc: dict[str, Any] = {"model_list": model_list, "router_settings": dict(DEFAULTS), "general_settings": {}}
    for var, section, setting in SETTINGS:
        if env.get(var, "").strip():
            doc[section][setting] = f"os.environ/{var}"
    if sqlite_dir is not None and "database_url" not in doc["general_settings"]:
        doc["general_settings"]["database_url"] = f"sqlite:///{sqlite_dir.rstrip('/')}/keymux.db"
    return doc
