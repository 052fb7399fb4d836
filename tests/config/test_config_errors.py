"""Every kind of ConfigError: the file, the path in the document, what was expected."""

from __future__ import annotations

import pytest

from keymux.config.load import ConfigError, load_config, parse_config

GEMINI = {"model": "gemini/gemini-2.5-flash", "api_key": "AIzaSyErrorTestsKey0123456789abcdefghij"}


def one(params: dict | None = None, **entry) -> dict:
    return {"model_list": [{"model_name": "g", "litellm_params": {**GEMINI, **(params or {})}, **entry}]}


def fail(doc: object, env: dict | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(doc, source="cfg.yaml", env=env or {})
    return info.value


# --- type errors: "<file>: <path>: expected <what>, got <shape>" ------------------------------------

@pytest.mark.parametrize(("params", "path", "expected", "got"), [
    ({"rpm": "five"}, "rpm", "a non-negative integer", 'string "five"'),
    ({"rpm": "5"}, "rpm", "a non-negative integer", 'string "5"'),
    ({"rpm": True}, "rpm", "a non-negative integer", "boolean true"),
    ({"rpm": 2.5}, "rpm", "a non-negative integer", "number 2.5"),
    ({"rpm": -1}, "rpm", "a non-negative integer", "integer -1"),
    ({"tpd": [1]}, "tpd", "a non-negative integer", "a list of 1 item"),
    ({"max_parallel_requests": None}, "max_parallel_requests", "a non-negative integer", "nothing (null)"),
    ({"order": "first"}, "order", "a non-negative integer", 'string "first"'),
    ({"timeout": "slow"}, "timeout", "a positive number", 'string "slow"'),
    ({"timeout": 0}, "timeout", "a positive number", "number 0"),
    ({"weight": -0.5}, "weight", "a non-negative number", "number -0.5"),
    ({"weight": False}, "weight", "a non-negative number", "boolean false"),
    ({"input_cost_per_token": "cheap"}, "input_cost_per_token", "a non-negative number", 'string "cheap"'),
    ({"api_key": {"a": 1}}, "api_key", "a key string", "a mapping of 1 entry"),
    ({"api_key": 12345}, "api_key", "a key string", "an integer"),
    ({"model": ["gemini/x"]}, "model", "a string", "a list of 1 item"),
])
def test_wrong_type_in_litellm_params(params, path, expected, got):
    err = fail(one(params))
    assert err.file == "cfg.yaml"
    assert err.path == f"model_list[0].litellm_params.{path}"
    assert err.expected == expected
    assert str(err) == f"cfg.yaml: model_list[0].litellm_params.{path}: expected {expected}, got {got}"


def test_wrong_type_at_entry_level_and_model_info():
    err = fail(one(rpm="lots"))
    assert str(err) == 'cfg.yaml: model_list[0].rpm: expected a non-negative integer, got string "lots"'
    err = fail(one(model_info={"tpm": 1.5}))
    assert str(err) == "cfg.yaml: model_list[0].model_info.tpm: expected a non-negative integer, got number 1.5"


def test_error_path_points_at_the_right_entry():
    doc = one()
    doc["model_list"] += [{"model_name": "h", "litellm_params": dict(GEMINI)},
                          {"model_name": "i", "litellm_params": {**GEMINI, "rpm": "five"}}]
    assert fail(doc).path == "model_list[2].litellm_params.rpm"


@pytest.mark.parametrize(("doc", "path", "message"), [
    (None, "", "the config is empty: it needs a model_list"),
    ([1, 2], "", "expected a mapping with model_list at the top level, got a list of 2 items"),
    ({}, "model_list", "missing: the config needs a model_list with at least one deployment"),
    ({"model_list": {"g": 1}}, "model_list",
     "expected a list of deployments (model_name + litellm_params), got a mapping of 1 entry"),
    ({"model_list": []}, "model_list", "is empty: the config needs at least one deployment"),
    ({"model_list": ["gemini-flash"]}, "model_list[0]",
     'expected a mapping with model_name and litellm_params, got string "gemini-flash"'),
    ({"model_list": [{"litellm_params": GEMINI}]}, "model_list[0].model_name",
     "missing: every model_list entry needs a model_name"),
    ({"model_list": [{"model_name": ["g"], "litellm_params": GEMINI}]}, "model_list[0].model_name",
     "expected a string, got a list of 1 item"),
    ({"model_list": [{"model_name": "g"}]}, "model_list[0].litellm_params",
     "missing: every model_list entry needs litellm_params"),
    ({"model_list": [{"model_name": "g", "litellm_params": "gemini/x"}]}, "model_list[0].litellm_params",
     'expected a mapping, got string "gemini/x"'),
    ({"model_list": [{"model_name": "g", "litellm_params": {"api_key": "k"}}]}, "model_list[0].litellm_params.model",
     "missing: litellm_params needs a model (e.g. gemini/gemini-2.5-flash)"),
    ({"model_list": [{"model_name": "g", "litellm_params": GEMINI, "model_info": [1]}]}, "model_list[0].model_info",
     "expected a mapping, got a list of 1 item"),
    ({**one(), "router_settings": ["simple-shuffle"]}, "router_settings",
     "expected a mapping, got a list of 1 item"),
])
def test_structure_errors(doc, path, message):
    err = fail(doc)
    assert err.path == path
    assert str(err) == (f"cfg.yaml: {path}: {message}" if path else f"cfg.yaml: {message}")


def test_model_without_name_after_provider():
    err = fail(one({"model": "gemini/"}))
    assert str(err) == "cfg.yaml: model_list[0].litellm_params.model: no model name after 'gemini/'"


def test_api_base_must_be_a_url():
    err = fail(one({"api_base": "localhost:8000"}))
    assert err.path == "model_list[0].litellm_params.api_base"
    assert str(err) == ("cfg.yaml: model_list[0].litellm_params.api_base: expected a URL starting with http:// or "
                        'https://, got string "localhost:8000"')


# --- keys and environment variables ---------------------------------------------------------------

def test_missing_env_var():
    err = fail(one({"api_key": "os.environ/GEMINI_CHAT_KEY_1"}))
    assert err.path == "model_list[0].litellm_params.api_key"
    assert str(err) == ("cfg.yaml: model_list[0].litellm_params.api_key: "
                        "environment variable GEMINI_CHAT_KEY_1 is not set")


def test_missing_env_var_in_a_key_list_names_the_item():
    err = fail(one({"api_key": ["AIzaSyPresent", "os.environ/NOPE"]}))
    assert str(err) == "cfg.yaml: model_list[0].litellm_params.api_key[1]: environment variable NOPE is not set"


def test_missing_env_var_in_master_key_and_api_base():
    doc = one()
    doc["general_settings"] = {"master_key": "os.environ/LITELLM_KEY"}
    assert str(fail(doc)) == "cfg.yaml: general_settings.master_key: environment variable LITELLM_KEY is not set"
    assert fail(one({"api_base": "os.environ/BASE"})).path == "model_list[0].litellm_params.api_base"


def test_env_glob_matching_nothing():
    err = fail(one({"api_key": "os.environ/GEMINI_KEY_*"}), env={"OTHER": "x"})
    assert str(err) == ("cfg.yaml: model_list[0].litellm_params.api_key: "
                        "no environment variable matches os.environ/GEMINI_KEY_*")


def test_env_glob_is_only_for_api_key():
    err = fail(one({"api_base": "os.environ/BASE_*"}), env={"BASE_1": "http://x"})
    assert err.path == "model_list[0].litellm_params.api_base"
    assert "only allowed in api_key" in str(err)


def test_empty_key_string():
    err = fail(one({"api_key": ""}))
    assert str(err) == "cfg.yaml: model_list[0].litellm_params.api_key: expected a non-empty key string, " \
                       "got an empty string"


def test_empty_key_from_env_var():
    err = fail(one({"api_key": "os.environ/K"}), env={"K": ""})
    assert str(err) == "cfg.yaml: model_list[0].litellm_params.api_key: environment variable K is empty"


def test_empty_key_from_glob():
    err = fail(one({"api_key": "os.environ/K_*"}), env={"K_1": "AIzaSyOk", "K_2": "  "})
    assert str(err) == "cfg.yaml: model_list[0].litellm_params.api_key: environment variable K_2 is empty"


def test_empty_key_list():
    err = fail(one({"api_key": []}))
    assert err.path == "model_list[0].litellm_params.api_key"
    assert "got a list of 0 items" in str(err)


def test_missing_api_key_without_default_env():
    doc = {"model_list": [{"model_name": "g", "litellm_params": {"model": "gemini/gemini-2.5-flash"}}]}
    err = fail(doc)
    assert err.path == "model_list[0].litellm_params.api_key"
    assert "GEMINI_API_KEY" in str(err)


def test_api_key_and_keys_together():
    assert fail(one({"keys": ["a"]})).path == "model_list[0].litellm_params.keys"


def test_environment_variables_must_be_a_mapping_of_scalars():
    doc = one()
    doc["environment_variables"] = ["A=1"]
    assert fail(doc).path == "environment_variables"
    doc["environment_variables"] = {"A": [1]}
    assert str(fail(doc)) == ("cfg.yaml: environment_variables.A: expected a string, number or boolean, "
                              "got a list of 1 item")


def test_duplicate_deployment_ids():
    doc = one(model_info={"id": "chat-1"})
    doc["model_list"].append({"model_name": "h", "litellm_params": dict(GEMINI), "model_info": {"id": "chat-1"}})
    err = fail(doc)
    assert err.path == "model_list[1].model_info.id"
    assert str(err) == ("cfg.yaml: model_list[1].model_info.id: duplicate deployment id 'chat-1' "
                        "(also used by model_list[0].model_info.id)")


def test_duplicate_id_from_key_list_expansion():
    doc = one({"api_key": ["a1", "a2"]}, model_info={"id": "x"})
    doc["model_list"].append({"model_name": "g", "litellm_params": dict(GEMINI), "model_info": {"id": "x#2"}})
    assert "duplicate deployment id 'x#2'" in str(fail(doc))


def test_no_deployment_left_after_skipping_unsupported_providers():
    doc = {"model_list": [{"model_name": "c", "litellm_params": {"model": "cohere/command-r", "api_key": "k"}},
                          {"model_name": "v", "litellm_params": {"model": "bedrock/anthropic.claude-3"}}]}
    err = fail(doc)
    assert err.path == "model_list"
    assert "no deployment left" in str(err)


# --- router settings ----------------------------------------------------------------------------

def test_bad_routing_strategy_lists_the_choices():
    doc = one()
    doc["router_settings"] = {"routing_strategy": "fastest"}
    err = fail(doc)
    assert err.path == "router_settings.routing_strategy"
    assert str(err) == ("cfg.yaml: router_settings.routing_strategy: expected one of: simple-shuffle, least-busy, "
                        "usage-based-routing, usage-based-routing-v2, latency-based-routing, round-robin, "
                        'got string "fastest"')


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("num_retries", "3", "a non-negative integer"),
    ("timeout", "60s", "a positive number"),
    ("allowed_fails", -2, "a non-negative integer"),
    ("cooldown_time", [1], "a non-negative number"),
    ("retry_after", True, "a non-negative number"),
    ("queue_timeout", "forever", "a non-negative number"),
    ("redis_port", "six", "an integer >= 1"),
])
def test_router_setting_types(key, value, expected):
    doc = one()
    doc["router_settings"] = {key: value}
    err = fail(doc)
    assert (err.path, err.expected) == (f"router_settings.{key}", expected)


def test_litellm_settings_router_values_are_typed_too():
    doc = one()
    doc["litellm_settings"] = {"request_timeout": "ten"}
    assert fail(doc).path == "litellm_settings.request_timeout"


def test_unknown_fallback_group():
    doc = one()
    doc["router_settings"] = {"fallbacks": [{"g": ["gemini-flash"]}]}
    err = fail(doc)
    assert err.path == "router_settings.fallbacks[0].g[0]"
    assert str(err) == ("cfg.yaml: router_settings.fallbacks[0].g[0]: unknown model group 'gemini-flash' "
                        "(model_list has: g)")


def test_unknown_fallback_source_group():
    doc = one()
    doc["router_settings"] = {"context_window_fallbacks": {"nope": ["g"]}}
    err = fail(doc)
    assert err.path == "router_settings.context_window_fallbacks.nope"
    assert "unknown model group 'nope'" in str(err)


@pytest.mark.parametrize(("value", "path"), [
    ("g", "router_settings.fallbacks"),
    (["g"], "router_settings.fallbacks[0]"),
    ([{"g": {"h": 1}}], "router_settings.fallbacks[0].g"),
])
def test_malformed_fallbacks(value, path):
    doc = one()
    doc["router_settings"] = {"fallbacks": value}
    assert fail(doc).path == path


# --- other sections -----------------------------------------------------------------------------

@pytest.mark.parametrize(("section", "key", "value", "expected"), [
    ("litellm_settings", "drop_params", "yes please", "true or false"),
    ("litellm_settings", "set_verbose", 1, "true or false"),
    ("litellm_settings", "cache", "redis", "true or false"),
    ("litellm_settings", "cache_params", ["redis"], "a mapping"),
    ("general_settings", "max_request_size_mb", 0, "a positive number"),
    ("general_settings", "master_key", 1234, "a key string"),
    ("general_settings", "database_url", 5, "a string"),
])
def test_settings_types(section, key, value, expected):
    doc = one()
    doc[section] = {key: value}
    err = fail(doc)
    assert (err.path, err.expected) == (f"{section}.{key}", expected)


# --- files and YAML -----------------------------------------------------------------------------

def test_yaml_syntax_error_has_line_and_column(write_yaml):
    path = write_yaml("""
        model_list:
          - model_name: g
            litellm_params: {model: gemini/gemini-2.5-flash, api_key: AIzaSyNotEchoed
          - model_name: h
    """)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    err = info.value
    assert err.file == str(path)
    assert err.line == 4 and err.column is not None
    assert str(err).startswith(f"{path}: line 4, column {err.column}: invalid YAML: ")
    assert "AIzaSyNotEchoed" not in str(err)


def test_yaml_syntax_error_bad_indentation(write_yaml):
    path = write_yaml("model_list:\n  - model_name: g\n   litellm_params: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.line == 3
    assert "invalid YAML" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml", env={})
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: cannot read the config: no such file"


def test_empty_file(write_yaml):
    with pytest.raises(ConfigError) as info:
        load_config(write_yaml("# nothing here\n"), env={})
    assert "the config is empty" in str(info.value)


def test_type_error_in_included_file_names_that_file(write_yaml):
    inc = write_yaml("model_list:\n  - model_name: x\n    litellm_params: {model: gemini/m, api_key: k, rpm: no}\n",
                     name="inc.yaml")
    path = write_yaml("include: inc.yaml\nmodel_list:\n  - model_name: g\n"
                      "    litellm_params: {model: gemini/m, api_key: k2}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.file == str(inc)
    assert info.value.path == "model_list[0].litellm_params.rpm"


def test_missing_included_file(write_yaml):
    path = write_yaml("include: [gone.yaml]\nmodel_list: []\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.path == "include[0]"
    assert "does not exist" in str(info.value)
