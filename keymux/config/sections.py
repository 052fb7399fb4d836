"""The settings sections of a LiteLLM config: `router_settings` (with Redis and fallbacks),
`litellm_settings` (with the response cache) and `general_settings`. load.py reads the document and
calls these; each returns typed settings and records warnings and inactive settings on `Fields`.
"""

from __future__ import annotations

from typing import Any

from keymux.config.access import ACCESS_KEYS
from keymux.config.clients import CLIENT_KEYS
from keymux.config.fields import ENV_PREFIX, Fields, join_path
from keymux.config.fields import show_value as sv
from keymux.config.policies import parse_group_policies, parse_policy
from keymux.config.schema import CacheSettings, Config, RedisSettings, RouterSettings, ServerLimits

ROUTING_STRATEGIES = ("simple-shuffle", "least-busy", "usage-based-routing", "usage-based-routing-v2",
                      "latency-based-routing", "round-robin")
MASTER_KEY_ENV = "LITELLM_MASTER_KEY"

_LEDGER_CALLBACKS = frozenset(("callbacks", "success_callback", "failure_callback", "service_callback",
                               "input_callback", "_async_success_callback", "_async_failure_callback",
                               "callback_settings", "langfuse_default_tags"))
_REDIS = ("redis_host", "redis_port", "redis_password", "redis_url", "redis_namespace", "redis_fail_closed")
CACHE_TYPES = ("local", "redis")
# LiteLLM cache types keymux does not offer: the local cache serves instead (a warning says so).
_OTHER_CACHE_TYPES = ("disk", "redis-semantic", "qdrant-semantic", "s3", "gcs", "azure-blob")
# LiteLLM accepts these in litellm_settings too; router_settings wins when both are set.
_ROUTER_IN_LITELLM = {"num_retries": "num_retries", "request_timeout": "timeout", "allowed_fails": "allowed_fails",
                      "cooldown_time": "cooldown_time", "fallbacks": "fallbacks",
                      "context_window_fallbacks": "context_window_fallbacks"}
_ROUTER_UNSUPPORTED = frozenset((
    "enable_pre_call_checks", "enable_health_check_routing", "health_check_ignore_transient_errors",
    "model_group_affinity_config", "deployment_affinity_ttl_seconds", "enable_deployment_affinity",
    "router_general_settings", "assistants_config", "search_tools", "guardrail_list", "ignore_invalid_deployments",
    "cooldown_on_429", "context_window_fallback_strategy", "default_deployment_id", "routing_strategy_args",
    "cache_responses", "enable_tag_filtering", "disable_cooldowns", "provider_budget_config",
    "optional_pre_call_checks", "set_verbose", "debug_level", "cache_kwargs", "polling_interval", "max_fallbacks",
    "redis_db", "client_ttl", "stream_timeout", "default_litellm_params",
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


def router_settings(rs: dict, ls: dict, f: Fields, groups: set[str], skipped: set[str],
                    ids: frozenset[str] = frozenset()) -> RouterSettings:
    """`ids`: deployment ids (model_info.id), which fallbacks may name instead of a group, as in LiteLLM."""
    values: dict[str, object] = {}
    targets = groups | ids
    redis: dict[str, object] = {}
    # litellm_settings first, so that router_settings overrides it.
    for key, attr in _ROUTER_IN_LITELLM.items():
        if key in ls:
            values[attr] = _router_value(attr, ls[key], f"litellm_settings.{key}", f, targets, skipped)
    for key, val in rs.items():
        path = join_path("router_settings", key)
        if key == "routing_strategy":
            values["routing_strategy"] = f.choice(val, path, ROUTING_STRATEGIES)
        elif key in ("num_retries", "timeout", "allowed_fails", "cooldown_time", "retry_after", "queue_timeout",
                     "fallbacks", "context_window_fallbacks", "egress_window", "egress_share"):
            values[key] = _router_value(key, val, path, f, targets, skipped)
        elif key == "request_timeout":  # LiteLLM's other name for timeout
            values["timeout"] = _router_value("timeout", val, path, f, targets, skipped)
        elif key == "model_group_alias":
            values["model_group_alias"], values["hidden_aliases"] = _aliases(val, path, f, groups)
        elif key == "retry_policy":
            values[key] = parse_policy(val, path, f, "Retries")
        elif key == "allowed_fails_policy":
            values[key] = parse_policy(val, path, f, "AllowedFails")
        elif key == "model_group_retry_policy":
            values[key] = parse_group_policies(val, path, f, groups)
        elif key in _REDIS:
            redis[key] = val
        elif key == "default_fallbacks":
            f.string_list(val, path, what="a list of model group names")
            f.mark_inactive(path, "fallbacks for every group")
        elif key == "content_policy_fallbacks":
            f.mark_inactive(path, "content-policy fallbacks")
        elif key in _ROUTER_UNSUPPORTED:
            f.warn(f"{path}: accepted, no effect in keymux")
        else:
            f.unknown("router_settings", key)
    values["redis"] = _redis(redis, "router_settings", "redis_", f)
    return RouterSettings(**values)  # type: ignore[arg-type]


def model_aliases(value: object, path: str, f: Fields, groups: set[str]) -> dict[str, str]:
    """{alias: group} or LiteLLM's {alias: {model: group, hidden: ...}}; the group must exist."""
    out: dict[str, str] = {}
    for alias, target in f.mapping(value, path).items():
        at = join_path(path, str(alias))
        if isinstance(target, dict):
            target = target.get("model")
        group = f.string(target, at, what="a model group name")
        if group not in groups:
            raise f.error(at, "a model group name", message=f"model group {group!r} is not in model_list")
        out[str(alias)] = group
    return out


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
        elif name == "password":
            password = f.string(val, at, secret=True, empty_ok=True)
            if password:  # an empty password (REDIS_PASSWORD="") means none, as in LiteLLM
                out[name] = password
        else:
            out[name] = f.string(val, at)
    if "host" not in out and "url" not in out:
        if out:
            f.warn(f"{path}: {prefix}host or {prefix}url is not set, so the other Redis settings are ignored")
        return None
    return RedisSettings(**out)  # type: ignore[arg-type]


def _router_value(attr: str, val: object, path: str, f: Fields, groups: set[str], skipped: set[str]) -> object:
    if attr in ("num_retries", "allowed_fails"):
        return f.integer(val, path)
    if attr in ("timeout", "egress_window"):
        return f.number(val, path, positive=True)
    if attr == "egress_share":
        share = f.number(val, path, positive=True)
        if share > 1:
            raise f.error(path, "a share of keys between 0 and 1", message="expected a number between 0 and 1")
        return share
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
        """A group or a deployment id (model_info.id), in fallbacks and context_window_fallbacks alike."""
        if name in groups:
            return True
        if name in skipped:
            f.warn(f"{at}: group '{sv(name)}' has no deployment keymux can serve, fallback dropped")
            return False
        have = ", ".join(sv(g) for g in sorted(groups))
        raise f.error(at, "the name of a model group or a model_info.id in model_list",
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


def _aliases(value: object, path: str, f: Fields, groups: set[str]) -> tuple[dict[str, str], frozenset[str]]:
    """`{alias: group}` or `{alias: {model: group, hidden: true}}` (LiteLLM's model_group_alias)."""
    section = f.mapping(value, path, what="a mapping of alias to model group")
    out: dict[str, str] = {}
    hidden: set[str] = set()
    for alias, target in section.items():
        at = join_path(path, alias)
        if not isinstance(alias, str) or not alias:
            raise f.error(at, "an alias name (a string)", alias)
        if isinstance(target, dict):
            if "model" not in target:
                raise f.error(at, "{model: <group>, hidden: true|false}", message="missing: model (the group)")
            group = f.string(target["model"], f"{at}.model", resolve=False)
            if target.get("hidden") is not None and f.boolean(target["hidden"], f"{at}.hidden"):
                hidden.add(alias)
        else:
            group = f.string(target, at, resolve=False, what="a model group name or {model, hidden}")
        if group not in groups:
            f.warn(f"{at}: '{sv(group)}' is not a model group in model_list, alias dropped")
            hidden.discard(alias)
            continue
        out[alias] = group
    return out, frozenset(hidden)


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


def litellm_settings(ls: dict, f: Fields, router_redis: RedisSettings | None
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
        elif key in ACCESS_KEYS:
            pass  # read by access.py
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
            kind = f.string(val, at, what="a cache type")
            if kind in CACHE_TYPES:
                values["type"] = kind
            else:
                known = "a LiteLLM cache type keymux does not offer" if kind in _OTHER_CACHE_TYPES else \
                    "an unknown cache type"
                f.warn(f"{at}: {sv(kind)} is {known}: using the local cache")
                values["type"] = "local"
        elif key == "ttl":
            values["ttl"] = f.number(val, at, positive=True)
        elif key == "namespace":
            values["namespace"] = f.string(val, at)
        elif key == "max_bytes":
            values["max_bytes"] = f.integer(val, at, minimum=1)
        elif key in ("host", "port", "password", "url"):
            continue  # read by _redis below
        elif key in ("supported_call_types", "mode", "default_in_memory_ttl", "default_in_redis_ttl",
                     "similarity_threshold", "redis_semantic_cache_embedding_model", "s3_bucket_name",
                     "s3_region_name", "s3_path", "s3_endpoint_url", "disk_cache_dir", "gcs_bucket_name",
                     "gcs_path", "qdrant_api_base", "qdrant_collection_name", "qdrant_quantization_config",
                     "azure_account_url", "azure_blob_container"):
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


_SERVER_SECONDS = ("request_header_timeout", "request_body_timeout", "keepalive_timeout")


def upload_limit(gs: dict, f: Fields) -> int:
    """general_settings.max_upload_size_mb: the largest file keymux passes through to a key."""
    val = gs.get("max_upload_size_mb")
    if val is None:
        return Config.__dataclass_fields__["max_upload_bytes"].default  # type: ignore[return-value]
    return int(f.number(val, "general_settings.max_upload_size_mb", positive=True) * 1024 * 1024)


def general_settings(gs: dict, f: Fields) -> tuple[str | None, int, str | None, bool, int, ServerLimits]:
    master_key = None
    max_request_bytes = Config.__dataclass_fields__["max_request_bytes"].default
    max_upstream = Config.__dataclass_fields__["max_upstream_response_bytes"].default
    server: dict[str, Any] = {}
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
        elif key in CLIENT_KEYS:
            pass  # read by clients.py
        elif key == "max_request_size_mb":
            max_request_bytes = int(f.number(val, path, positive=True) * 1024 * 1024)
        elif key == "max_upstream_response_mb":
            max_upstream = int(f.number(val, path, positive=True) * 1024 * 1024)
        elif key == "max_upload_size_mb":
            continue  # read by upload_limit()
        elif key in _SERVER_SECONDS:
            server[key.removeprefix("request_")] = f.number(val, path, positive=True)
        elif key == "max_connections":
            server[key] = f.integer(val, path, minimum=1)
        elif key in _LEDGER_CALLBACKS:
            f.warn(f"{path}: ignored: keymux has its own ledger and metrics")
        elif key in _GENERAL_UNSUPPORTED:
            f.warn(f"{path}: LiteLLM setting not supported by keymux, ignored")
        else:
            f.unknown("general_settings", key)
    if master_key is None and f.env.get(MASTER_KEY_ENV):
        master_key = f.env[MASTER_KEY_ENV]  # LiteLLM reads it from the environment too
    return (master_key, max_request_bytes, database_url, metrics_auth, max_upstream,  # type: ignore[return-value]
            ServerLimits(**server))  # each one read as its field requires above

