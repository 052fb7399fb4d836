"""LiteLLM settings keymux used to refuse or silently change (issue 14)."""

from __future__ import annotations

import pytest

from keymux.config.fields import ConfigError
from keymux.config.load import parse_config


def gemini(**params: object) -> dict:
    return {"model_list": [{"model_name": "g", "litellm_params": {"model": "gemini/gemini-2.5-flash",
                                                                    "api_key": "AIzaSyCompatTestKey000000000000000000", **params}}]}


def test_an_empty_redis_password_means_none() -> None:
    doc = {**gemini(), "router_settings": {"redis_host": "localhost", "redis_password": "os.environ/REDIS_PASSWORD"}}
    redis = parse_config(doc, env={"REDIS_PASSWORD": ""}).router.redis
    assert redis is not None and redis.host == "localhost" and redis.password is None


@pytest.mark.parametrize("kind", ["disk", "redis-semantic", "s3", "something-new"])
def test_other_cache_types_warn_and_use_the_local_cache(kind: str) -> None:
    doc = {**gemini(), "litellm_settings": {"cache": True, "cache_params": {"type": kind}}}
    config = parse_config(doc, env={})
    assert config.cache is not None and config.cache.type == "local"
    assert any(w.startswith("litellm_settings.cache_params.type:") and "using the local cache" in w
               for w in config.warnings)


@pytest.mark.parametrize("value", ["<your redis host>", "your-redis-host-here"])
def test_a_placeholder_left_in_is_an_error_that_says_so(value: str) -> None:
    doc = {**gemini(), "router_settings": {"redis_host": value}}
    with pytest.raises(ConfigError) as err:
        parse_config(doc, source="c.yaml", env={})
    assert str(err.value) == ("c.yaml: router_settings.redis_host: the value is still a placeholder (like <...> or "
                              "your-...-here): replace it with the real value")


def test_every_missing_environment_variable_is_named_at_once() -> None:
    doc = gemini(api_key="os.environ/KEY_A", api_base="os.environ/BASE_B")
    doc["general_settings"] = {"master_key": "os.environ/MASTER_C"}
    with pytest.raises(ConfigError) as err:
        parse_config(doc, source="c.yaml", env={})
    text = str(err.value)
    assert "3 environment variables are not set" in text
    for name, path in (("KEY_A", "model_list[0].litellm_params.api_key"),
                       ("BASE_B", "model_list[0].litellm_params.api_base"), ("MASTER_C", "general_settings.master_key")):
        assert f"{name} (at {path})" in text


def test_api_key_null_uses_the_providers_environment_variable() -> None:
    [d] = parse_config(gemini(api_key=None), env={"GEMINI_API_KEY": "AIzaSyFromTheEnvironment00000000000000"}).deployments
    assert d.api_key == "AIzaSyFromTheEnvironment00000000000000"


def test_credential_list_supplies_the_key() -> None:
    doc = {"model_list": [{"model_name": "o", "litellm_params": {"model": "openai/gpt-4o",
                                                                  "litellm_credential_name": "prod"}}],
           "credential_list": [{"credential_name": "prod", "credential_values": {"api_key": "os.environ/PROD_KEY"},
                                "credential_info": {"description": "x"}}]}
    [d] = parse_config(doc, env={"PROD_KEY": "sk-prod-credential-0001", "OPENAI_API_KEY": "sk-wrong"}).deployments
    assert d.api_key == "sk-prod-credential-0001"
    doc["model_list"][0]["litellm_params"]["litellm_credential_name"] = "nope"
    with pytest.raises(ConfigError) as err:
        parse_config(doc, env={})
    assert "unknown credential 'nope' (credential_list has: prod)" in str(err.value)


def test_a_config_whose_every_entry_is_skipped_names_the_providers() -> None:
    doc = {"model_list": [{"model_name": "b", "litellm_params": {"model": "bedrock/anthropic.claude-v2"}}]}
    with pytest.raises(ConfigError) as err:
        parse_config(doc, env={})
    assert "provider 'bedrock' is not supported yet, deployment skipped" in str(err.value)


def test_vendor_without_a_base_url_says_which_variable_sets_it() -> None:
    doc = {"model_list": [{"model_name": "v", "litellm_params": {"model": "hosted_vllm/llama"}}]}
    with pytest.raises(ConfigError) as err:
        parse_config(doc, env={})
    assert "HOSTED_VLLM_API_BASE" in str(err.value)


def test_ollama_base_gets_its_openai_path() -> None:
    doc = {"model_list": [{"model_name": "l", "litellm_params": {"model": "ollama/llama2",
                                                                  "api_base": "http://localhost:11434"}}]}
    [d] = parse_config(doc, env={}).deployments
    assert (d.provider, d.vendor, d.api_base, d.model) == ("openai", "ollama", "http://localhost:11434/v1", "llama2")


def test_fallbacks_name_a_model_info_id_in_both_kinds() -> None:
    doc = gemini()
    doc["model_list"].append({"model_name": "h", "litellm_params": {"model": "gemini/gemini-2.5-pro", "api_key": "k2"},
                              "model_info": {"id": "pro-1"}})
    doc["router_settings"] = {"fallbacks": [{"g": ["pro-1"]}], "context_window_fallbacks": [{"g": ["pro-1"]}]}
    router = parse_config(doc, env={}).router
    assert router.fallbacks == router.context_window_fallbacks == {"g": ("pro-1",)}


def test_default_params_are_read_and_typed_and_headers_stay_out_of_repr() -> None:
    [d] = parse_config(gemini(max_tokens=100, temperature=0.2, thinking_level="low",
                              extra_headers={"X-Team": "os.environ/TEAM_TOKEN"}),
                       env={"TEAM_TOKEN": "team-token-secret-123"}).deployments
    assert dict(d.defaults) == {"max_tokens": 100, "temperature": 0.2, "thinking_level": "low",
                                "extra_headers": {"X-Team": "team-token-secret-123"}}
    assert "team-token-secret-123" not in repr(d)
    with pytest.raises(ConfigError) as err:
        parse_config(gemini(max_tokens="lots"), source="c.yaml", env={})
    assert err.value.path == "model_list[0].litellm_params.max_tokens"
