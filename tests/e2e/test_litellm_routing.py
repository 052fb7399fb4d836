"""LiteLLM configs as users write them, served for real: OpenAI-compatible vendors by prefix, wildcard
deployments, model_group_alias, fallbacks to a model_info.id. Official SDKs against the emulators."""

from __future__ import annotations

import pytest
from openai import APIStatusError

from keymux.emulator import EmuKey

from .conftest import StackFactory

MSG = [{"role": "user", "content": "hello there"}]


@pytest.mark.parametrize("vendor,base_env,key_env", [
    ("groq", "GROQ_API_BASE", "GROQ_API_KEY"),
    ("mistral", "MISTRAL_API_BASE", "MISTRAL_API_KEY"),
    ("together_ai", "TOGETHER_AI_API_BASE", "TOGETHERAI_API_KEY"),
    ("hosted_vllm", "HOSTED_VLLM_API_BASE", "HOSTED_VLLM_API_KEY"),
])
async def test_openai_compatible_vendor_by_prefix(make_stack: StackFactory, vendor: str, base_env: str,
                                                  key_env: str) -> None:
    """`groq/<model>` with only the vendor's key variable set: keymux calls the vendor's OpenAI-compatible
    endpoint with that key, and the answer reaches the client."""
    doc = {"model_list": [{"model_name": "fast", "litellm_params": {"model": f"{vendor}/llama-3.3-70b"}}]}
    stack = await make_stack(doc, openai_keys={"vendor-key-1": EmuKey()},
                             env={base_env: "{openai}/v1", key_env: "vendor-key-1"})
    stack.openai_emu.models.append("llama-3.3-70b")
    answer = await stack.openai().chat.completions.create(model="fast", messages=MSG)
    assert answer.choices[0].message.content
    [call] = [c for c in stack.openai_emu.calls if c.endpoint == "chat.completions"]
    assert (call.key, call.model, call.status) == ("vendor-key-1", "llama-3.3-70b", 200)
    assert stack.config.deployments[0].vendor == vendor


async def test_vendor_keys_are_pooled_and_a_429_moves_to_the_next_key(make_stack: StackFactory) -> None:
    doc = {"model_list": [{"model_name": "fast", "litellm_params": {
        "model": "groq/llama-3.1-8b-instant", "api_key": k, "rpm": 100}} for k in ("gk-1", "gk-2")]}
    stack = await make_stack(doc, openai_keys={"gk-1": EmuKey(rpm=1), "gk-2": EmuKey(rpm=1)},
                             env={"GROQ_API_BASE": "{openai}/v1"})
    stack.openai_emu.models.append("llama-3.1-8b-instant")
    for _ in range(2):
        answer = await stack.openai().chat.completions.create(model="fast", messages=MSG)
        assert answer.choices[0].message.content
    ok = sorted(c.key for c in stack.openai_emu.calls if c.status == 200)
    assert ok == ["gk-1", "gk-2"]


async def test_gemini_wildcard_serves_any_gemini_model_with_limits_per_model(make_stack: StackFactory) -> None:
    doc = {"model_list": [{"model_name": "gemini/*", "litellm_params": {"model": "gemini/*", "api_key": "wk",
                                                                          "rpm": 1}}],
           "router_settings": {"queue_timeout": 0}}
    stack = await make_stack(doc, gemini_keys={"wk": EmuKey()})
    client = stack.openai()
    first = await client.chat.completions.create(model="gemini/gemini-2.5-flash", messages=MSG)
    assert first.choices[0].message.content
    # The same key's rpm is counted per concrete model: another model still has its own minute.
    other = await client.chat.completions.create(model="gemini/gemini-2.5-pro", messages=MSG)
    assert other.choices[0].message.content
    with pytest.raises(APIStatusError) as err:
        await client.chat.completions.create(model="gemini/gemini-2.5-flash", messages=MSG)
    assert err.value.status_code == 429 and err.value.response.headers.get("retry-after")
    assert sorted(c.model for c in stack.gemini.calls if c.status == 200) == ["gemini-2.5-flash", "gemini-2.5-pro"]
    # The Gemini SDK names the model without the prefix: the same wildcard serves it.
    stack.gemini.models.append("gemini-3-flash-preview")
    answer = await stack.genai().aio.models.generate_content(model="gemini-3-flash-preview", contents="hi")
    assert answer.text


async def test_catch_all_wildcard_routes_to_openai(make_stack: StackFactory) -> None:
    doc = {"model_list": [{"model_name": "*", "litellm_params": {"model": "openai/*", "api_key": "ok-1"}}]}
    stack = await make_stack(doc, openai_keys={"ok-1": EmuKey()})
    answer = await stack.openai().chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert answer.choices[0].message.content
    assert [c.model for c in stack.openai_emu.calls if c.status == 200] == ["gpt-4o-mini"]


async def test_model_group_alias_plain_and_hidden(make_stack: StackFactory) -> None:
    doc = {"model_list": [{"model_name": "flash", "litellm_params": {"model": "gemini/gemini-2.5-flash",
                                                                      "api_key": "ak"}}],
           "router_settings": {"model_group_alias": {"gpt-4o": "flash",
                                                     "secret-name": {"model": "flash", "hidden": True}}}}
    stack = await make_stack(doc, gemini_keys={"ak": EmuKey()})
    client = stack.openai()
    for name in ("gpt-4o", "secret-name"):
        answer = await client.chat.completions.create(model=name, messages=MSG)
        assert answer.choices[0].message.content
    assert {m.id for m in (await client.models.list()).data} == {"flash", "gpt-4o"}


async def test_fallback_to_a_model_info_id(make_stack: StackFactory) -> None:
    doc = {"model_list": [
        {"model_name": "main", "litellm_params": {"model": "gemini/gemini-2.5-flash", "api_key": "bad-key"}},
        {"model_name": "spare", "litellm_params": {"model": "gemini/gemini-2.5-pro", "api_key": "good-a"},
         "model_info": {"id": "spare-a"}},
        {"model_name": "spare", "litellm_params": {"model": "gemini/gemini-2.5-pro", "api_key": "good-b"},
         "model_info": {"id": "spare-b"}}],
        "router_settings": {"fallbacks": [{"main": ["spare-b"]}]}}
    stack = await make_stack(doc, gemini_keys={"bad-key": EmuKey(status="invalid"), "good-a": EmuKey(),
                                               "good-b": EmuKey()})
    answer = await stack.openai().chat.completions.create(model="main", messages=MSG)
    assert answer.choices[0].message.content
    assert [c.key for c in stack.gemini.calls if c.status == 200] == ["good-b"]
