"""`vertex_ai/<gemini model>` deployments: which service account, project and region, read from the entry
or, as LiteLLM does, from GOOGLE_APPLICATION_CREDENTIALS / VERTEXAI_PROJECT / VERTEXAI_LOCATION.

The YAML loader and the admin API both build one through `target`. The service-account JSON becomes the
deployment's secret (its `api_key`: stored keys keep it encrypted like any key); its api_base is the model
prefix of its project and region. The key identity (fingerprint) is (account, project, region), and its
quota bucket the project in that region: two service accounts of one project share one quota.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from keymux.config.fields import Fields
from keymux.fingerprint import fingerprint
from keymux.providers import vertex
from keymux.providers.vertex_auth import ACCOUNTS

PREFIXES = ("vertex_ai", "vertex_ai_beta")  # LiteLLM's two routes to Gemini on Vertex
CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
PROJECT_ENV = ("VERTEXAI_PROJECT", "VERTEX_PROJECT")
LOCATION_ENV = ("VERTEXAI_LOCATION", "VERTEX_LOCATION")
BASE_ENV = "KEYMUX_VERTEX_API_BASE"  # another host for every Vertex deployment without api_base (an emulator)
_CREDENTIALS = "a service-account key file's path, its JSON, or os.environ/VAR naming either"
_LOCATION = re.compile(r"^[a-z][a-z0-9-]{1,40}$")


@dataclass(frozen=True)
class Target:
    credentials: str  # the service-account JSON: the deployment's secret
    project: str
    location: str
    api_base: str  # the model prefix (providers/vertex.py)
    fingerprint: str
    bucket: str  # the quota it counts against: the project in its region


def serves(model: str) -> bool:
    """Gemini models (and wildcards over them); Claude, Llama, Imagen, Veo and embeddings on Vertex are other APIs."""
    return (model.startswith("gemini") and "embedding" not in model) or "*" in model


def location(f: Fields, value: object, path: str) -> str:
    text = f.string(value, path, what="a Vertex AI region like us-central1, or global")
    if not _LOCATION.match(text):
        raise f.error(path, "a Vertex AI region like us-central1, or global", text, secret=text != value)
    return text


def credentials_text(value: object, path: str, f: Fields) -> str:
    """A mapping (the JSON written in YAML), the JSON as a string, or the path of the key file."""
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    text = f.string(value, path, secret=True, what=_CREDENTIALS).strip()
    if text.startswith("{"):
        return text
    if f.literal:  # an API request names no file on this machine
        raise f.error(path, "the service-account JSON itself (an object or its text)", value, secret=True)
    try:
        return Path(text).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise f.error(path, _CREDENTIALS, message=f"cannot read the service-account key file ({why})") from None


def target(f: Fields, credentials: tuple[object, str] | None, project: str | None, region: str | None,
           host: str | None, env: Mapping[str, str], path: str) -> Target:
    """`credentials`: the entry's vertex_credentials and its path; `project`, `region`: its vertex_project and
    vertex_location as read (None: not given); `host`: its api_base. The environment fills in the rest."""
    if credentials is not None:
        value, cred_path = credentials
        text = credentials_text(value, cred_path, f)
    elif env.get(CREDENTIALS_ENV) and not f.literal:
        cred_path = CREDENTIALS_ENV
        text = credentials_text(env[CREDENTIALS_ENV], cred_path, f)
    else:
        where = "vertex_credentials (the service-account JSON)" if f.literal else \
            f"vertex_credentials (a service-account key file, or its JSON) or the environment variable {CREDENTIALS_ENV}"
        raise f.error(f"{path}vertex_credentials", _CREDENTIALS, message=f"missing: vertex_ai/ models need {where}")
    try:
        account = ACCOUNTS.account(text)  # parsed once, for the token cache the calls will use
    except ValueError as e:
        raise f.error(cred_path, _CREDENTIALS, message=f"unusable service account: {e}") from None
    project = project or _env(env, PROJECT_ENV) or account.project_id
    if not project:
        raise f.error(f"{path}vertex_project", "a Google Cloud project id",
                      message=f"missing: set vertex_project (or {PROJECT_ENV[0]}); the key file names no project_id")
    if region is None and _env(env, LOCATION_ENV):
        region = location(f, _env(env, LOCATION_ENV), LOCATION_ENV[0])
    region = region or vertex.DEFAULT_LOCATION
    base = vertex.prefix(vertex.host(region, host or env.get(BASE_ENV) or None), project, region)
    return Target(text, project, region, base, fingerprint(f"{account.email}|{project}|{region}", "vertex_ai"),
                  f"vertex:{project}/{region}")


def _env(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((env[n].strip() for n in names if env.get(n, "").strip()), None)


__all__ = ["BASE_ENV", "CREDENTIALS_ENV", "LOCATION_ENV", "PREFIXES", "PROJECT_ENV", "Target",
           "credentials_text", "location", "serves", "target"]
