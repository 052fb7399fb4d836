"""Read a LiteLLM proxy config (`litellm_config.yaml`) unchanged into keymux's typed `Config`.

    load_config(path, env=None) -> Config        a YAML file (follows LiteLLM's `include:`)
    parse_config(doc, source=..., env=None)      an already-parsed document
    ConfigError                                  file, path, expected; never contains a secret

`os.environ/VAR` is resolved in string values; `environment_variables:` entries take precedence over the
process environment (LiteLLM writes them into os.environ at start). Unknown keys become warnings, wrong types
errors. Settings that belong to later work (database) are accepted and listed in `Config.inactive`. See keymux/config/litellm.py for `model_list`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import yaml

from keymux.config.fields import ENV_PREFIX, ConfigError, Fields, describe, join_path, show_name
from keymux.config.fields import show_value as sv
from keymux.config.litellm import Origin, parse_model_list
from keymux.config.schema import CacheSettings, Config, DeploymentConfig, RedisSettings, RouterSettings

ROUTING_STRATEGIES = ("simple-shuffle", "least-busy", "usage-based-routing", "usage-based-routing-v2",
                      "latency-based-routing", "round-robin")
MASTER_KEY_ENV = "LITELLM_MASTER_KEY"

_TOP_LEVEL = ("model_list", "router_settings", "litellm_settings", "general_settings", "environment_variables",
              "include")
_TOP_LEVEL_UNSUPPORTED = frozenset(("credential_list", "guardrails", "mcp_servers", "files_settings",
                                    "assistant_settings", "finetune_settings", "search_tools",
                                    "vector_store_registry", "callback_settings", "pass_through_endpoints"))
_LEDGER_CALLBACKS = frozenset(("callbacks", "success_callback", "failure_callback", "service_callback",
                               "input_callback", "_async_success_callback", "_async_failure_callback",
                               "callback_settings", "langfuse_default_tags"))
_REDIS = ("redis_host", "redis_port", "redis_password", "redis_url", "redis_namespace", "redis_fail_closed")
CACHE_TYPES = ("local", "redis")
# LiteLLM accepts these in litellm_settings too; router_settings wins when both are set.
_ROUTER_IN_LITELLM = {"num_retries": "num_retries", "request_timeout": "timeout", "allowed_fails": "allowed_fails",
                      "cooldown_time": "cooldown_time", "fallbacks": "fallbacks",
                      "context_window_fallbacks": "context_window_fallbacks"}
_ROUTER_UNSUPPORTED = frozenset((
    "model_group_alias", "enable_pre_call_checks", "retry_policy", "allowed_fails_policy", "routing_strategy_args",
    "cache_responses", "enable_tag_filtering", "disable_cooldowns", "provider_budget_config",
    "optional_pre_call_checks", "set_verbose", "debug_level", "cache_kwargs", "polling_interval", "max_fallbacks",
    "model_group_retry_policy", "redis_db", "client_ttl", "stream_timeout", "default_litellm_params",
    "default_max_parallel_requests", "default_priority", "timeout_is_ok",
))
_LITELLM_UNSUPPORTED = frozenset((
    "json_logs", "turn_off_message_logging", "redact_user_api_key_info", "redact_messages_in_exceptions",
    "telemetry", "modify_params", "max_budget", "budget_duration", "default_team_settings",
    "max_internal_user_budget", "ssl_verify", "enable_preview_features", "global_disable_no_log_param",
    "use_litellm_proxy", "force_ipv4", "disable_end_user_cost_tracking", "enable_json_schema_validation",
    "default_internal_user_params", "upperbound_key_generate_params", "key_generation_settings",
    "return_response_headers", "add_function_to_prompt", "drop_params_for_models", "max_end_user_budget",
))
_GENERAL_UNSUPPORTED = frozenset((
    "alerting", "alerting_threshold", "alert_types", "alert_to_webhook_url", "proxy_batch_write_at",
    "database_connection_pool_limit", "database_connection_timeout", "disable_spend_logs", "store_model_in_db",
    "ui_access_mode", "allowed_routes", "public_routes", "admin_only_routes", "enforce_user_param",
    "disable_master_key_return", "custom_auth", "background_health_checks", "health_check_interval",
    "health_check_details", "infer_model_from_keys", "max_parallel_requests", "global_max_parallel_requests",
    "max_response_size_mb", "forward_openai_org_id", "forward_client_headers_to_llm_api", "disable_reset_budget",
    "allow_requests_on_db_unavailable", "proxy_budget_rescheduler_min_time", "proxy_budget_rescheduler_max_time",
    "enable_jwt_auth", "litellm_jwtauth", "allowed_ips", "use_x_forwarded_for", "user_header_name",
    "disable_retry_on_max_parallel_request_limit_error", "pass_through_endpoints", "otel", "service_account_settings",
))


# --- YAML ---------------------------------------------------------------------------------------

def _make_loader(base: type) -> type:
    class _Loader(base):  # type: ignore[misc, valid-type]
        """Safe YAML loader that remembers keys written twice in one mapping (YAML keeps only the last)."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.duplicates: list[tuple[object, int]] = []

        def construct_mapping(self, node, deep=False):  # noqa: ANN001
            seen = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    if key_node.value in seen:
                        self.duplicates.append((key_node.value, key_node.start_mark.line + 1))
                    seen.add(key_node.value)
            return super().construct_mapping(node, deep)

    return _Loader


# libyaml when present (several times faster); its error marks carry no text snippets either way.
_Loader = _make_loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _read_yaml(path: Path, label: str, warnings: list[str], *, included: bool = False) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(label, "", "an existing file", message="cannot read the config: no such file") from None
    except IsADirectoryError:
        raise ConfigError(label, "", "a file", message="cannot read the config: it is a directory") from None
    except PermissionError:
        raise ConfigError(label, "", "a readable file", message="cannot read the config: permission denied") from None
    except UnicodeDecodeError as e:
        raise ConfigError(label, "", "UTF-8 text", message=f"cannot read the config: not UTF-8 text "
                                                            f"(byte {e.start})") from None
    found: list[str] = []
    doc = parse_yaml(text, label, found)
    warnings += [f"{label}: {w}" for w in found] if included else found
    return doc


def parse_yaml(text: str, source: str = "<config>", warnings: list[str] | None = None) -> object:
    """Parse YAML text; syntax errors become `ConfigError` with line and column (never the offending text)."""
    loader = _Loader(text)
    try:
        doc = loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or "invalid YAML"
        if e.context:
            problem = f"{problem} ({e.context}"
            if e.context_mark is not None and e.problem_mark is not None and \
                    e.context_mark.line != e.problem_mark.line:
                problem += f" started at line {e.context_mark.line + 1}"
            problem += ")"
        if mark is None:
            raise ConfigError(source, "", "valid YAML", message=f"invalid YAML: {problem}") from None
        line, column = mark.line + 1, mark.column + 1
        raise ConfigError(source, f"line {line}, column {column}", "valid YAML",
                          message=f"invalid YAML: {problem}", line=line, column=column) from None
    except yaml.YAMLError as e:
        raise ConfigError(source, "", "valid YAML", message=f"invalid YAML ({type(e).__name__})") from None
    finally:
        loader.dispose()
    if warnings is not None:
        for key, line in loader.duplicates:
            warnings.append(f"line {line}: key {show_name(key)} is written twice in one mapping; "
                            "the last value is used")
    return doc


# --- public API ---------------------------------------------------------------------------------

def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Load a LiteLLM-style YAML config file. Raises `ConfigError`."""
    path = Path(path)
    label = str(path)
    yaml_warnings: list[str] = []
    doc = _read_yaml(path, label, yaml_warnings)
    sources = None
    if isinstance(doc, dict) and "include" in doc:
        doc, sources = _merge_includes(doc, path, label, yaml_warnings)
    config = _parse(doc, label, os.environ if env is None else env, sources, yaml_warnings)
    return replace(config, source=path)


def parse_config(doc: object, *, source: str = "<config>", env: Mapping[str, str] | None = None) -> Config:
    """Build a `Config` from an already-parsed document (a dict as YAML would give). Raises `ConfigError`."""
    return _parse(doc, source, os.environ if env is None else env, None, [])


# --- include: (LiteLLM: lists extend, other keys are replaced) -----------------------------------

# For each entry of the merged model_list: (file label or None for the main file, index in that file).
_Sources = list[tuple[str | None, int]]


def _merge_includes(doc: dict, path: Path, label: str, warnings: list[str]) -> tuple[dict, _Sources | None]:
    f = Fields(label, {})
    value = doc["include"]
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list):
        raise f.error("include", "a file name or a list of file names", value)
    merged = {k: v for k, v in doc.items() if k != "include"}
    models = merged.get("model_list")
    sources: _Sources | None = [(None, i) for i in range(len(models))] if isinstance(models, list) else None
    for i, name in enumerate(names):
        item_path = f"include[{i}]" if isinstance(value, list) else "include"
        name = f.string(name, item_path, resolve=False, what="a file name")
        inc_path = Path(name) if Path(name).is_absolute() else path.parent / name
        inc_label = str(inc_path)
        if not inc_path.is_file():
            raise f.error(item_path, "an existing file", message=f"included file {inc_label} does not exist")
        inc = _read_yaml(inc_path, inc_label, warnings, included=True)
        if inc is None:
            continue
        if not isinstance(inc, dict):
            raise ConfigError(inc_label, "", "a mapping at the top level", describe(inc))
        for key, val in inc.items():
            extend = isinstance(val, list) and isinstance(merged.get(key), list)
            if key == "model_list":
                own = [(inc_label, j) for j in range(len(val))] if isinstance(val, list) else None
                sources = (sources or []) + own if extend and own is not None else own
            merged[key] = merged[key] + val if extend else val
    return merged, sources


# --- the document -------------------------------------------------------------------------------

def _parse(doc: object, source: str, process_env: Mapping[str, str], sources: _Sources | None,
           early_warnings: list[str]) -> Config:
    top = Fields(source, process_env)
    if doc is None:
        raise top.error("", "a mapping with model_list", message="the config is empty: it needs a model_list")
    if not isinstance(doc, dict):
        raise top.error("", "a mapping with model_list at the top level",
                        message=f"expected a mapping with model_list at the top level, got {describe(doc)}")
    env = _environment(doc.get("environment_variables"), top)
    f = Fields(source, env)
    f.warnings.extend(early_warnings)
    for key in doc:
        if key in _TOP_LEVEL:
            continue
        if key in _TOP_LEVEL_UNSUPPORTED:
            f.warn(f"{show_name(key)}: LiteLLM section not supported by keymux, ignored")
        else:
            f.unknown("", key)
    if "include" in doc:
        f.warn("include: only followed when the config is loaded from a file, ignored")

    main_models = doc.get("model_list")
    origins = None
    if sources is not None and isinstance(main_models, list) and len(sources) == len(main_models):
        files = {label: f.for_file(label) for label, _ in sources if label is not None}
        origins = [Origin(files[label] if label else f, i, pos) for pos, (label, i) in enumerate(sources)]
    models = parse_model_list(main_models, f, origins)
    groups = {d.group for d in models.deployments}

    rs = f.mapping(doc.get("router_settings"), "router_settings")
    ls = f.mapping(doc.get("litellm_settings"), "litellm_settings")
    gs = f.mapping(doc.get("general_settings"), "general_settings")
    router = _router(rs, ls, f, groups, models.skipped_groups)
    drop_params, verbose, cache = _litellm_settings(ls, f, router.redis)
    master_key, max_request_bytes, database_url, metrics_auth = _general_settings(gs, f)
    deployments = _default_bases(models.deployments, f.env)
    return Config(deployments=deployments, router=router, drop_params=drop_params,
                  master_key=master_key, verbose=verbose, max_request_bytes=max_request_bytes, cache=cache,
                  database_url=database_url, metrics_auth=metrics_auth,
                  inactive=tuple(f.inactive), warnings=tuple(f.warnings), source=None)


# Where deployments without an api_base go: the provider's public API, unless the environment
# points elsewhere (an egress proxy, a regional mirror, or a local emulator in tests).
DEFAULT_BASE_ENV = {"gemini": "KEYMUX_GEMINI_API_BASE", "openai": "KEYMUX_OPENAI_API_BASE"}


def _default_bases(deployments: list[DeploymentConfig], env: Mapping[str, str]) -> tuple[DeploymentConfig, ...]:
    bases = {provider: env.get(var) for provider, var in DEFAULT_BASE_ENV.items()}
    return tuple(replace(d, api_base=bases[d.provider]) if d.api_base is None and bases.get(d.provider) else d
                 for d in deployments)


def _environment(value: object, f: Fields) -> dict[str, str]:
    """The process environment overlaid with `environment_variables:` (values may be os.environ/ refs)."""
    env = dict(f.env)
    section = f.mapping(value, "environment_variables", what="a mapping of variable name to value")
    for name, val in section.items():
        path = join_path("environment_variables", name)
        if not isinstance(name, str) or not name:
            raise f.error(path, "a variable name (a string)", name)
        if isinstance(val, (bool, int, float)):
            val = str(val)  # LiteLLM does os.environ[k] = str(v)
        elif isinstance(val, str):
            val = f.string(val, path, secret=True, empty_ok=True)
        else:
            raise f.error(path, "a string, number or boolean", val, secret=True)
        env[name] = val
    return env


def _router(rs: dict, ls: dict, f: Fields, groups: set[str], skipped: set[str]) -> RouterSettings:
    values: dict[str, object] = {}
    redis: dict[str, object] = {}
    # litellm_settings first, so that router_settings overrides it.
    for key, attr in _ROUTER_IN_LITELLM.items():
        if key in ls:
            values[attr] = _router_value(attr, ls[key], f"litellm_settings.{key}", f, groups, skipped)
    for key, val in rs.items():
        path = join_path("router_settings", key)
        if key == "routing_strategy":
            values["routing_strategy"] = f.choice(val, path, ROUTING_STRATEGIES)
        elif key in ("num_retries", "timeout", "allowed_fails", "cooldown_time", "retry_after", "queue_timeout",
                     "fallbacks", "context_window_fallbacks"):
            values[key] = _router_value(key, val, path, f, groups, skipped)
        elif key in _REDIS:
            redis[key] = val
        elif key == "default_fallbacks":
            f.string_list(val, path, what="a list of model group names")
            f.mark_inactive(path, "fallbacks for every group")
        elif key == "content_policy_fallbacks":
            f.mark_inactive(path, "content-policy fallbacks")
        elif key in _ROUTER_UNSUPPORTED:
            f.warn(f"{path}: LiteLLM setting not supported by keymux, ignored")
        else:
            f.unknown("router_settings", key)
    values["redis"] = _redis(redis, "router_settings", "redis_", f)
    return RouterSettings(**values)  # type: ignore[arg-type]


def _redis(section: dict, path: str, prefix: str, f: Fields) -> RedisSettings | None:
    """`redis_host`/`redis_port`/`redis_password`/`redis_url` (router_settings, LiteLLM's names) or
    `host`/`port`/`password`/`url` (cache_params). None when neither a host nor a url is given."""
    out: dict[str, object] = {}
    for name in ("host", "port", "password", "url", "namespace", "fail_closed"):
        key = prefix + name
        if key not in section or section[key] is None:
            continue
        at = join_path(path, key)
        val = section[key]
        if name == "port":
            out[name] = f.integer(val, at, minimum=1)
        elif name == "fail_closed":
            out[name] = f.boolean(val, at)
        elif name == "url":
            url = f.string(val, at, secret=True, what="a redis:// URL")
            if not url.startswith(("redis://", "rediss://", "unix://")):
                raise f.error(at, "a redis://, rediss:// or unix:// URL",
                              message="expected a redis://, rediss:// or unix:// URL")
            out[name] = url
        else:
            out[name] = f.string(val, at, secret=name == "password")
    if "host" not in out and "url" not in out:
        if out:
            f.warn(f"{path}: {prefix}host or {prefix}url is not set, so the other Redis settings are ignored")
        return None
    return RedisSettings(**out)  # type: ignore[arg-type]


def _router_value(attr: str, val: object, path: str, f: Fields, groups: set[str], skipped: set[str]) -> object:
    if attr in ("num_retries", "allowed_fails"):
        return f.integer(val, path)
    if attr == "timeout":
        return f.number(val, path, positive=True)
    if attr in ("cooldown_time", "retry_after", "queue_timeout"):
        return f.number(val, path)
    return _fallbacks(val, path, f, groups, skipped)


def _fallbacks(value: object, path: str, f: Fields, groups: set[str], skipped: set[str]) -> dict[str, tuple[str, ...]]:
    """`[{group: [g1, g2]}, ...]` (LiteLLM) or `{group: [g1, g2]}` -> {group: (g1, g2)}."""
    what = "a list of {group: [fallback groups]} mappings"
    if value is None:
        return {}
    pairs: list[tuple[object, object, str]] = []
    if isinstance(value, dict):
        pairs = [(k, v, join_path(path, k)) for k, v in value.items()]
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise f.error(f"{path}[{i}]", "a mapping {group: [fallback groups]}", item)
            pairs += [(k, v, join_path(f"{path}[{i}]", k)) for k, v in item.items()]
    else:
        raise f.error(path, what, value)

    def known(name: str, at: str) -> bool:
        if name in groups:
            return True
        if name in skipped:
            f.warn(f"{at}: group '{sv(name)}' has no deployment keymux can serve, fallback dropped")
            return False
        have = ", ".join(sv(g) for g in sorted(groups))
        raise f.error(at, "the name of a model group in model_list",
                      message=f"unknown model group '{sv(name)}' (model_list has: {have})")

    out: dict[str, tuple[str, ...]] = {}
    for group, targets, at in pairs:
        if not isinstance(group, str):
            raise f.error(path, "model group names as keys", group)
        names = f.string_list(targets, at, what="a list of model group names")
        if not known(group, at):
            continue
        kept = []
        for j, name in enumerate(names):
            item_at = f"{at}[{j}]" if isinstance(targets, list) else at
            if name == group:
                f.warn(f"{item_at}: group '{sv(group)}' falls back to itself, ignored")
            elif known(name, item_at) and name not in kept and name not in out.get(group, ()):
                kept.append(name)
        if kept:
            out[group] = out.get(group, ()) + tuple(kept)
    return out


def _inactive_value(val: object, path: str, f: Fields, *, secret: bool = False, integer: bool = False) -> None:
    """Type-check a setting that is not active yet; a missing env var is only a warning for it."""
    if isinstance(val, str) and val.startswith(ENV_PREFIX) and val[len(ENV_PREFIX):] not in f.env:
        f.warn(f"{path}: environment variable {sv(val[len(ENV_PREFIX):])} is not set "
               "(the setting is not active yet, so this is only a warning)")
        return
    if integer:
        f.integer(val, path)
    elif val is not None:
        f.string(val, path, secret=secret)


def _litellm_settings(ls: dict, f: Fields, router_redis: RedisSettings | None
                      ) -> tuple[bool, bool, CacheSettings | None]:
    drop_params = verbose = enabled = False
    params: dict = {}
    for key, val in ls.items():
        path = join_path("litellm_settings", key)
        if key == "drop_params":
            drop_params = f.boolean(val, path)
        elif key == "set_verbose":
            verbose = f.boolean(val, path)
        elif key in _ROUTER_IN_LITELLM:
            continue  # read by _router
        elif key == "cache":
            enabled = f.boolean(val, path)
        elif key == "cache_params":
            params = f.mapping(val, path)
        elif key in ("default_fallbacks", "content_policy_fallbacks"):
            f.mark_inactive(path, "fallbacks for every group" if key == "default_fallbacks"
                            else "content-policy fallbacks")
        elif key in _LEDGER_CALLBACKS:
            f.warn(f"{path}: ignored: keymux has its own ledger and metrics")
        elif key in _LITELLM_UNSUPPORTED:
            f.warn(f"{path}: LiteLLM setting not supported by keymux, ignored")
        else:
            f.unknown("litellm_settings", key)
    cache = _cache(params, f, router_redis) if enabled else None
    if params and not enabled:
        f.warn("litellm_settings.cache_params: ignored: litellm_settings.cache is not true")
    return drop_params, verbose, cache


def _cache(params: dict, f: Fields, router_redis: RedisSettings | None) -> CacheSettings:
    path = "litellm_settings.cache_params"
    values: dict[str, object] = {}
    for key, val in params.items():
        at = join_path(path, key)
        if key == "type":
            values["type"] = f.choice(val, at, CACHE_TYPES)
        elif key == "ttl":
            values["ttl"] = f.number(val, at, positive=True)
        elif key == "namespace":
            values["namespace"] = f.string(val, at)
        elif key == "max_bytes":
            values["max_bytes"] = f.integer(val, at, minimum=1)
        elif key in ("host", "port", "password", "url"):
            continue  # read by _redis below
        elif key in ("supported_call_types", "mode", "default_in_memory_ttl", "default_in_redis_ttl",
                     "similarity_threshold", "redis_semantic_cache_embedding_model", "s3_bucket_name"):
            f.warn(f"{at}: LiteLLM cache setting not supported by keymux, ignored")
        else:
            f.unknown(path, key)
    if values.get("type") == "redis":
        # Like LiteLLM: cache_params, else the router's Redis, else REDIS_URL / REDIS_HOST in the environment.
        env = {k: f"{ENV_PREFIX}{v}" for k, v in (("url", "REDIS_URL"), ("host", "REDIS_HOST"),
                                                 ("port", "REDIS_PORT"), ("password", "REDIS_PASSWORD"))
               if v in f.env}
        own = {k: v for k, v in params.items() if k in ("host", "port", "password", "url")}
        redis = _redis(own, path, "", f) or router_redis or _redis(env, path, "", f)
        if redis is None:
            f.warn(f"{join_path(path, 'type')}: redis, but no Redis is configured (cache_params.host or url, "
                   "router_settings.redis_host, REDIS_HOST): using the local cache")
            values["type"] = "local"
        else:
            values["redis"] = redis
    return CacheSettings(**values)  # type: ignore[arg-type]


def _general_settings(gs: dict, f: Fields) -> tuple[str | None, int, str | None, bool]:
    master_key = None
    max_request_bytes = Config.__dataclass_fields__["max_request_bytes"].default
    database_url: str | None = None
    metrics_auth = True
    for key, val in gs.items():
        path = join_path("general_settings", key)
        if key == "master_key":
            if val is not None:
                master_key = f.string(val, path, secret=True, what="a key string")
        elif key == "database_url":
            if val is not None:
                database_url = f.string(val, path, secret=True)
                if not database_url.startswith(("sqlite://", "postgresql://", "postgres://")):
                    raise f.error(path, "sqlite:///path or postgresql://...", message="database_url must start "
                                  "with sqlite:/// or postgresql://")
        elif key == "metrics_auth":
            metrics_auth = f.boolean(val, path)
        elif key == "max_request_size_mb":
            max_request_bytes = int(f.number(val, path, positive=True) * 1024 * 1024)
        elif key in _LEDGER_CALLBACKS:
            f.warn(f"{path}: ignored: keymux has its own ledger and metrics")
        elif key in _GENERAL_UNSUPPORTED:
            f.warn(f"{path}: LiteLLM setting not supported by keymux, ignored")
        else:
            f.unknown("general_settings", key)
    if master_key is None and f.env.get(MASTER_KEY_ENV):
        master_key = f.env[MASTER_KEY_ENV]  # LiteLLM reads it from the environment too
    return master_key, max_request_bytes, database_url, metrics_auth


__all__ = ["ROUTING_STRATEGIES", "ConfigError", "load_config", "parse_config", "parse_yaml"]
