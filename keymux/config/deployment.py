"""The one deployment builder: the table of per-deployment fields, and how a mapping becomes a `DeploymentConfig`.

Three roads lead to a deployment: a `model_list` entry of the YAML config (config/litellm.py), a key added
through the admin API (`POST /admin/keys`, `from_admin`), and such a key read back from the database after a
restart (`from_record`). All three read `FIELDS` through the same typed readers (config/fields.py), so a field
that takes effect on one road takes effect on all of them, and a key stored at run time keeps every field; the
first two resolve `model` alike (config/upstreams.py: vendor prefixes, Azure, wildcards).
Errors name the path: the YAML loader raises `ConfigError` (file, path, expected); the admin API raises
`BadRequest` with `param`, converted from the same `ConfigError` in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from keymux.config import vertex
from keymux.config.fields import ConfigError, Fields
from keymux.config.schema import DeploymentConfig, Limits, RouterSettings
from keymux.config.upstreams import SUPPORTED_PROVIDERS, URL_WHAT, Upstream, not_served, resolve
from keymux.errors import BadRequest, Conflict
from keymux.fingerprint import fingerprint
from keymux.providers import azure
from keymux.providers.vertex_auth import ACCOUNTS, DEFAULT_TOKEN_URI

TIERS = ("free", "paid")
# Where deployments without an api_base go: the provider's public API, unless the environment
# points elsewhere (an egress proxy, a regional mirror, or a local emulator in tests).
DEFAULT_BASE_ENV = {"gemini": "KEYMUX_GEMINI_API_BASE", "openai": "KEYMUX_OPENAI_API_BASE",
                    "anthropic": "KEYMUX_ANTHROPIC_API_BASE"}
_URL = URL_WHAT

# The places of a YAML model_list entry a field may sit in.
PARAMS, ENTRY, MODEL_INFO = "litellm_params", "entry", "model_info"
_SHARED = (PARAMS, ENTRY, MODEL_INFO)  # litellm_params wins, then the entry, then model_info

Reader = Callable[[Fields, object, str], Any]  # (readers, raw value, path) -> clean value, or ConfigError


def _count(f: Fields, value: object, path: str) -> int:
    return f.integer(value, path)


def _amount(f: Fields, value: object, path: str) -> float:
    return f.number(value, path)


def _seconds(f: Fields, value: object, path: str) -> float:
    return f.number(value, path, positive=True)


def _label(f: Fields, value: object, path: str) -> str:
    return f.string(value, path, what="a project label")


def _tier(f: Fields, value: object, path: str) -> str:
    return f.choice(value, path, TIERS)


def _name(f: Fields, value: object, path: str) -> str:
    return f.string(value, path, resolve=False)


def _gcp_project(f: Fields, value: object, path: str) -> str:
    return f.string(value, path, what="a Google Cloud project id")


def _url(f: Fields, value: object, path: str) -> str:
    text = f.string(value, path, what=_URL).rstrip("/")
    if not text.startswith(("http://", "https://")):
        raise f.error(path, _URL, text, secret=value != text)  # not echoed when it came from the environment
    return text


@dataclass(frozen=True)
class Field:
    """One per-deployment setting."""

    name: str  # as LiteLLM writes it in litellm_params (and the admin API's JSON)
    attr: str  # the DeploymentConfig attribute (a Limits attribute when `limit`)
    read: Reader
    places: tuple[str, ...] = (PARAMS,)  # where a YAML entry may give it, first wins
    aliases: tuple[str, ...] = ()  # other LiteLLM names, read after `name`
    limit: bool = False
    admin: bool = True  # POST /admin/keys may set it
    column: bool = False  # a stored key keeps it in its own runtime_keys column, not in `params`

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


LIMITS = (
    Field("rpm", "rpm", _count, _SHARED, limit=True),
    Field("tpm", "tpm", _count, _SHARED, limit=True),
    Field("rpd", "rpd", _count, _SHARED, limit=True),
    Field("tpd", "tpd", _count, _SHARED, limit=True),
    Field("max_parallel_requests", "max_parallel", _count, _SHARED, limit=True),
)
API_BASE = Field("api_base", "api_base", _url, column=True)
FIELDS = LIMITS + (
    API_BASE,
    Field("project", "project", _label, _SHARED, column=True),
    Field("weight", "weight", _amount),
    Field("order", "order", _count),
    Field("timeout", "timeout", _seconds),
    Field("stream_timeout", "stream_timeout", _seconds),
    Field("max_retries", "max_retries", _count, aliases=("num_retries",)),
    Field("input_cost_per_token", "input_cost_per_token", _amount, (PARAMS, MODEL_INFO)),
    Field("output_cost_per_token", "output_cost_per_token", _amount, (PARAMS, MODEL_INFO)),
    Field("tier", "tier", _tier, (MODEL_INFO,)),
    Field("id", "id", _name, (MODEL_INFO,), column=True),
    Field("vertex_project", "vertex_project", _gcp_project, aliases=("vertex_ai_project",)),
    Field("vertex_location", "vertex_location", vertex.location, aliases=("vertex_ai_location",)),
)


def names_in(place: str) -> frozenset[str]:
    """Every field name a YAML entry may write in `place`."""
    return frozenset(n for fld in FIELDS if place in fld.places for n in fld.names)


Finder = Callable[[Field], "tuple[object, str] | None"]  # a field's raw value and its path, when given


def read_fields(f: Fields, find: Finder, fields: Sequence[Field] = FIELDS) -> dict[str, Any]:
    """attr -> clean value of every field that `find` gives. From an API or a database (`f.literal`), null
    means "not set" (an admin request's `"rpm": null` does not inherit the group's rpm)."""
    out: dict[str, Any] = {}
    for fld in fields:
        found = find(fld)
        if found is not None:
            value, path = found
            out[fld.attr] = None if value is None and f.literal else fld.read(f, value, path)
    return out


def make(values: Mapping[str, Any], *, id: str, group: str, provider: str, model: str, api_key: str,
         fingerprint: str) -> DeploymentConfig:
    """A DeploymentConfig from read field values; a field absent or None keeps its default."""
    limits = Limits(**{fld.attr: values.get(fld.attr) for fld in LIMITS})
    rest = {fld.attr: values[fld.attr] for fld in FIELDS
            if not fld.limit and fld.attr != "id" and values.get(fld.attr) is not None}
    return DeploymentConfig(id=id, group=group, provider=provider, model=model, api_key=api_key,
                            fingerprint=fingerprint, limits=limits, **rest)


def no_effect(d: DeploymentConfig, router: RouterSettings) -> list[str]:
    """Fields accepted that this router will not act on, phrased for a warning."""
    out = []
    if d.weight != 1.0 and router.routing_strategy != "simple-shuffle":
        out.append(f"weight {d.weight:g}: accepted, no effect with routing_strategy {router.routing_strategy} "
                   "(only simple-shuffle weighs keys)")
    if d.max_retries is not None and d.max_retries >= router.num_retries:
        out.append(f"max_retries {d.max_retries}: accepted, no effect (it only lowers router_settings.num_retries, "
                   f"which is {router.num_retries})")
    return out


# -- the admin API -------------------------------------------------------------------------------
_ADMIN_IDENTITY = ("group", "api_key", "model", "provider", "custom_llm_provider", "api_version", "vertex_credentials")
ADMIN_NAMES = frozenset(_ADMIN_IDENTITY) | {n for fld in FIELDS if fld.admin for n in fld.names}


def from_admin(spec: Mapping[str, Any], existing: Sequence[DeploymentConfig],
               env: Mapping[str, str]) -> DeploymentConfig:
    """`POST /admin/keys`: a deployment for a key added at run time. `existing`: every deployment served now.

    Without `model` the key joins an existing group as its first deployment is (provider, model, api_base),
    and inherits its declared limits; fields given in the request override them."""
    unknown = sorted(str(k) for k in set(spec) - ADMIN_NAMES)
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}", param=unknown[0])
    try:
        return _from_admin(spec, existing, env)
    except ConfigError as e:  # the same readers as the YAML loader, answered in the admin API's shape
        raise BadRequest(f"`{e.path}`: {e.message}", param=e.path) from None


def _from_admin(spec: Mapping[str, Any], existing: Sequence[DeploymentConfig],
                env: Mapping[str, str]) -> DeploymentConfig:
    group, api_key = spec.get("group"), spec.get("api_key")
    if not isinstance(group, str) or not group:
        raise BadRequest("`group` (the model group name) is required", param="group")
    values = read_fields(Fields("admin request", {}, literal=True), lambda fld: _given(spec, fld),
                         [fld for fld in FIELDS if fld.admin])
    members = [d for d in existing if d.group == group]
    template = members[0] if members else None
    f = Fields("admin request", env, literal=True)
    if "model" in spec:  # as a YAML entry's model: vendor prefixes, azure/ with api_version, wildcards
        model = f.string(spec["model"], "model")
        custom = next((f.string(spec[k], k) for k in ("custom_llm_provider", "provider") if spec.get(k)), None)
        up = resolve(f, model, values.get("api_base"), custom, spec.get("api_version"), base_path="api_base",
                     version_path="api_version")
        if not up.served or not up.model:
            raise not_served(f, "model", model, up)
        vendor_name = up.vendor.name if up.vendor else None
    elif template is not None:  # the group's upstream, as its first deployment reaches it
        up = Upstream(template.provider, template.model, values.get("api_base", template.api_base),
                      api_version=template.api_version)
        vendor_name = template.vendor
    else:
        raise BadRequest(f"group {group!r} does not exist: give `model` (e.g. gemini/gemini-2.5-flash)",
                         param="model")
    if spec.get("api_version") is not None and not (up.vendor and up.vendor.name in azure.KINDS):
        raise BadRequest("`api_version` is only for azure/ and azure_ai/ deployments", param="api_version")
    provider, upstream = up.provider, up.model
    if provider == "vertex_ai":
        api_key, fp = _vertex_admin(spec, values, template, existing, env, f)
    else:
        if not isinstance(api_key, str) or not api_key.strip():
            raise BadRequest("`api_key` is required", param="api_key")
        api_key = api_key.strip()
        values["api_base"] = up.api_base
        if values["api_base"] is None and template is None:
            values["api_base"] = env.get(DEFAULT_BASE_ENV[provider])
        fp = fingerprint(api_key, provider)
    if any(d.fingerprint == fp for d in members):
        raise Conflict(f"key {fp} is already in group {group}")
    if template is not None and template.model == upstream:
        for fld in LIMITS:
            if fld.attr not in values:
                values[fld.attr] = getattr(template.limits, fld.attr)
    d = make(values, id=values.get("id") or f"{group}/runtime:{fp}", group=group, provider=provider,
             model=upstream, api_key=api_key, fingerprint=fp)
    return replace(d, vendor=vendor_name, api_version=up.api_version) if vendor_name else d


def _vertex_admin(spec: Mapping[str, Any], values: dict[str, Any], template: DeploymentConfig | None,
                  existing: Sequence[DeploymentConfig], env: Mapping[str, str], f: Fields) -> tuple[str, str]:
    """(service-account JSON, fingerprint) of a Vertex key added at run time; fills in its api_base and
    project. A key joining a Vertex group keeps the group's host and region unless it names its own."""
    if spec.get("api_key") is not None:
        raise BadRequest("vertex_ai/ keys are service accounts: give `vertex_credentials` (the key file's JSON), "
                         "not `api_key`", param="api_key")
    host = values.get("api_base") if "api_base" in spec else None
    if template is not None and template.provider == "vertex_ai":
        host = host or (template.api_base or "").split("/v1/projects/")[0] or None
        values.setdefault("vertex_location", template.vertex_location)
    creds = spec.get("vertex_credentials")
    if creds is not None:  # admin input never chooses where keymux sends a signed assertion either
        uri = _token_uri(vertex.credentials_text(creds, "vertex_credentials", f))
        if uri is not None and uri not in {DEFAULT_TOKEN_URI, *(_token_uri(d.api_key) for d in existing
                                                               if d.provider == "vertex_ai")}:
            raise BadRequest("the service account's token_uri is neither Google's nor one a configured service "
                             "account uses", param="vertex_credentials")
    t = vertex.target(f, None if creds is None else (creds, "vertex_credentials"), values.get("vertex_project"),
                      values.get("vertex_location"), host, env, "")
    values.update(api_base=t.api_base, vertex_project=t.project, vertex_location=t.location)
    if values.get("project") is None:
        values["project"] = t.bucket
    return t.credentials, t.fingerprint


def _token_uri(credentials: str) -> str | None:
    try:
        return ACCOUNTS.account(credentials).token_uri
    except ValueError:
        return None  # vertex.target says what is wrong with it


def _given(spec: Mapping[str, Any], fld: Field) -> tuple[object, str] | None:
    name = next((n for n in fld.names if n in spec), None)
    return None if name is None else (spec[name], name)


# -- keys stored at run time (the ledger's runtime_keys table) ----------------------------------------
def to_record(d: DeploymentConfig, now: float) -> dict[str, Any]:
    """Every field of the table: its own column, or in `params` (JSON, by attribute name)."""
    params = {fld.attr: _value(d, fld) for fld in FIELDS if not fld.column}
    params.update({"vendor": d.vendor, "api_version": d.api_version} if d.vendor else {})
    return {"id": d.id, "grp": d.group, "fingerprint": d.fingerprint, "provider": d.provider, "model": d.model,
            "api_key": d.api_key, "api_base": d.api_base, "project": d.project,
            "params": orjson.dumps(params).decode(), "created": now}


def from_record(r: Mapping[str, Any]) -> DeploymentConfig:
    """A stored key read back; fields an older keymux did not store keep their defaults. ValueError if broken."""
    given = {**orjson.loads(r["params"]), "id": r["id"], "api_base": r["api_base"], "project": r["project"]}
    f = Fields("stored key", {}, literal=True)
    try:
        values = read_fields(f, lambda fld: (given[fld.attr], fld.attr) if fld.attr in given else None)
    except ConfigError as e:
        raise ValueError(e.message if not e.path else f"{e.path}: {e.message}") from None
    d = make(values, id=values["id"], group=r["grp"], provider=r["provider"], model=r["model"],
             api_key=r["api_key"], fingerprint=r["fingerprint"])
    vendor = given.get("vendor")  # azure/, groq/, ...: served as openai at the vendor's addresses
    if vendor is None:
        return d
    if not isinstance(vendor, str) or not isinstance(given.get("api_version"), str | None):
        raise ValueError("vendor / api_version: not text")
    return replace(d, vendor=vendor, api_version=given.get("api_version"))


def _value(d: DeploymentConfig, fld: Field) -> Any:
    return getattr(d.limits if fld.limit else d, fld.attr)


__all__ = ["API_BASE", "ADMIN_NAMES", "DEFAULT_BASE_ENV", "FIELDS", "LIMITS", "SUPPORTED_PROVIDERS", "Field",
           "from_admin", "from_record", "make", "names_in", "no_effect", "read_fields", "to_record"]
