"""The Gemini native surface through the official google-genai SDK."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from google.genai import errors, types

from keymux.emulator import EmuKey

from .conftest import StackFactory, gemini_group


async def test_generate_stream_and_count_tokens_with_the_genai_sdk(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("flash", ["k1", "k2"])},
                             gemini_keys={"k1": EmuKey(), "k2": EmuKey()})
    client = stack.genai().aio
    answer = await client.models.generate_content(model="flash", contents="hello gemini")
    assert answer.text == "Echo: hello gemini" and answer.usage_metadata.total_token_count > 0
    text = ""
    async for chunk in await client.models.generate_content_stream(model="flash", contents="hello stream"):
        text += chunk.text or ""
    assert text == "Echo: hello stream"
    counted = await client.models.count_tokens(model="flash", contents="count these words")
    assert counted.total_tokens > 0
    assert stack.gemini.count(endpoint="countTokens") == 1


async def test_an_upstream_model_id_pools_every_deployment_serving_it(make_stack: StackFactory) -> None:
    doc = {"model_list": gemini_group("a", ["k1"]) + gemini_group("b", ["k2"]),
           "router_settings": {"routing_strategy": "round-robin"}}  # deterministic: both keys within 4 requests
    stack = await make_stack(doc, gemini_keys={"k1": EmuKey(), "k2": EmuKey()})
    client = stack.genai().aio
    for _ in range(4):
        assert (await client.models.generate_content(model="gemini-2.5-flash", contents="hi")).text
    assert stack.gemini.count(key="k1") >= 1 and stack.gemini.count(key="k2") >= 1


async def test_gemini_to_gemini_passes_the_body_through_untouched(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("flash", ["k1"])}, gemini_keys={"k1": EmuKey()})
    body = {"contents": [{"role": "user", "parts": [{"text": "exact"}]}],
            "generationConfig": {"temperature": 0.1, "thinkingConfig": {"includeThoughts": True}},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]}
    raw = orjson.dumps(body)
    async with aiohttp.ClientSession() as http:
        via = await http.post(f"{stack.base}/v1beta/models/flash:generateContent", data=raw,
                              headers={"x-goog-api-key": "sk-master", "content-type": "application/json"})
        through = await via.json()
        direct = await http.post(f"{stack.gemini.base_url}/v1beta/models/gemini-2.5-flash:generateContent", data=raw,
                                 headers={"x-goog-api-key": "k1", "content-type": "application/json"})
        reference = await direct.json()
    assert via.headers["x-keymux-key"].startswith("gem:")
    for doc in (through, reference):
        doc.pop("responseId")
    assert through == reference  # thoughts, usage, everything as Google sent it


async def test_quota_refusals_reach_genai_clients_as_google_errors(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("flash", ["k1"], rpm=1)}, gemini_keys={"k1": EmuKey(rpm=1)})
    client = stack.genai().aio
    await client.models.generate_content(model="flash", contents="one")
    with pytest.raises(errors.ClientError) as err:
        await client.models.generate_content(model="flash", contents="two")
    assert err.value.code == 429 and err.value.status == "RESOURCE_EXHAUSTED"
    assert "free in 60 s" in err.value.message


async def test_unknown_model_is_a_google_shaped_404(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("flash", ["k1"])}, gemini_keys={"k1": EmuKey()})
    with pytest.raises(errors.ClientError) as err:
        await stack.genai().aio.models.generate_content(model="nope", contents="hi")
    assert err.value.code == 404 and "flash" in err.value.message


async def test_gemini_clients_can_use_openai_keys(make_stack: StackFactory) -> None:
    doc = {"model_list": [{"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "sk-o"}}]}
    stack = await make_stack(doc, openai_keys={"sk-o": EmuKey()})
    client = stack.genai().aio
    answer = await client.models.generate_content(
        model="gpt", contents="via openai", config=types.GenerateContentConfig(system_instruction="be nice"))
    assert answer.text == "Echo: via openai"
    text = ""
    async for chunk in await client.models.generate_content_stream(model="gpt", contents="streamed"):
        text += chunk.text or ""
    assert text == "Echo: streamed"


async def test_model_list_shows_groups(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("flash", ["k1"]) + gemini_group("pro", ["k2"], model="gemini-2.5-pro")},
                             gemini_keys={"k1": EmuKey(), "k2": EmuKey()})
    names = [m.name async for m in await stack.genai().aio.models.list()]
    assert names == ["models/flash", "models/pro"]
