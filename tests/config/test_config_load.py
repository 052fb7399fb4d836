"""Loading LiteLLM proxy configs unchanged, and keymux's additions to the format."""

from __future__ import annotations

from pathlib import Path

import pytest

from keymux.config.load import load_config, parse_config
from keymux.config.schema import Config, Limits
from keymux.fingerprint import fingerprint

GEMINI = {"model": "gemini/gemini-2.5-flash", "api_key": "AIzaSyTestKeyForParseConfig0123456789ab"}


def one(params: dict | None = None, **entry) -> dict:
    """A document with one model_list entry."""
    return {"model_list": [{"model_name": "g", "litellm_params": {**GEMINI, **(params or {})}, **entry}]}


def parse(doc: dict, env: dict | None = None) -> Config:
    return parse_config(doc, source="test.yaml", env=env or {})


# --- the user's LiteLLM config, unchanged ------------------------------------------------------------

def test_litellm_config_loads_unchanged(litellm_config_path, litellm_env, keys):
    config = load_config(litellm_config_path, env=litellm_env)

    assert config.source == Path(litellm_config_path)
    groups = config.groups()
    assert list(groups) == ["gemini-pro-chat", "gemini-image", "gemini-fix"]
    assert [d.id for d in groups["gemini-pro-chat"]] == ["chat-1", "chat-2", "chat-3"]
    assert [d.id for d in groups["gemini-image"]] == ["image-1", "image-2"]
    assert [d.id for d in groups["gemini-fix"]] == ["gemini-fix/5", "gemini-fix/6"]
    assert {d.provider for d in config.deployments} == {"gemini"}
    assert {d.model for d in groups["gemini-pro-chat"]} == {"gemini-2.5-pro"}
    assert {d.model for d in groups["gemini-image"]} == {"gemini-2.5-flash-image"}
    assert {d.model for d in groups["gemini-fix"]} == {"gemini-2.5-pro"}  # bare gemini-* name
    assert [d.limits for d in groups["gemini-pro-chat"]] == [Limits(rpm=5)] * 3
    assert [d.limits.rpm for d in groups["gemini-image"]] == [10, 10]
    assert not any(d.limits.any() for d in groups["gemini-fix"])
    # chat-1 comes from environment_variables (see the next test); the others from the process env
    assert [d.api_key for d in groups["gemini-pro-chat"]][1:] == keys.chat[1:]
    assert [d.api_key for d in groups["gemini-image"]] == keys.image
    assert [d.api_key for d in groups["gemini-fix"]] == keys.fix
    for d in config.deployments:
        assert d.fingerprint == fingerprint(d.api_key, "gemini")
        assert d.api_base is None and d.project is None and d.weight == 1.0

    r = config.router
    assert (r.routing_strategy, r.num_retries, r.timeout, r.allowed_fails, r.cooldown_time) == \
        ("simple-shuffle", 3, 60.0, 2, 300.0)
    assert r.fallbacks == {"gemini-pro-chat": ("gemini-fix",)}
    assert r.context_window_fallbacks == {}
    assert config.drop_params is True and config.verbose is False
    assert config.master_key == keys.master
    assert config.warnings == (
        "litellm_settings.cache_params.type: redis, but no Redis is configured (cache_params.host or url, "
        "router_settings.redis_host, REDIS_HOST): using the local cache",)
    assert config.cache is not None and (config.cache.type, config.cache.ttl) == ("local", 600.0)
    assert config.inactive == ()


def test_environment_variables_section_wins_over_process_env(litellm_config_path, litellm_env, keys):
    config = load_config(litellm_config_path, env=litellm_env)
    chat1 = config.groups()["gemini-pro-chat"][0]
    assert litellm_env["GEMINI_CHAT_KEY_1"] != keys.env_section_chat_1
    assert chat1.api_key == keys.env_section_chat_1
    assert chat1.fingerprint == fingerprint(keys.env_section_chat_1, "gemini")


def test_environment_variables_section_supplies_missing_vars():
    doc = one({"api_key": "os.environ/ONLY_IN_SECTION"})
    doc["environment_variables"] = {"ONLY_IN_SECTION": "AIzaSyFromSection000000000000000000000"}
    assert parse(doc).deployments[0].api_key == "AIzaSyFromSection000000000000000000000"


def test_environment_variables_values_may_reference_process_env():
    doc = one({"api_key": "os.environ/K"})
    doc["environment_variables"] = {"K": "os.environ/REAL_K", "NUM": 5}
    assert parse(doc, env={"REAL_K": "AIzaSyRealK"}).deployments[0].api_key == "AIzaSyRealK"


def test_load_config_defaults_to_process_env(write_yaml, monkeypatch):
    monkeypatch.setenv("KEYMUX_TEST_PROCESS_KEY", "AIzaSyFromProcess")
    path = write_yaml("""
        model_list:
          - model_name: g
            litellm_params: {model: gemini/gemini-2.5-flash, api_key: os.environ/KEYMUX_TEST_PROCESS_KEY}
    """)
    assert load_config(path).deployments[0].api_key == "AIzaSyFromProcess"


def test_env_var_resolved_in_api_base_and_master_key():
    doc = one({"model": "openai/gpt-4o", "api_base": "os.environ/BASE"})
    doc["general_settings"] = {"master_key": "os.environ/MK"}
    config = parse(doc, env={"BASE": "https://example.test/v1/", "MK": "sk-master"})
    assert config.deployments[0].api_base == "https://example.test/v1"
    assert config.master_key == "sk-master"


def test_master_key_from_litellm_master_key_env():
    assert parse(one(), env={"LITELLM_MASTER_KEY": "sk-env"}).master_key == "sk-env"
    assert parse(one()).master_key is None


# --- keys: list, glob, keys: alias ------------------------------------------------------------------

def test_api_key_list_makes_one_deployment_per_key():
    doc = one({"api_key": ["AIzaSyListKeyOne", "os.environ/K2"], "rpm": 10}, model_info={"id": "flash"})
    config = parse(doc, env={"K2": "AIzaSyListKeyTwo"})
    assert [d.id for d in config.deployments] == ["flash#1", "flash#2"]
    assert [d.api_key for d in config.deployments] == ["AIzaSyListKeyOne", "AIzaSyListKeyTwo"]
    assert [d.fingerprint for d in config.deployments] == [fingerprint("AIzaSyListKeyOne"),
                                                           fingerprint("AIzaSyListKeyTwo")]
    assert all(d.limits == Limits(rpm=10) for d in config.deployments)


def test_env_glob_expands_to_every_matching_var_in_name_order(write_yaml):
    path = write_yaml("""
        model_list:
          - model_name: gemini-flash
            litellm_params: {model: gemini/gemini-2.5-flash, api_key: os.environ/GEMINI_KEY_*, rpm: 10, rpd: 250}
    """)
    env = {"GEMINI_KEY_10": "AIzaSyTen", "GEMINI_KEY_2": "AIzaSyTwo", "GEMINI_KEY_1": "AIzaSyOne",
           "OTHER_KEY_3": "AIzaSyNotMine"}
    config = load_config(path, env=env)
    assert [d.api_key for d in config.deployments] == ["AIzaSyOne", "AIzaSyTwo", "AIzaSyTen"]
    assert [d.id for d in config.deployments] == ["gemini-flash/0#1", "gemini-flash/0#2", "gemini-flash/0#3"]
    assert all(d.limits == Limits(rpm=10, rpd=250) for d in config.deployments)
    assert all(d.group == "gemini-flash" and d.model == "gemini-2.5-flash" for d in config.deployments)


def test_glob_sees_environment_variables_section():
    doc = one({"api_key": "os.environ/POOL_*"})
    doc["environment_variables"] = {"POOL_B": "AIzaSyB", "POOL_A": "AIzaSyA"}
    assert [d.api_key for d in parse(doc).deployments] == ["AIzaSyA", "AIzaSyB"]


def test_glob_inside_a_key_list_is_flattened():
    doc = one({"api_key": ["os.environ/A_*", "AIzaSyLiteral"]})
    config = parse(doc, env={"A_1": "AIzaSyA1", "A_2": "AIzaSyA2"})
    assert [d.api_key for d in config.deployments] == ["AIzaSyA1", "AIzaSyA2", "AIzaSyLiteral"]
    assert [d.id for d in config.deployments] == ["g/0#1", "g/0#2", "g/0#3"]


def test_keys_alias_for_the_list_form():
    params = dict(GEMINI)
    del params["api_key"]
    doc = {"model_list": [{"model_name": "g", "litellm_params": {**params, "keys": ["AIzaSyK1", "AIzaSyK2"]}}]}
    assert [d.api_key for d in parse(doc).deployments] == ["AIzaSyK1", "AIzaSyK2"]


def test_missing_api_key_falls_back_to_provider_env_var_like_litellm():
    doc = {"model_list": [{"model_name": "g", "litellm_params": {"model": "gemini/gemini-2.5-flash"}}]}
    config = parse(doc, env={"GEMINI_API_KEY": "AIzaSyDefault"})
    assert config.deployments[0].api_key == "AIzaSyDefault"
    assert any("GEMINI_API_KEY" in w for w in config.warnings)


def test_keyless_openai_compatible_server():
    doc = {"model_list": [{"model_name": "local", "litellm_params": {"model": "llama3",
                                                                      "api_base": "http://127.0.0.1:11434/v1"}}]}
    d = parse(doc).deployments[0]
    assert (d.provider, d.model, d.api_key) == ("openai", "llama3", "")
    assert d.fingerprint.startswith("oai:")


def test_key_whitespace_is_stripped():
    d = parse(one({"api_key": "os.environ/K"}), env={"K": "AIzaSyWithNewline\n"}).deployments[0]
    assert d.api_key == "AIzaSyWithNewline"


# --- providers ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "provider", "model"), [
    ({"model": "gemini/gemini-2.5-pro"}, "gemini", "gemini-2.5-pro"),
    ({"model": "gemini-2.5-flash"}, "gemini", "gemini-2.5-flash"),
    ({"model": "openai/gpt-4o-mini"}, "openai", "gpt-4o-mini"),
    ({"model": "openai/meta-llama/Llama-3-8B", "api_base": "http://h/v1"}, "openai", "meta-llama/Llama-3-8B"),
    ({"model": "gpt-4o"}, "openai", "gpt-4o"),
    ({"model": "o3-mini"}, "openai", "o3-mini"),
    ({"model": "o1"}, "openai", "o1"),
    ({"model": "o4-mini"}, "openai", "o4-mini"),
    ({"model": "chatgpt-4o-latest"}, "openai", "chatgpt-4o-latest"),
    ({"model": "my-local-model", "api_base": "http://localhost:8000/v1/"}, "openai", "my-local-model"),
    ({"model": "gemini-2.5-pro", "api_base": "http://gw/v1"}, "openai", "gemini-2.5-pro"),
    ({"model": "flash", "custom_llm_provider": "gemini"}, "gemini", "flash"),
])
def test_provider_detection(params, provider, model):
    d = parse(one(params)).deployments[0]
    assert (d.provider, d.model) == (provider, model)
    assert d.fingerprint == fingerprint(GEMINI["api_key"], provider)


def test_api_base_trailing_slash_is_stripped():
    d = parse(one({"model": "openai/gpt-4o", "api_base": "https://api.example.com/v1//"})).deployments[0]
    assert d.api_base == "https://api.example.com/v1"


@pytest.mark.parametrize(("model", "provider"), [
    ("cohere/command-r-plus", "cohere"), ("replicate/meta/llama-3", "replicate"),
    ("bedrock/anthropic.claude-3", "bedrock"), ("sagemaker/my-endpoint", "sagemaker"),
])
def test_unsupported_provider_is_skipped_with_a_warning(model, provider):
    doc = one()
    doc["model_list"].append({"model_name": "other", "litellm_params": {"model": model, "api_key": "x"}})
    config = parse(doc)
    assert [d.group for d in config.deployments] == ["g"]
    assert config.warnings == (
        f"model_list[1].litellm_params.model: provider '{provider}' is not supported yet, deployment skipped",)


def test_unknown_bare_model_is_skipped_with_a_warning():
    doc = one()
    doc["model_list"].append({"model_name": "x", "litellm_params": {"model": "mystery-model", "api_key": "k"}})
    config = parse(doc)
    assert len(config.deployments) == 1
    assert config.warnings[0].startswith("model_list[1].litellm_params.model: cannot tell which provider")


def test_wildcard_deployment_is_kept_as_a_template():
    doc = one()
    doc["model_list"].append({"model_name": "gemini/*", "litellm_params": {"model": "gemini/*", "api_key": "k"}})
    config = parse(doc)
    assert [(d.group, d.model, d.wildcard) for d in config.deployments] == [
        ("g", "gemini-2.5-flash", False), ("gemini/*", "*", True)]
    assert not any("wildcard" in w for w in config.warnings)


def test_fallback_to_a_group_that_was_skipped_is_dropped_with_a_warning():
    doc = one()
    doc["model_list"].append({"model_name": "claude", "litellm_params": {"model": "cohere/command-r"}})
    doc["router_settings"] = {"fallbacks": [{"g": ["claude"]}]}
    config = parse(doc)
    assert config.router.fallbacks == {}
    assert "router_settings.fallbacks[0].g[0]: group 'claude' has no deployment keymux can serve, " \
           "fallback dropped" in config.warnings


# --- params, limits, ids ---------------------------------------------------------------------------

def test_all_supported_litellm_params():
    d = parse(one({"rpm": 1, "tpm": 2, "rpd": 3, "tpd": 4, "max_parallel_requests": 5, "project": "proj-a",
                   "weight": 2, "order": 1, "timeout": 30, "max_retries": 4, "input_cost_per_token": 1e-7,
                   "output_cost_per_token": "4e-7"})).deployments[0]
    assert d.limits == Limits(rpm=1, tpm=2, rpd=3, tpd=4, max_parallel=5)
    assert (d.project, d.bucket) == ("proj-a", "project:proj-a")
    assert (d.weight, d.order, d.timeout, d.max_retries) == (2.0, 1, 30.0, 4)
    assert isinstance(d.weight, float) and isinstance(d.timeout, float)
    assert (d.input_cost_per_token, d.output_cost_per_token) == (1e-7, 4e-7)


def test_num_retries_is_an_alias_of_max_retries():
    assert parse(one({"num_retries": 6})).deployments[0].max_retries == 6
    assert parse(one({"num_retries": 6, "max_retries": 1})).deployments[0].max_retries == 1


def test_limits_at_entry_level_and_in_model_info_litellm_params_wins():
    doc = one({"rpm": 1}, rpm=2, tpm=20, rpd=200, model_info={"rpm": 3, "tpm": 30, "tpd": 3000, "project": "p-info"})
    d = parse(doc).deployments[0]
    assert d.limits == Limits(rpm=1, tpm=20, rpd=200, tpd=3000)
    assert d.project == "p-info"
    assert parse(one(project="p-entry", model_info={"project": "p-info"})).deployments[0].project == "p-entry"


def test_numeric_project_label_is_a_string():
    assert parse(one({"project": 123456789012})).deployments[0].project == "123456789012"


def test_cost_may_sit_in_model_info():
    d = parse(one(model_info={"input_cost_per_token": 0.5, "mode": "chat"})).deployments[0]
    assert d.input_cost_per_token == 0.5


def test_generated_ids_use_the_model_list_index():
    doc = one()
    doc["model_list"].append({"model_name": "h", "litellm_params": dict(GEMINI)})
    doc["model_list"].append({"model_name": "h", "litellm_params": dict(GEMINI), "model_info": {"id": 7}})
    assert [d.id for d in parse(doc).deployments] == ["g/0", "h/1", "7"]


def test_env_var_integers_are_accepted_for_limits():
    assert parse(one({"rpm": "os.environ/RPM"}), env={"RPM": "15"}).deployments[0].limits.rpm == 15


def test_shared_project_with_different_limits_warns():
    doc = {"model_list": [
        {"model_name": "a", "litellm_params": {**GEMINI, "api_key": "k1", "project": "p1", "rpm": 5},
         "model_info": {"id": "a1"}},
        {"model_name": "b", "litellm_params": {**GEMINI, "api_key": "k2", "project": "p1", "rpm": 10},
         "model_info": {"id": "b1"}},
        {"model_name": "c", "litellm_params": {**GEMINI, "model": "gemini/other", "api_key": "k3",
                                                "project": "p1", "rpm": 99}},
    ]}
    warnings = parse(doc).warnings
    assert len(warnings) == 1
    assert warnings[0].startswith("project 'p1', model gemini-2.5-flash: deployments a1, b1 declare different "
                                  "limits (rpm 5 vs rpm 10)")
    assert "smallest" in warnings[0]


def test_shared_project_with_equal_limits_does_not_warn():
    doc = {"model_list": [
        {"model_name": "a", "litellm_params": {**GEMINI, "api_key": "k1", "project": "p1", "rpm": 5}},
        {"model_name": "b", "litellm_params": {**GEMINI, "api_key": "k2", "project": "p1", "rpm": 5}},
    ]}
    assert parse(doc).warnings == ()


# --- router / litellm / general settings -----------------------------------------------------------

def test_router_settings_defaults():
    config = parse(one())
    assert config.router.routing_strategy == "simple-shuffle"
    assert config.router.queue_timeout == 30.0
    assert config.master_key is None and config.drop_params is False
    assert config.max_request_bytes == 20 * 1024 * 1024


def test_router_settings_all_fields():
    doc = one()
    doc["model_list"].append({"model_name": "h", "litellm_params": dict(GEMINI)})
    doc["router_settings"] = {"routing_strategy": "usage-based-routing-v2", "num_retries": 0, "timeout": 12.5,
                              "allowed_fails": 1, "cooldown_time": 0, "retry_after": 2, "queue_timeout": 45,
                              "fallbacks": {"g": "h"}, "context_window_fallbacks": [{"h": ["g"]}, {"g": ["h"]}]}
    r = parse(doc).router
    assert (r.routing_strategy, r.num_retries, r.timeout, r.allowed_fails, r.cooldown_time, r.retry_after,
            r.queue_timeout) == ("usage-based-routing-v2", 0, 12.5, 1, 0.0, 2.0, 45.0)
    assert r.fallbacks == {"g": ("h",)}
    assert r.context_window_fallbacks == {"h": ("g",), "g": ("h",)}


def test_litellm_settings_retries_and_timeout_apply_unless_router_settings_sets_them():
    doc = one()
    doc["litellm_settings"] = {"num_retries": 5, "request_timeout": 20, "allowed_fails": 9}
    r = parse(doc).router
    assert (r.num_retries, r.timeout, r.allowed_fails) == (5, 20.0, 9)
    doc["router_settings"] = {"num_retries": 1, "timeout": 7}
    r = parse(doc).router
    assert (r.num_retries, r.timeout, r.allowed_fails) == (1, 7.0, 9)


def test_set_verbose_and_max_request_size():
    doc = one()
    doc["litellm_settings"] = {"set_verbose": True}
    doc["general_settings"] = {"max_request_size_mb": 1.5}
    config = parse(doc)
    assert config.verbose is True
    assert config.max_request_bytes == int(1.5 * 1024 * 1024)


def test_redis_and_cache_settings_are_read():
    doc = one()
    doc["router_settings"] = {"redis_host": "os.environ/REDIS_HOST", "redis_port": 6380,
                              "redis_password": "os.environ/REDIS_PASSWORD", "redis_namespace": "team-a",
                              "redis_fail_closed": True}
    doc["litellm_settings"] = {"cache": True, "cache_params": {"type": "redis", "ttl": 60, "namespace": "c"}}
    config = parse(doc, env={"REDIS_HOST": "cache.internal", "REDIS_PASSWORD": "hunter2hunter2"})
    redis = config.router.redis
    assert redis is not None
    assert (redis.host, redis.port, redis.password, redis.namespace, redis.fail_closed) == \
        ("cache.internal", 6380, "hunter2hunter2", "team-a", True)
    assert "hunter2" not in repr(config)
    assert config.cache is not None
    assert (config.cache.type, config.cache.ttl, config.cache.namespace, config.cache.redis) == ("redis", 60.0, "c", redis)
    assert config.warnings == () and config.inactive == ()


def test_redis_url_and_cache_defaults():
    doc = one()
    doc["router_settings"] = {"redis_url": "redis://:pw@127.0.0.1:6379/2"}
    doc["litellm_settings"] = {"cache": True}
    config = parse(doc)
    assert config.router.redis is not None and config.router.redis.url == "redis://:pw@127.0.0.1:6379/2"
    assert config.cache is not None and (config.cache.type, config.cache.redis) == ("local", None)
    assert parse(one()).router.redis is None and parse(one()).cache is None


def test_cache_false_is_not_listed_as_inactive():
    doc = one()
    doc["litellm_settings"] = {"cache": False}
    assert parse(doc).inactive == ()


def test_redis_settings_without_a_host_warn():
    doc = one()
    doc["router_settings"] = {"redis_port": 6379}
    config = parse(doc)
    assert config.router.redis is None
    assert config.warnings == ("router_settings: redis_host or redis_url is not set, so the other Redis settings "
                               "are ignored",)


def test_callbacks_warn_that_keymux_has_its_own_ledger():
    doc = one()
    doc["litellm_settings"] = {"success_callback": ["langfuse"], "callbacks": ["otel"]}
    assert parse(doc).warnings == (
        "litellm_settings.success_callback: ignored: keymux has its own ledger and metrics",
        "litellm_settings.callbacks: ignored: keymux has its own ledger and metrics",
    )


def test_unknown_keys_warn_everywhere_and_never_fail():
    doc = one({"foo": 1}, bar=2, model_info={"baz": 3, "supports_vision": True, "mode": "chat"})
    doc["router_settings"] = {"routing_stratgy": "least-busy"}
    doc["litellm_settings"] = {"drop_parms": True}
    doc["general_settings"] = {"master_kee": "sk-x"}
    doc["model_lists"] = []
    config = parse(doc)
    assert config.warnings == (
        "model_lists: unknown setting, ignored",
        "model_list[0].bar: unknown setting, ignored",
        "model_list[0].litellm_params.foo: unknown setting, ignored",
        "model_list[0].model_info.baz: unknown setting, ignored",
        "router_settings.routing_stratgy: unknown setting, ignored",
        "litellm_settings.drop_parms: unknown setting, ignored",
        "general_settings.master_kee: unknown setting, ignored",
    )
    assert config.router.routing_strategy == "simple-shuffle"


def test_known_litellm_settings_keymux_ignores_get_a_softer_warning():
    doc = one({"api_version": "2024-01-01"})
    doc["router_settings"] = {"enable_pre_call_checks": True}
    config = parse(doc)
    assert config.warnings == (
        "model_list[0].litellm_params.api_version: LiteLLM setting not supported by keymux, ignored",
        "router_settings.enable_pre_call_checks: accepted, no effect in keymux",
    )


def test_duplicate_yaml_keys_warn(write_yaml):
    path = write_yaml("""
        model_list:
          - model_name: g
            litellm_params:
              model: gemini/gemini-2.5-flash
              api_key: AIzaSyDup
              rpm: 5
              rpm: 7
    """)
    config = load_config(path, env={})
    assert config.deployments[0].limits.rpm == 7
    assert config.warnings == ("line 7: key rpm is written twice in one mapping; the last value is used",)


def test_yaml_anchors_and_merge_keys_work(write_yaml):
    path = write_yaml("""
        x-defaults: &defaults {model: gemini/gemini-2.5-flash, rpm: 10}
        model_list:
          - model_name: g
            litellm_params: {<<: *defaults, api_key: AIzaSyOne, rpm: 5}
    """)
    config = load_config(path, env={})
    assert config.deployments[0].limits.rpm == 5
    assert config.warnings == ("x-defaults: unknown setting, ignored",)


def test_include_follows_litellm_semantics(write_yaml):
    write_yaml("""
        model_list:
          - model_name: extra
            litellm_params: {model: gemini/gemini-2.5-flash, api_key: AIzaSyExtra, foo: 1}
    """, name="more.yaml")
    path = write_yaml("""
        include: [more.yaml]
        model_list:
          - model_name: main
            litellm_params: {model: gemini/gemini-2.5-pro, api_key: AIzaSyMain}
    """)
    config = load_config(path, env={})
    assert [(d.group, d.id) for d in config.deployments] == [("main", "main/0"), ("extra", "extra/1")]
    assert config.warnings == (f"{path.parent / 'more.yaml'}: model_list[0].litellm_params.foo: "
                               "unknown setting, ignored",)
