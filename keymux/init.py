"""`keymux init`: write a commented config from the environment's key variables (or from flags).

The file names variables, never keys: every api_key and the master key are `os.environ/` references. When
KEYMUX_MASTER_KEY is not set, a master key is generated and printed once (only to the terminal).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from keymux.envconfig import SETTINGS, EnvConfigError, Job, check_variable, document, fill_job, jobs_from_environ

MASTER_ENV = "KEYMUX_MASTER_KEY"
_WHY = {
    "routing_strategy": "simple-shuffle spreads by weight; round-robin, least-busy, ... also work",
    "num_retries": "other keys tried when one answers 429 / 5xx",
    "queue_timeout": "seconds a request may wait for a free key before a 429 with Retry-After",
    "master_key": "what clients send as `Authorization: Bearer ...` (not a Google key)",
}


def _pairs(values: Sequence[str], what: str) -> list[tuple[str, str]]:
    out = []
    for value in values:
        job, sep, rest = value.partition("=")
        if not sep or not job.strip() or not rest.strip():
            raise EnvConfigError(f"{what} takes JOB=VALUE (e.g. {what} chat=...); got one without a job or value")
        out.append((job.strip().lower().replace("_", "-"), rest.strip()))
    return out


def jobs_from_flags(keys: Sequence[str], models: Sequence[str], rpm: Sequence[str], rpd: Sequence[str],
                    env: Mapping[str, str]) -> list[Job]:
    jobs: dict[str, Job] = {}
    if keys:
        for job, var in _pairs(keys, "--key"):
            jobs.setdefault(job, Job(job)).variables.append(check_variable(var))
    else:
        jobs = {j.name: j for j in jobs_from_environ(env)}
    for flag, values in (("--model", models), ("--rpm", rpm), ("--rpd", rpd)):
        for job, value in _pairs(values, flag):
            if job not in jobs:
                raise EnvConfigError(f"{flag} {job}=...: no keys for job {job!r} (jobs: {', '.join(jobs) or 'none'})")
            if flag == "--model":
                jobs[job].model = value.removeprefix("gemini/")
            elif value.isdigit():
                setattr(jobs[job], flag[2:], int(value))
            else:
                raise EnvConfigError(f"{flag} {job}={value}: expected a whole number")
    return [fill_job(j, env) for j in jobs.values()]


def _scalar(value: Any) -> str:
    return json.dumps(value)  # JSON scalars are YAML scalars, quoted so none is read as another type


def render(doc: dict[str, Any], jobs: list[Job], when: datetime) -> str:
    lines = [f"# keymux config, written by `keymux init` on {when:%Y-%m-%d %H:%M} UTC.",
             "# No key is written here: each api_key names the environment variable holding it.",
             "# Check it with `keymux check --config FILE`; the README's configuration reference lists every setting.",
             "", "model_list:"]
    by_group = {j.group: j for j in jobs}
    shown: set[str] = set()
    for entry in doc["model_list"]:
        group = entry["model_name"]
        if group not in shown:
            shown.add(group)
            job = by_group[group]
            lines.append(f"  # {group}: {len(job.variables)} key(s) ({', '.join(job.variables)}), "
                         f"model {job.model}")
            if job.rpm is None and job.rpd is None:
                lines.append("  # Declare the free tier's limits to admit by them instead of learning them from "
                             "429s, e.g. rpm: 10, rpd: 250")
        params = ", ".join(f"{k}: {_scalar(v)}" for k, v in entry["litellm_params"].items())
        lines.append(f"  - model_name: {group}")
        lines.append(f"    litellm_params: {{{params}}}")
    for section in ("router_settings", "general_settings"):
        lines += ["", f"{section}:"]
        for key, value in doc[section].items():
            why = f"   # {_WHY[key]}" if key in _WHY else ""
            lines.append(f"  {key}: {_scalar(value)}{why}")
        if section == "general_settings" and "database_url" not in doc[section]:
            lines.append("  # database_url: sqlite:////data/keymux.db   # usage ledger; default: keymux.db beside "
                         "this file")
    lines.append("")
    return "\n".join(lines)


def run_init(*, output: str, force: bool, keys: Sequence[str], models: Sequence[str], rpm: Sequence[str],
             rpd: Sequence[str], env: Mapping[str, str] | None = None, out: TextIO = sys.stdout) -> int:
    env = dict(os.environ if env is None else env)
    try:
        jobs = jobs_from_flags(keys, models, rpm, rpd, env)
        generated = None
        if not env.get(MASTER_ENV, "").strip():
            generated = "sk-keymux-" + secrets.token_urlsafe(24)
            env[MASTER_ENV] = generated  # so the document references it
        doc = document(jobs, env)
    except EnvConfigError as e:
        print(f"keymux init: {e}", file=sys.stderr)
        return 2
    text = render(doc, jobs, datetime.now(UTC))
    if output == "-":
        out.write(text)
    else:
        path = Path(output)
        if path.exists() and not force:
            print(f"keymux init: {path} exists; --force to overwrite it", file=sys.stderr)
            return 1
        path.write_text(text)
        used = [var for var, _, _ in SETTINGS if var != MASTER_ENV and env.get(var, "").strip()]
        print(f"wrote {path}: {len(jobs)} group(s), {sum(len(j.variables) for j in jobs)} key reference(s)"
              + (f"; settings from {', '.join(used)}" if used else ""), file=out)
    note = out if output != "-" else sys.stderr
    if generated:
        print(f"\nGenerated master key (shown once, not written to the file; clients send it as Bearer):\n"
              f"  {MASTER_ENV}={generated}\n"
              f"Keep it where keymux's environment comes from (.env, a PaaS secret, systemd EnvironmentFile).",
              file=note)
    else:
        print(f"master key: read from {MASTER_ENV} at start (already set here; not printed)", file=note)
    return 0
