"""LiteLLM `model_list` -> `DeploymentConfig`s.

One entry becomes one deployment per key. Keys come from `litellm_params.api_key` (a string, `os.environ/VAR`,
or, as keymux extensions, a list of those or an env-var glob `os.environ/GEMINI_KEY_*`; `keys:` is an alias for
the list form). Entries for providers keymux does not serve yet are skipped with a warning so that the rest of
a user's LiteLLM config still runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from keymux.config import vertex
from keymux.config.compatible import Vendor
from keymux.config.deployment import (
    API_BASE,
    ENTRY,
    FIELDS,
    LIMITS,
    MODEL_INFO,
    PARAMS,
    Field,
    make,
    names_in,
    read_fields,
)
from keymux.config.fields import ENV_PREFIX, Fields, join_path
from keymux.config.fields import show_value as sv
from keymux.config.schema import DeploymentConfig, Limits
from keymux.config.upstreams import SUPPORTED_PROVIDERS, resolve
from keymux.fingerprint import fingerprint
from keymux.providers import azure

# Per-deployment default params, applied by keymux/translate/defaults.py where the client sets none.
DEFAULT_PARAMS = ("max_tokens", "temperature", "top_p", "seed", "reasoning_effort", "safety_settings",
                  "thinking_level", "extra_headers", "organization")


def _defaults(params: dict, pp: str, f: Fields) -> tuple[tuple[str, object], ...]:
    """The entry's default params (translate/defaults.py applies them where the client set nothing)."""
    out: list[tuple[str, object]] = []
    for name in DEFAULT_PARAMS:
        value, at = params.get(name), f"{pp}.{name}"
        if value is None:
            continue
        if name in ("max_tokens", "seed"):
            value = f.integer(value, at, minimum=1 if name == "max_tokens" else 0)
        elif name in ("temperature", "top_p"):
            value = f.number(value, at)
        elif name in ("reasoning_effort", "thinking_level", "organization"):
            value = f.string(value, at)
        elif name == "extra_headers":
            section = f.mapping(value, at, what="a mapping of header name to value")
            value = {str(k): f.string(v, join_path(at, k), secret=True) for k, v in section.items()}
        elif name == "safety_settings" and not isinstance(value, list):
            raise f.error(at, "a list of {category, threshold}", value)
        out.append((name, value))
    return tuple(out)


_DEFAULT_KEY_ENV = {"gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"), "openai": ("OPENAI_API_KEY",)}

# The per-deployment fields come from the table in config/deployment.py; these are the entry's own.
_PARAMS = frozenset(("model", "api_key", "keys", "custom_llm_provider", "litellm_credential_name",
                     "vertex_credentials", *DEFAULT_PARAMS)) | names_in(PARAMS)
_VERTEX_PARAMS = ("vertex_credentials", "vertex_project", "vertex_ai_project", "vertex_location", "vertex_ai_location")
# Real LiteLLM params keymux does not act on: a softer warning than for typos.
_LITELLM_UNSUPPORTED = frozenset((
    "api_version", "drop_params", "tags", "headers", "mock_response", "use_in_pass_through",
    "input_cost_per_second", "output_cost_per_second", "merge_reasoning_content_in_choices",
    "configurable_clientside_auth_params", "litellm_trace_id", "region_name", "base_model",
))
_ENTRY = frozenset(("model_name", "litellm_params", "model_info")) | names_in(ENTRY)
_MODEL_INFO = names_in(MODEL_INFO)
# LiteLLM model_info metadata: informative, harmless, not warned about.
_MODEL_INFO_METADATA = frozenset((
    "mode", "base_model", "max_tokens", "max_input_tokens", "max_output_tokens", "description", "access_groups",
    "team_id", "team_public_model_name", "tier", "db_model", "litellm_provider", "health_check_model",
    "health_check_timeout", "updated_at", "updated_by", "created_at", "created_by", "key", "output_vector_size",
))


@dataclass(frozen=True)
class Origin:
    """Where a model_list entry came from (the main file, or one named by `include:`)."""

    fields: Fields
    index: int  # in its own file's model_list (for paths)
    position: int  # in the merged model_list (for generated ids)

    @property
    def path(self) -> str:
        return f"model_list[{self.index}]"


@dataclass
class ModelList:
    deployments: list[DeploymentConfig]
    # Groups whose every deployment was skipped (unsupported provider): fallbacks to them are dropped, not errors.
    skipped_groups: set[str]


def parse_credentials(value: object, f: Fields) -> dict[str, dict]:
    """LiteLLM's top-level `credential_list`: name -> credential_values (api_key, api_base, ...), which a
    model_list entry takes with `litellm_credential_name` (its own litellm_params win)."""
    what = "a list of {credential_name, credential_values}"
    if value is None:
        return {}
    if not isinstance(value, list):
        raise f.error("credential_list", what, value)
    out: dict[str, dict] = {}
    for i, item in enumerate(value):
        path = f"credential_list[{i}]"
        item = f.mapping(item, path, what="a mapping with credential_name and credential_values")
        if "credential_name" not in item:
            raise f.error(f"{path}.credential_name", "a name", message="missing: credential_name")
        name = f.string(item["credential_name"], f"{path}.credential_name", resolve=False)
        out[name] = f.mapping(item.get("credential_values"), f"{path}.credential_values")
        for key in item:
            if key not in ("credential_name", "credential_values", "credential_info"):
                f.unknown(path, key)
    return out


def parse_model_list(value: object, f: Fields, origins: list[Origin] | None = None,
                     credentials: dict[str, dict] | None = None) -> ModelList:
    if value is None:
        raise f.error("model_list", "a list of deployments (model_name + litellm_params)",
                      message="missing: the config needs a model_list with at least one deployment")
    if not isinstance(value, list):
        raise f.error("model_list", "a list of deployments (model_name + litellm_params)", value)
    if not value:
        raise f.error("model_list", "a list of deployments (model_name + litellm_params)",
                      message="is empty: the config needs at least one deployment")
    out: list[DeploymentConfig] = []
    seen_ids: dict[str, str] = {}
    declared_groups: set[str] = set()
    for i, entry in enumerate(value):
        origin = origins[i] if origins else Origin(f, i, i)
        group, deployments = _parse_entry(entry, origin, credentials or {})
        declared_groups.add(group)
        for d, id_path in deployments:
            if d.id in seen_ids:
                raise origin.fields.error(id_path, "a deployment id used only once",
                                          message=f"duplicate deployment id '{sv(d.id)}' "
                                                  f"(also used by {seen_ids[d.id]})")
            seen_ids[d.id] = id_path if origin.fields is f else f"{origin.fields.file}: {id_path}"
            out.append(d)
    if not out:  # the refusal carries the warnings that explain it: they are not printed otherwise
        why = "; ".join(w for w in f.warnings if "deployment skipped" in w) or "see the warnings"
        raise f.error("model_list", "at least one deployment keymux can serve",
                      message=f"no deployment left: every entry was skipped ({why}); keymux serves gemini/, "
                              "openai/, anthropic/, azure/, vertex_ai/ (Gemini models) and the OpenAI-compatible "
                              "providers (groq/, mistral/, ...)")
    _check_shared_buckets(out, f)
    _check_duplicates(out, f)
    served = {d.group for d in out}
    return ModelList(out, declared_groups - served)


def _parse_entry(entry: object, origin: Origin,
                 credentials: dict[str, dict]) -> tuple[str, list[tuple[DeploymentConfig, str]]]:
    f, path = origin.fields, origin.path
    entry = f.mapping(entry, path, what="a mapping with model_name and litellm_params")
    for key in entry:
        if key not in _ENTRY:
            f.unknown(path, key)
    if "model_name" not in entry:
        raise f.error(f"{path}.model_name", "the model group name clients ask for",
                      message="missing: every model_list entry needs a model_name")
    group = f.string(entry["model_name"], f"{path}.model_name", resolve=False)
    pp = f"{path}.litellm_params"
    if "litellm_params" not in entry:
        raise f.error(pp, "a mapping with at least `model`",
                      message="missing: every model_list entry needs litellm_params")
    params = f.mapping(entry["litellm_params"], pp)
    if params.get("litellm_credential_name") is not None:
        name = f.string(params["litellm_credential_name"], f"{pp}.litellm_credential_name", resolve=False)
        if name not in credentials:
            have = ", ".join(sv(c) for c in credentials) or "none"
            raise f.error(f"{pp}.litellm_credential_name", "a credential_name from credential_list",
                          message=f"unknown credential '{sv(name)}' (credential_list has: {have})")
        params = {**{k: v for k, v in credentials[name].items() if k in _PARAMS}, **params}
    info_path = f"{path}.model_info"
    info = f.mapping(entry.get("model_info"), info_path)

    if "model" not in params:
        raise f.error(f"{pp}.model", "an upstream model like gemini/gemini-2.5-flash",
                      message="missing: litellm_params needs a model (e.g. gemini/gemini-2.5-flash)")
    model_path = f"{pp}.model"
    model = f.string(params["model"], model_path)
    sources = {PARAMS: (params, pp), ENTRY: (entry, path), MODEL_INFO: (info, info_path)}

    def find(fld: Field) -> tuple[object, str] | None:
        for place in fld.places:
            src, src_path = sources[place]
            for name in fld.names:
                if name in src:
                    return src[name], f"{src_path}.{name}"
        return None

    values = read_fields(f, find, (API_BASE,))  # first: it decides the provider of a bare model name
    api_base = values.get("api_base")
    custom = None
    if "custom_llm_provider" in params:
        custom = f.string(params["custom_llm_provider"], f"{pp}.custom_llm_provider", resolve=False)
    up = resolve(f, model, api_base, custom, params.get("api_version"), base_path=f"{pp}.api_base",
                 version_path=f"{pp}.api_version")
    provider, upstream, vendor, api_base = up.provider, up.model, up.vendor, up.api_base
    values["api_base"] = api_base
    if provider == "vertex_ai" or (provider == "gemini" and "/" not in model
                                   and any(params.get(k) is not None for k in _VERTEX_PARAMS)):
        provider = "vertex_ai"  # LiteLLM reads a bare gemini-* model with Vertex credentials as vertex_ai/
        if not vertex.serves(upstream):
            f.warn(f"{model_path}: '{sv(model)}' is not a Gemini model: keymux serves only Gemini models on "
                   "Vertex AI, deployment skipped")
            return group, []
    if provider in azure.KINDS:  # LiteLLM's `azure/` for image generation: no chat deployment to call
        f.warn(f"{model_path}: '{sv(model)}' names no deployment (image generation), deployment skipped")
        return group, []
    if provider not in SUPPORTED_PROVIDERS:
        if provider:
            hint = " (for an OpenAI-compatible server write openai/<model> with api_base)" if api_base else ""
            f.warn(f"{model_path}: provider '{sv(provider)}' is not supported yet, deployment skipped{hint}")
        else:
            f.warn(f"{model_path}: cannot tell which provider serves '{sv(model)}', deployment skipped "
                   "(write gemini/<model> or openai/<model>)")
        return group, []
    if not upstream:
        raise f.error(model_path, "provider/model, e.g. gemini/gemini-2.5-flash",
                      message=f"no model name after '{sv(provider)}/'")

    for key in params:
        if key in _PARAMS or (key == "api_version" and vendor is not None and vendor.name in azure.KINDS):
            continue
        if key in _LITELLM_UNSUPPORTED:
            f.warn(f"{join_path(pp, key)}: LiteLLM setting not supported by keymux, ignored")
        else:
            f.unknown(pp, key)
    for key in info:
        if key not in _MODEL_INFO and key not in _MODEL_INFO_METADATA and not str(key).startswith("supports_"):
            f.unknown(info_path, key)

    values.update(read_fields(f, find, [fld for fld in FIELDS if fld is not API_BASE]))
    base_id, id_path = f"{group}/{origin.position}", f"{path}.model_name"
    if "id" in values:
        id_path = f"{info_path}.id"
        base_id = values["id"]

    if provider == "vertex_ai":
        creds = params.get("vertex_credentials")
        t = vertex.target(f, None if creds is None else (creds, f"{pp}.vertex_credentials"),
                          values.get("vertex_project"), values.get("vertex_location"), api_base, f.env, f"{pp}.")
        values.update(api_base=t.api_base, vertex_project=t.project, vertex_location=t.location)
        values.setdefault("project", t.bucket)
        if params.get("api_key") is not None:
            f.warn(f"{pp}.api_key: vertex_ai/ calls authenticate with vertex_credentials (a service account); "
                   "Vertex API keys (express mode) are not supported, ignored")
        keys, multi = [(t.credentials, t.fingerprint)], False
    else:
        keys, multi = _keys(params, pp, provider, api_base, f, vendor)
    defaults = _defaults(params, pp, f)
    out = []
    for n, (key, key_fp) in enumerate(keys, start=1):
        d = make(values, id=f"{base_id}#{n}" if multi else base_id, group=group, provider=provider,
                 model=upstream, api_key=key, fingerprint=key_fp)
        if defaults:
            d = replace(d, defaults=defaults)
        out.append((replace(d, vendor=vendor.name, api_version=up.api_version) if vendor else d, id_path))
    return group, out


def _keys(params: dict, pp: str, provider: str, api_base: str | None,
          f: Fields, vendor: Vendor | None = None) -> tuple[list[tuple[str, str]], bool]:
    """[(key, fingerprint)], and whether the entry lists several keys (ids then get a `#n` suffix).
    `api_key: null` is LiteLLM's "not set": the provider's environment variable is used."""
    given = {k for k in ("api_key", "keys") if params.get(k) is not None}
    if len(given) == 2:
        raise f.error(f"{pp}.keys", "either api_key or keys, not both",
                      message="api_key and keys are both set: use one of them")
    name = given.pop() if given else None
    key_env = vendor.key_env if vendor else _DEFAULT_KEY_ENV.get(provider, ())
    if name is None:
        for var in key_env:
            if f.env.get(var):
                f.warn(f"{pp}.api_key: not set, using environment variable {var} (as LiteLLM does)")
                key = f.env[var]
                return [(key, fingerprint(key, provider))], False
        if api_base and (vendor is None or vendor.keyless):  # a server that takes no key (vLLM, Ollama, ...)
            return [("", fingerprint(f"keyless:{api_base}", provider))], False
        raise f.error(f"{pp}.api_key", "a key, a list of keys or os.environ/VAR",
                      message="missing: set api_key (a key, a list of keys, os.environ/VAR or os.environ/PREFIX_*)"
                              f" or the environment variable {key_env[0]}")
    value, path = params[name], f"{pp}.{name}"
    what = "a key string, a list of keys, os.environ/VAR or os.environ/PREFIX_*"
    if isinstance(value, list):
        if not value:
            raise f.error(path, what, value, secret=True)
        items = [(item, f"{path}[{i}]") for i, item in enumerate(value)]
        multi = True
    else:
        items = [(value, path)]
        multi = name == "keys"
    keys: list[str] = []
    for item, item_path in items:
        if isinstance(item, str) and item.startswith(ENV_PREFIX) and any(c in item for c in "*?["):
            multi = True
            for var, key in f.env_glob(item_path, item[len(ENV_PREFIX):]):
                if not key:
                    raise f.error(item_path, "a non-empty key", message=f"environment variable {sv(var)} is empty")
                keys.append(_clean_key(key, item_path, f, f"environment variable {sv(var)} is empty"))
        else:
            key = f.string(item, item_path, secret=True, what="a key string")
            keys.append(_clean_key(key, item_path, f, "the key is only whitespace"))
    return [(k, fingerprint(k, provider)) for k in keys], multi


def _clean_key(key: str, path: str, f: Fields, empty_message: str) -> str:
    key = key.strip()
    if not key:
        raise f.error(path, "a non-empty key", message=empty_message)
    return key


def _limits_text(limits: Limits) -> str:
    parts = [f"{fld.name} {getattr(limits, fld.attr)}" for fld in LIMITS if getattr(limits, fld.attr) is not None]
    return ", ".join(parts) or "no limits"


def _check_shared_buckets(deployments: list[DeploymentConfig], f: Fields) -> None:
    """Deployments counted against one bucket for one model should declare one set of limits."""
    by_bucket: dict[tuple[str, str, str], list[DeploymentConfig]] = {}
    for d in deployments:
        by_bucket.setdefault((d.bucket, d.provider, d.model), []).append(d)
    for (bucket, _, model), ds in by_bucket.items():
        if len({d.limits for d in ds}) > 1:
            who = f"project '{sv(ds[0].project)}'" if ds[0].project else f"key {bucket}"
            variants = " vs ".join(dict.fromkeys(_limits_text(d.limits) for d in ds))
            f.warn(f"{who}, model {sv(model)}: deployments {', '.join(sv(d.id) for d in ds)} declare different limits "
                   f"({variants}); they share one quota, the pool will use the smallest")


def _check_duplicates(deployments: list[DeploymentConfig], f: Fields) -> None:
    seen: dict[tuple, str] = {}
    for d in deployments:
        k = (d.group, d.provider, d.model, d.api_base, d.fingerprint)
        if k in seen:
            f.warn(f"deployments {sv(seen[k])} and {sv(d.id)} use the same key ({d.fingerprint}) for the same "
                   f"model in group {sv(d.group)}")
        else:
            seen[k] = d.id


__all__ = ["ModelList", "Origin", "parse_credentials", "parse_model_list"]
