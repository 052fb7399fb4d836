"""azure/ and azure_ai/ deployments from a LiteLLM config, against the Azure mode of the OpenAI emulator:
deployment URLs, api-version, the api-key header, Azure's 429 with retry-after-ms."""

from __future__ import annotations

import datetime

import pytest
from openai import APIStatusError

from keymux.clock import FakeClock
from keymux.emulator import EmuKey
from keymux.emulator.azure import AzureOpenAIEmulator

from .conftest import T0, StackFactory

MSG = [{"role": "user", "content": "hello there"}]


@pytest.fixture
async def azure_emu():
    emu = AzureOpenAIEmulator({"az-key-1": EmuKey(rpm=1), "az-key-2": EmuKey()}, clock=FakeClock(T0),
                              models=["chatgpt-v-2", "gpt-4o-mini"])
    await emu.serve()
    yield emu
    await emu.close()


async def test_azure_deployment_is_called_at_its_url_with_api_key_and_version(
        make_stack: StackFactory, azure_emu: AzureOpenAIEmulator) -> None:
    doc = {"model_list": [{"model_name": "gpt-4-team1", "litellm_params": {
        "model": "azure/chatgpt-v-2", "api_base": azure_emu.base_url + "/", "api_key": k,
        "api_version": datetime.date(2024, 10, 21), "order": n}} for n, k in enumerate(("az-key-1", "az-key-2"))]}
    stack = await make_stack(doc)
    client = stack.openai()
    for _ in range(3):  # key 1 allows one a minute: its x-ratelimit-remaining-requests 0 sends the next to key 2
        answer = await client.chat.completions.create(model="gpt-4-team1", messages=MSG)
        assert answer.choices[0].message.content
    assert [(c.key, c.status) for c in azure_emu.calls] == [("az-key-1", 200), ("az-key-2", 200), ("az-key-2", 200)]
    assert {d.api_version for d in stack.config.deployments} == {"2024-10-21"}


async def test_azure_wrong_key_is_an_invalid_key_and_the_client_gets_an_openai_shaped_error(
        make_stack: StackFactory, azure_emu: AzureOpenAIEmulator) -> None:
    doc = {"model_list": [{"model_name": "team", "litellm_params": {
        "model": "azure/chatgpt-v-2", "api_base": azure_emu.base_url, "api_key": "az-wrong"}}]}
    stack = await make_stack(doc)
    with pytest.raises(APIStatusError) as err:
        await stack.openai().chat.completions.create(model="team", messages=MSG)
    assert err.value.status_code in (401, 503)
    assert "az-wrong" not in err.value.response.text  # never echo a key


async def test_azure_ai_uses_the_api_key_header_and_default_env(make_stack: StackFactory,
                                                              azure_emu: AzureOpenAIEmulator) -> None:
    """azure_ai/: AZURE_AI_API_BASE / AZURE_AI_API_KEY from the environment, as LiteLLM reads them. The
    emulator serves Azure OpenAI addressing, so azure_ai's base here is a deployment's path."""
    doc = {"model_list": [{"model_name": "foundry", "litellm_params": {"model": "azure_ai/gpt-4o-mini",
                                                                        "api_version": "2024-10-21"}}]}
    stack = await make_stack(doc, env={"AZURE_AI_API_BASE": azure_emu.base_url + "/openai/deployments/gpt-4o-mini",
                                       "AZURE_AI_API_KEY": "az-key-2"})
    answer = await stack.openai().chat.completions.create(model="foundry", messages=MSG)
    assert answer.choices[0].message.content
    assert [(c.key, c.status) for c in azure_emu.calls] == [("az-key-2", 200)]


async def test_azure_429_is_answered_in_azures_shape_and_read_as_a_rate_limit(azure_emu: AzureOpenAIEmulator) -> None:
    """The emulator's Azure 429 (body and headers as Azure sends them) is classified as a rate limit for
    exactly the retry-after-ms it names."""
    import aiohttp

    from keymux.providers.base import Outcome
    from keymux.providers.openai import classify

    url = f"{azure_emu.base_url}/openai/deployments/chatgpt-v-2/chat/completions?api-version=2024-10-21"
    async with aiohttp.ClientSession() as http:
        for expected in (200, 429):
            async with http.post(url, json={"model": "chatgpt-v-2", "messages": MSG}, headers={"api-key": "az-key-1"}) as resp:
                assert resp.status == expected
                body, headers = await resp.read(), {k.lower(): v for k, v in resp.headers.items()}
        assert b"Please retry after" in body and b'"code":"429"' in body
        verdict = classify(429, headers, body, now=0.0)
        assert verdict.outcome is Outcome.RATE_LIMITED
        assert verdict.retry_after == pytest.approx(int(headers["retry-after-ms"]) / 1000)
        async with http.post(url.split("?")[0], json={"messages": MSG}, headers={"api-key": "az-key-2"}) as resp:
            assert resp.status == 404 and (await resp.json())["error"]["message"] == "Resource not found"
