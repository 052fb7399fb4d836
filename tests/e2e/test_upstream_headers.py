"""Per-deployment `extra_headers` (and `organization` for OpenAI) reach the upstream on the wire, as the
emulators received them; neither they nor anything a client sends (its own headers, a body `extra_headers`)
can replace the auth header keymux sends with the deployment's key, and the gateway key never leaves keymux."""

from __future__ import annotations

from typing import Any

import pytest
from openai import AsyncOpenAI

from keymux.clock import FakeClock
from keymux.emulator import EmuKey
from keymux.emulator.azure import AzureOpenAIEmulator

from .conftest import T0, StackFactory

MSG = [{"role": "user", "content": "hello there"}]
# What a client might send to reach the upstream with other credentials: none of it gets there.
CLIENT_HEADERS = {"X-Team": "from-client", "OpenAI-Organization": "org-client", "api-key": "client-key",
                  "x-goog-api-key": "client-goog-key", "x-api-key": "client-x-key"}


def _entry(model: str, key: str, **params: Any) -> dict[str, Any]:
    return {"model_name": "chat", "litellm_params": {"model": model, "api_key": key, **params}}


def _client(stack: Any) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=f"{stack.base}/v1", api_key="sk-master", max_retries=0, timeout=20,
                       default_headers=CLIENT_HEADERS)


def _no_gateway_key(headers: dict[str, str]) -> None:
    assert not any("sk-master" in v for v in headers.values())


async def test_openai_upstream_gets_extra_headers_and_organization_but_keeps_its_own_auth(
        make_stack: StackFactory) -> None:
    extra = {"X-Team": "search", "Authorization": "Bearer not-the-key", "CONTENT-TYPE": "text/plain"}
    stack = await make_stack({"model_list": [_entry("openai/gpt-4o-mini", "sk-up-1", extra_headers=extra,
                                                    organization="org-42")]},
                             openai_keys={"sk-up-1": EmuKey()})
    answer = await _client(stack).chat.completions.create(
        model="chat", messages=MSG, extra_body={"extra_headers": {"Authorization": "Bearer from-body"}})
    assert answer.choices[0].message.content
    sent = stack.openai_emu.headers[-1]
    assert sent["authorization"] == "Bearer sk-up-1" and sent["content-type"] == "application/json"
    assert sent["x-team"] == "search" and sent["openai-organization"] == "org-42"
    assert "api-key" not in sent and "x-goog-api-key" not in sent and "x-api-key" not in sent
    _no_gateway_key(sent)


@pytest.mark.parametrize("sdk", ["openai", "genai"])
async def test_gemini_upstream_gets_extra_headers_and_keeps_its_key(make_stack: StackFactory, sdk: str) -> None:
    """Through the translating exchange (an OpenAI client) and the Gemini passthrough (a Gemini client)."""
    extra = {"X-Goog-User-Project": "proj-7", "x-goog-api-key": "not-the-key"}
    stack = await make_stack({"model_list": [_entry("gemini/gemini-2.5-flash", "AIza-up-1", extra_headers=extra)]},
                             gemini_keys={"AIza-up-1": EmuKey()})
    if sdk == "openai":
        await _client(stack).chat.completions.create(model="chat", messages=MSG)
    else:
        assert (await stack.genai().aio.models.generate_content(model="chat", contents="hello")).text
    sent = stack.gemini.headers[-1]
    assert sent["x-goog-api-key"] == "AIza-up-1" and sent["x-goog-user-project"] == "proj-7"
    assert "authorization" not in sent and "api-key" not in sent
    _no_gateway_key(sent)


async def test_anthropic_upstream_gets_extra_headers_and_keeps_its_key(make_stack: StackFactory) -> None:
    extra = {"X-Api-Key": "not-the-key", "X-Team": "search"}
    stack = await make_stack({"model_list": [_entry("anthropic/claude-sonnet-4-5-20250929", "sk-ant-up-1",
                                                    extra_headers=extra)]},
                             anthropic_keys={"sk-ant-up-1": EmuKey()})
    reply = await stack.anthropic().messages.create(model="chat", max_tokens=32, messages=MSG,
                                                    extra_headers=CLIENT_HEADERS)
    assert reply.content
    sent = stack.anthropic_emu.headers[-1]
    assert sent["x-api-key"] == "sk-ant-up-1" and sent["x-team"] == "search"
    _no_gateway_key(sent)


@pytest.fixture
async def azure_emu():
    emu = AzureOpenAIEmulator({"az-key-1": EmuKey()}, clock=FakeClock(T0), models=["chatgpt-v-2"])
    await emu.serve()
    yield emu
    await emu.close()


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
async def test_azure_deployment_keeps_its_api_key_header_and_address_whatever_the_client_speaks(
        make_stack: StackFactory, azure_emu: AzureOpenAIEmulator, sdk: str) -> None:
    """The OpenAI passthrough and the translating exchange (an Anthropic client) both reach Azure's deployment
    URL with api-version and the api-key header: Azure's addressing belongs to the provider, not to either."""
    entry = _entry("azure/chatgpt-v-2", "az-key-1", api_base=azure_emu.base_url, api_version="2024-10-21",
                   extra_headers={"api-key": "not-the-key", "x-ms-client-request-id": "req-1"})
    stack = await make_stack({"model_list": [entry]})
    if sdk == "openai":
        assert (await _client(stack).chat.completions.create(model="chat", messages=MSG)).choices
    else:
        assert (await stack.anthropic().messages.create(model="chat", max_tokens=32, messages=MSG)).content
    assert [(c.key, c.status) for c in azure_emu.calls] == [("az-key-1", 200)]
    sent = azure_emu.headers[-1]
    assert sent["api-key"] == "az-key-1" and sent["x-ms-client-request-id"] == "req-1"
    assert "authorization" not in sent
    _no_gateway_key(sent)
