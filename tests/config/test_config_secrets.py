"""No secret value ever appears in a ConfigError, a warning, the inactive list, repr() or describe().

Each case puts a real-looking key somewhere a careless message could echo it.
"""

from __future__ import annotations

import pytest

from keymux.config.load import ConfigError, load_config, parse_config
from keymux.config.report import describe

KEY = "AIzaSyFAKEtestKEYnotREAL0000000000000000"  # 39 characters, like a real AI Studio key
OAI = "sk-proj-Tq8Lm3Vx7Rb2Nc9Wk4Pz6Hy1Jd5Fg0SaE"
MASTER = "sk-master-9Fh3Kq7Lz2Vb8Nm4Xc6Rt1Yw5"
SECRETS = (KEY, OAI, MASTER)


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        # not the key, nor any recognisable part of it
        for start in range(0, len(secret) - 11):
            assert secret[start:start + 12] not in text, f"secret fragment leaked in: {text!r}"


def ok_entry(**params) -> dict:
    return {"model_name": "g", "litellm_params": {"model": "gemini/gemini-2.5-flash", "api_key": KEY, **params}}


def error_of(doc: object, env: dict | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(doc, source="cfg.yaml", env=env or {})
    return info.value


def test_assert_clean_catches_a_leak():
    with pytest.raises(AssertionError):
        assert_clean(f"bad: {KEY[5:20]}")


@pytest.mark.parametrize("doc", [
    {"model_list": [ok_entry(rpm=KEY)]},                                      # key in a number field
    {"model_list": [ok_entry(timeout=OAI)]},
    {"model_list": [ok_entry(api_key=[KEY, 5])]},                              # bad list item beside a key
    {"model_list": [ok_entry(api_key={"key": KEY})]},
    {"model_list": [ok_entry(api_key=12345678901234567890)]},                  # a numeric "key"
    {"model_list": [ok_entry(api_key=f"os.environ/{KEY}")]},                  # key written after os.environ/
    {"model_list": [ok_entry(api_key=f"os.environ/{KEY}*")]},
    {"model_list": [ok_entry(api_base=KEY)]},
    {"model_list": [ok_entry(api_base=f"os.environ/{OAI}")]},
    {"model_list": [ok_entry(project=[KEY])]},
    {"model_list": [{"model_name": KEY, "litellm_params": {"model": "gemini/x", "api_key": KEY}},
                    {"model_name": KEY, "litellm_params": {"model": "gemini/x", "api_key": KEY},
                     "model_info": {"id": f"{KEY}/0"}}]},                        # duplicate id made of the key
    {"model_list": [ok_entry()], "router_settings": {"routing_strategy": KEY}},
    {"model_list": [ok_entry()], "router_settings": {"fallbacks": [{"g": [KEY]}]}},
    {"model_list": [ok_entry()], "router_settings": {"fallbacks": {KEY: ["g"]}}},
    {"model_list": [ok_entry()], "router_settings": {"num_retries": OAI}},
    {"model_list": [ok_entry()], "router_settings": {"redis_password": ["x", MASTER]}},
    {"model_list": [ok_entry()], "general_settings": {"master_key": [MASTER]}},
    {"model_list": [ok_entry()], "general_settings": {"master_key": 12345678901234567890}},
    {"model_list": [ok_entry()], "general_settings": {"database_url": {"url": MASTER}}},
    {"model_list": [ok_entry()], "general_settings": {"max_request_size_mb": MASTER}},
    {"model_list": [ok_entry()], "litellm_settings": {"drop_params": KEY}},
    {"model_list": [ok_entry()], "environment_variables": {"K": [KEY]}},
    {"model_list": [ok_entry()], "environment_variables": {"K": {"v": OAI}}},
    {"model_list": [ok_entry(model="gemini/")]},
    {"model_list": [{"model_name": "g", "litellm_params": {"model": "cohere/c", "api_key": KEY}}]},
    [KEY],
    KEY,
])
def test_errors_never_contain_a_secret(doc):
    err = error_of(doc)
    assert_clean(str(err))
    assert_clean(repr(err))
    assert_clean(f"{err.path} {err.expected} {err.got}")


def test_error_from_env_var_value_is_not_echoed():
    err = error_of({"model_list": [ok_entry(rpm="os.environ/RPM")]}, env={"RPM": KEY})
    assert err.path == "model_list[0].litellm_params.rpm"
    assert_clean(str(err))


def test_empty_glob_value_error_is_clean():
    err = error_of({"model_list": [ok_entry(api_key="os.environ/K_*")]}, env={"K_1": KEY, "K_2": ""})
    assert_clean(str(err))


@pytest.mark.parametrize("loader", ["default", "pure-python"])
def test_yaml_syntax_error_never_echoes_the_line(write_yaml, monkeypatch, loader):
    if loader == "pure-python":  # PyYAML's Python parser puts a snippet of the line in str(error)
        import yaml

        from keymux.config import load

        monkeypatch.setattr(load, "_Loader", load._make_loader(yaml.SafeLoader))
    path = write_yaml(f"""
        model_list:
          - model_name: g
            litellm_params: {{model: gemini/x, api_key: {KEY}: {OAI}}}
        general_settings:
          master_key: "{MASTER}
    """)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.line is not None
    assert_clean(str(info.value))


def test_warnings_inactive_repr_and_report_never_contain_a_secret(write_yaml):
    path = write_yaml(f"""
        model_list:
          - model_name: g
            litellm_params:
              model: gemini/gemini-2.5-flash
              api_key: [{KEY}, os.environ/OAI_AS_GEMINI]
              {KEY}: 1
              rpm: 5
              project: p
            model_info: {{id: main}}
          - model_name: g2
            litellm_params: {{model: gemini/gemini-2.5-flash, api_key: {KEY}, rpm: 9, project: p}}
          - model_name: o
            litellm_params: {{model: openai/gpt-4o, api_key: os.environ/OPENAI_KEY,
                              api_base: "https://user:{MASTER}@api.example.com/v1?key={KEY}"}}
          - model_name: {KEY}
            litellm_params: {{model: {KEY}, api_key: {KEY}}}
          - model_name: a
            litellm_params: {{model: cohere/command-r, api_key: {OAI}}}
        router_settings:
          redis_password: os.environ/REDIS_PASSWORD
          redis_url: "redis://:{MASTER}@cache:6379"
          {OAI}: true
        litellm_settings:
          cache: true
          cache_params: {{type: redis, password: {MASTER}}}
          success_callback: [langfuse]
        general_settings:
          master_key: {MASTER}
          database_url: "postgresql://u:{MASTER}@db/x"
        environment_variables:
          OAI_AS_GEMINI: {OAI}
          {KEY}: x
    """)
    config = load_config(path, env={"OPENAI_KEY": OAI, "REDIS_PASSWORD": MASTER})
    assert config.master_key == MASTER
    assert {d.api_key for d in config.deployments} >= {KEY, OAI}
    assert len(config.warnings) >= 4  # unknown keys, shared-bucket limits, skipped deployments, callbacks
    # (repr(config) is not checked here: DeploymentConfig.api_base is in its repr, and this api_base
    # deliberately carries credentials; test_repr_never_contains_a_key covers repr.)
    for text in (*config.warnings, *config.inactive, describe(config)):
        assert_clean(text)
    assert "?…" in describe(config)  # the api_base query string is elided, the host is kept
    assert "https://api.example.com/v1" in describe(config)


def test_repr_never_contains_a_key():
    doc = {"model_list": [ok_entry(), ok_entry(model="openai/gpt-4o", api_key=[OAI])],
           "general_settings": {"master_key": MASTER}}
    config = parse_config(doc, env={})
    assert config.master_key == MASTER and config.deployments[1].api_key == OAI
    assert_clean(repr(config))
    assert_clean(str(config))


def test_the_litellm_fixture_report_is_clean(litellm_config_path, litellm_env, all_secrets):
    text = describe(load_config(litellm_config_path, env=litellm_env))
    for secret in all_secrets:
        assert secret not in text
        assert secret[:16] not in text
