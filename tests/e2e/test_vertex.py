"""vertex_ai/ deployments end to end: the openai, google-genai and anthropic SDKs through keymux to the
Gemini emulator's Vertex mode, with access tokens minted from service accounts by the token emulator.

Each test makes its own service accounts (fresh RSA keys); the emulators run on the gateway's FakeClock."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from google.genai import types
from openai import APIStatusError

from keymux.emulator import EmuKey
from keymux.emulator.google_token import TokenEmulator
from keymux.emulator.vertex import VertexEmulator

from .conftest import T0, Stack, StackFactory

MSG = [{"role": "user", "content": "hello vertex"}]


class Vertex:
    def __init__(self, tokens: TokenEmulator, emu: VertexEmulator) -> None:
        self.tokens, self.emu = tokens, emu
        self.accounts: dict[str, dict[str, Any]] = {}

    def account(self, project: str) -> dict[str, Any]:
        doc = self.accounts[project] = self.tokens.account(project)
        return doc

    def entry(self, group: str, project: str, model: str = "gemini-2.5-flash", **params: Any) -> dict[str, Any]:
        doc = self.accounts.get(project) or self.account(project)
        return {"model_name": group, "litellm_params": {"model": f"vertex_ai/{model}", "vertex_credentials": doc,
                                                        "api_base": self.emu.base_url, **params}}

    async def stack(self, make_stack: StackFactory, *entries: dict[str, Any], **doc: Any) -> Stack:
        stack = await make_stack({"model_list": list(entries), **doc})
        self.tokens.clock = self.emu.clock = stack.clock  # one clock for the gateway and both emulators
        return stack

    def minted(self) -> int:
        return self.tokens.count(status=200)


@pytest.fixture
async def vertex() -> AsyncIterator[Vertex]:
    from keymux.clock import FakeClock

    tokens = TokenEmulator(clock=FakeClock(T0))
    await tokens.serve()
    emu = VertexEmulator(tokens, {"proj-a": EmuKey(), "proj-b": EmuKey()}, clock=tokens.clock)
    await emu.serve()
    yield Vertex(tokens, emu)
    await emu.close()
    await tokens.close()


async def _get(stack: Stack, path: str) -> bytes:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{stack.base}{path}", headers={"authorization": "Bearer sk-master"}) as resp:
            return await resp.read()


async def test_openai_chat_and_its_stream_reach_vertex_with_one_minted_token(make_stack: StackFactory,
                                                                            vertex: Vertex) -> None:
    stack = await vertex.stack(make_stack, vertex.entry("flash", "proj-a"))
    answer = await stack.openai().chat.completions.create(model="flash", messages=MSG)
    assert answer.choices[0].message.content == "Echo: hello vertex"
    assert answer.usage is not None and answer.usage.prompt_tokens > 0
    stream = await stack.openai().chat.completions.create(model="flash", messages=MSG, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Echo: hello vertex"
    assert [(c.key, c.endpoint, c.status) for c in vertex.emu.calls] == [
        ("proj-a", "generateContent", 200), ("proj-a", "streamGenerateContent", 200)]
    assert vertex.minted() == 1  # both calls carried the same token


async def test_google_genai_passes_through_to_vertex_generate_stream_and_count_tokens(make_stack: StackFactory,
                                                                                     vertex: Vertex) -> None:
    stack = await vertex.stack(make_stack, vertex.entry("gemini-2.5-flash", "proj-a"))
    client = stack.genai().aio
    answer = await client.models.generate_content(model="gemini-2.5-flash", contents="hello vertex",
                                                  config=types.GenerateContentConfig(max_output_tokens=50))
    assert answer.text == "Echo: hello vertex"
    chunks = [c.text or "" async for c in await client.models.generate_content_stream(
        model="gemini-2.5-flash", contents="hello vertex")]
    assert "".join(chunks) == "Echo: hello vertex"
    counted = await client.models.count_tokens(model="gemini-2.5-flash", contents="hello vertex")
    assert counted.total_tokens and counted.total_tokens > 0
    assert [c.endpoint for c in vertex.emu.calls] == ["generateContent", "streamGenerateContent", "countTokens"]


async def test_anthropic_messages_and_openai_responses_are_served_by_a_vertex_group(make_stack: StackFactory,
                                                                                   vertex: Vertex) -> None:
    stack = await vertex.stack(make_stack, vertex.entry("claude-sonnet-4-5", "proj-a"),
                               vertex.entry("flash", "proj-a"))
    message = await stack.anthropic().messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=MSG)
    assert message.content[0].type == "text" and message.content[0].text == "Echo: hello vertex"
    response = await stack.openai().responses.create(model="flash", input="hello vertex")
    assert response.output_text == "Echo: hello vertex"
    assert vertex.emu.count(key="proj-a", status=200) == 2 and vertex.minted() == 1  # one account, one token


async def test_two_projects_pool_as_two_keys_and_a_vertex_quota_429_parks_only_its_project(
        make_stack: StackFactory, vertex: Vertex) -> None:
    vertex.emu.keys["proj-a"] = EmuKey(rpm=1)
    stack = await vertex.stack(make_stack, vertex.entry("flash", "proj-a", order=1),
                               vertex.entry("flash", "proj-b", order=2))
    for _ in range(3):
        assert (await stack.openai().chat.completions.create(model="flash", messages=MSG)).choices
    assert [(c.key, c.status) for c in vertex.emu.calls] == [("proj-a", 200), ("proj-a", 429), ("proj-b", 200),
                                                              ("proj-b", 200)]  # proj-a parked: not asked again
    keys = orjson.loads(await _get(stack, "/admin/keys"))["data"]
    parked = next(k for k in keys if k["project"] == "vertex:proj-a/us-central1")
    model = parked["models"][0]
    assert model["state"] == "cooling" and "project's per-minute quota" in model["why"]
    assert 55 <= model["until_in"] <= 61
    stack.clock.advance(61)
    await stack.openai().chat.completions.create(model="flash", messages=MSG)
    assert vertex.emu.calls[-1].key == "proj-a"  # its minute is over: first in order again


async def test_the_regions_shared_capacity_429_backs_off_and_the_other_project_serves(
        make_stack: StackFactory, vertex: Vertex) -> None:
    stack = await vertex.stack(make_stack, vertex.entry("flash", "proj-a", order=1),
                               vertex.entry("flash", "proj-b", order=2))
    vertex.emu.inject("proj-a", "bare429")
    assert (await stack.openai().chat.completions.create(model="flash", messages=MSG)).choices
    assert [(c.key, c.status) for c in vertex.emu.calls] == [("proj-a", 429), ("proj-b", 200)]
    keys = orjson.loads(await _get(stack, "/admin/keys"))["data"]
    why = next(k for k in keys if k["project"] == "vertex:proj-a/us-central1")["models"][0]["why"]
    assert "shared capacity" in why


async def test_one_service_account_mints_one_token_for_all_its_deployments_and_refreshes_it_in_time(
        make_stack: StackFactory, vertex: Vertex) -> None:
    stack = await vertex.stack(make_stack, vertex.entry("flash", "proj-a"),
                               vertex.entry("pro", "proj-a", model="gemini-2.5-pro"))
    for group in ("flash", "pro", "flash"):
        await stack.openai().chat.completions.create(model=group, messages=MSG)
    assert vertex.minted() == 1
    stack.clock.advance(vertex.tokens.lifetime - 400)  # still well before expiry: the same token
    await stack.openai().chat.completions.create(model="pro", messages=MSG)
    assert vertex.minted() == 1
    stack.clock.advance(200)  # within five minutes of expiry: replaced before the upstream would refuse it
    await stack.openai().chat.completions.create(model="pro", messages=MSG)
    assert vertex.minted() == 2 and vertex.emu.count(status=401) == 0


async def test_a_refused_service_account_disables_its_deployment_and_the_other_serves(
        make_stack: StackFactory, vertex: Vertex) -> None:
    stack = await vertex.stack(make_stack, vertex.entry("flash", "proj-a", order=1),
                               vertex.entry("flash", "proj-b", order=2))
    vertex.tokens.accounts[vertex.accounts["proj-a"]["client_email"]].disabled = True
    for _ in range(2):
        assert (await stack.openai().chat.completions.create(model="flash", messages=MSG)).choices
    assert [c.key for c in vertex.emu.calls] == ["proj-b", "proj-b"]
    assert vertex.tokens.count(status=400) == 1  # asked once, then the deployment is disabled
    keys = orjson.loads(await _get(stack, "/admin/keys"))["data"]
    refused = next(k for k in keys if k["project"] == "vertex:proj-a/us-central1")
    assert refused["state"] == "disabled"
    assert refused["models"][0]["why"] == ("service account refused by the token endpoint (invalid_grant: "
                                           "Invalid grant: account not found)")


async def test_without_a_usable_account_the_client_gets_an_honest_error_not_a_500(make_stack: StackFactory,
                                                                                vertex: Vertex) -> None:
    stack = await vertex.stack(make_stack, vertex.entry("flash", "proj-a"), router_settings={"queue_timeout": 0})
    vertex.tokens.outage = 1
    with pytest.raises(APIStatusError) as err:
        await stack.openai().chat.completions.create(model="flash", messages=MSG)
    assert err.value.status_code in (502, 503) and "token endpoint answered 503" in err.value.message
    assert vertex.emu.calls == []  # nothing was sent without a token
    answer = await stack.openai().chat.completions.create(model="flash", messages=MSG)  # the endpoint is back
    assert answer.choices[0].message.content


async def test_a_token_vertex_refuses_is_dropped_and_the_next_call_mints_another(make_stack: StackFactory,
                                                                               vertex: Vertex) -> None:
    stack = await vertex.stack(make_stack, vertex.entry("flash", "proj-a"),
                               router_settings={"queue_timeout": 0, "allowed_fails": 5})
    await stack.openai().chat.completions.create(model="flash", messages=MSG)
    vertex.tokens.issued.clear()  # revoked upstream
    with pytest.raises(APIStatusError) as err:
        await stack.openai().chat.completions.create(model="flash", messages=MSG)
    assert err.value.status_code in (502, 503) and "access token refused (401 UNAUTHENTICATED)" in err.value.message
    answer = await stack.openai().chat.completions.create(model="flash", messages=MSG)
    assert answer.choices[0].message.content and vertex.minted() == 2


async def test_an_account_without_access_to_the_project_is_disabled(make_stack: StackFactory,
                                                                   vertex: Vertex) -> None:
    vertex.account("proj-b")
    stack = await vertex.stack(make_stack, vertex.entry("flash", "proj-b", vertex_project="proj-a"),
                               router_settings={"queue_timeout": 0})
    with pytest.raises(APIStatusError) as err:
        await stack.openai().chat.completions.create(model="flash", messages=MSG)
    assert err.value.status_code == 503 and "the service account may not call Vertex AI" in err.value.message
    keys = orjson.loads(await _get(stack, "/admin/keys"))["data"]
    assert keys[0]["state"] == "disabled" and "may not call Vertex AI" in keys[0]["models"][0]["why"]


async def test_tokens_and_private_keys_never_leave_keymux(make_stack: StackFactory, vertex: Vertex,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    stack = await vertex.stack(make_stack, vertex.entry("flash", "proj-a", order=1),
                               vertex.entry("flash", "proj-b", order=2))
    seen = []
    vertex.emu.inject("proj-a", "503")
    seen.append((await stack.openai().chat.completions.create(model="flash", messages=MSG)).model_dump_json())
    tokens = set(vertex.tokens.issued)
    vertex.tokens.issued.clear()  # revoked: keymux sees Vertex's 401 and mints another
    for _ in range(2):
        try:
            seen.append((await stack.openai().chat.completions.create(model="flash", messages=MSG)).model_dump_json())
        except APIStatusError as e:
            seen.append(e.response.text)
    for path in ("/admin/keys", "/metrics", "/health", "/v1/models", "/admin/usage"):
        seen.append((await _get(stack, path)).decode())
    blob = "".join(seen) + caplog.text
    tokens |= set(vertex.tokens.issued)
    assert len(tokens) >= 3  # both accounts' first tokens and at least one minted after the revocation
    for doc in vertex.accounts.values():
        assert doc["private_key"][40:80] not in blob and doc["private_key_id"] not in blob
    for token in tokens:
        assert token not in blob and token[8:40] not in blob


async def test_a_vertex_wildcard_serves_any_gemini_model_it_is_asked_for(make_stack: StackFactory,
                                                                        vertex: Vertex) -> None:
    stack = await vertex.stack(make_stack, vertex.entry("vertex_ai/*", "proj-a", model="*"))
    for model in ("gemini-2.5-flash", "gemini-2.5-pro"):
        answer = await stack.openai().chat.completions.create(model=f"vertex_ai/{model}", messages=MSG)
        assert answer.choices[0].message.content == "Echo: hello vertex"
    assert [c.model for c in vertex.emu.calls] == ["gemini-2.5-flash", "gemini-2.5-pro"]


async def test_a_service_account_added_through_the_admin_api_joins_the_group_and_serves(
        make_stack: StackFactory, vertex: Vertex) -> None:
    vertex.emu.keys["proj-a"] = EmuKey(rpm=1)
    stack = await vertex.stack(make_stack, vertex.entry("flash", "proj-a"), router_settings={"queue_timeout": 0})
    assert (await stack.openai().chat.completions.create(model="flash", messages=MSG)).choices  # proj-a's minute
    doc = vertex.account("proj-b")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{stack.base}/admin/keys", json={"group": "flash", "vertex_credentials": doc},
                             headers={"authorization": "Bearer sk-master"}) as resp:
            assert resp.status == 201, await resp.text()
            added = await resp.text()
    assert doc["private_key"][40:80] not in added and doc["client_email"] not in added
    assert (await stack.openai().chat.completions.create(model="flash", messages=MSG)).choices
    assert vertex.emu.calls[-1].key == "proj-b" and vertex.emu.calls[-1].status == 200  # same host, its project
