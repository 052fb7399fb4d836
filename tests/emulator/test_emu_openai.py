"""OpenAI emulator: SDK chat/stream/tools, exact error bodies, rate-limit headers, quota windows."""

from __future__ import annotations

import json

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from keymux.clock import FakeClock
from keymux.emulator import OpenAIEmulator
from keymux.emulator.openai_wire import mask_key

KEY = "sk-test-aaaaaaaaaaaaaaaaaaaaaaaa1234"
MODEL = "gpt-4o-mini"


def client(emu: OpenAIEmulator, key: str = KEY) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=emu.base_url + "/v1", api_key=key, max_retries=0)


async def test_chat(openai_emu: OpenAIEmulator) -> None:
    async with client(openai_emu) as c:
        r = await c.chat.completions.create(model=MODEL, messages=[
            {"role": "system", "content": "be nice"}, {"role": "user", "content": "Hello there"}])
    assert r.object == "chat.completion" and r.model == MODEL
    assert r.choices[0].message.content == "Echo: Hello there"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == len("be niceHello there") // 4
    assert r.usage.completion_tokens == len("Echo: Hello there") // 4
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


async def test_chat_options(openai_emu: OpenAIEmulator) -> None:
    async with client(openai_emu, "sk-free") as c:
        r = await c.chat.completions.create(model=MODEL, n=2, max_tokens=2, messages=[
            {"role": "user", "content": [{"type": "text", "text": "one two three four"}]}])
        assert [ch.message.content for ch in r.choices] == ["Echo: on", "Echo: on"]
        assert {ch.finish_reason for ch in r.choices} == {"length"}
        r = await c.chat.completions.create(model=MODEL, response_format={"type": "json_object"},
                                            messages=[{"role": "user", "content": "hi"}])
        assert json.loads(r.choices[0].message.content) == {"echo": "hi"}


TOOLS = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}},
         {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


async def test_tools(openai_emu: OpenAIEmulator) -> None:
    async with client(openai_emu, "sk-free") as c:
        msgs = [{"role": "user", "content": "find cats"}]
        r = await c.chat.completions.create(model=MODEL, messages=msgs, tools=TOOLS)
        assert r.choices[0].finish_reason == "tool_calls"
        call = r.choices[0].message.tool_calls[0]
        assert call.function.name == "search" and json.loads(call.function.arguments) == {"query": "find cats"}
        assert call.id.startswith("call_") and r.choices[0].message.content is None
        r2 = await c.chat.completions.create(model=MODEL, messages=msgs, tools=TOOLS,
                                             tool_choice={"type": "function", "function": {"name": "lookup"}})
        assert r2.choices[0].message.tool_calls[0].function.name == "lookup"
        r3 = await c.chat.completions.create(model=MODEL, messages=msgs, tools=TOOLS, tool_choice="none")
        assert r3.choices[0].message.content == "Echo: find cats"
        msgs += [r.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": '{"n": 3}'}]
        r4 = await c.chat.completions.create(model=MODEL, messages=msgs, tools=TOOLS)
        assert r4.choices[0].message.content == 'Tool result: {"n": 3}'
        assert r4.choices[0].finish_reason == "stop"


async def test_stream(openai_emu: OpenAIEmulator) -> None:
    async with client(openai_emu, "sk-free") as c:
        stream = await c.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "stream me a few words please"}],
            stream=True, stream_options={"include_usage": True})
        chunks = [ch async for ch in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "Echo: stream me a few words please"
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert all(ch.usage is None for ch in chunks[:-1])


async def test_stream_tool_call(openai_emu: OpenAIEmulator) -> None:
    async with client(openai_emu, "sk-free") as c:
        stream = await c.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "look up the weather in Paris"}],
            tools=TOOLS, stream=True)
        chunks = [ch async for ch in stream]
    args = "".join(tc.function.arguments or "" for ch in chunks for tc in ch.choices[0].delta.tool_calls or ())
    assert json.loads(args) == {"query": "look up the weather in Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_stream_raw_wire(session: aiohttp.ClientSession, openai_emu: OpenAIEmulator) -> None:
    async with session.post(f"{openai_emu.base_url}/v1/chat/completions", headers={"Authorization": "Bearer sk-free"},
                            json={"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "x"}]}) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        raw = await r.text()
    events = raw.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    first = json.loads(events[0][6:])
    assert first["object"] == "chat.completion.chunk" and "usage" not in first


async def test_midstream(openai_emu: OpenAIEmulator) -> None:
    openai_emu.inject("sk-free", "midstream")
    async with client(openai_emu, "sk-free") as c:
        stream = await c.chat.completions.create(model=MODEL, stream=True,
                                                 messages=[{"role": "user", "content": "a b c d e f"}])
        with pytest.raises(openai.APIError):
            async for _ in stream:
                pass


async def test_invalid_and_missing_key(session: aiohttp.ClientSession, openai_emu: OpenAIEmulator) -> None:
    bad = "sk-bad-xxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    async with client(openai_emu, bad) as c:
        with pytest.raises(openai.AuthenticationError) as ei:
            await c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert ei.value.status_code == 401
    assert ei.value.body == {
        "message": f"Incorrect API key provided: {mask_key(bad)}. You can find your API key at "
                   "https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}
    assert mask_key(bad) == "sk-bad-x" + "*" * (len(bad) - 12) + "xxxx"
    async with session.post(f"{openai_emu.base_url}/v1/chat/completions", json={}) as r:
        assert r.status == 401 and (await r.json())["error"]["message"].startswith("You didn't provide an API key.")
    assert openai_emu.count(kind="invalid_key") == 1 and openai_emu.count(kind="missing_key") == 1


async def test_rpm_429_and_headers(openai_emu: OpenAIEmulator, clock: FakeClock) -> None:
    async with client(openai_emu) as c:
        raw = await c.chat.completions.with_raw_response.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
        h = raw.headers
        assert (h["x-ratelimit-limit-requests"], h["x-ratelimit-remaining-requests"]) == ("3", "2")
        assert h["x-ratelimit-reset-requests"] == "1m0s"
        assert h["x-ratelimit-limit-tokens"] and h["x-ratelimit-remaining-tokens"] and h["x-ratelimit-reset-tokens"]
        clock.advance(40)
        await c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
        await c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
        clock.advance(0.5)
        with pytest.raises(openai.RateLimitError) as ei:
            await c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
        e = ei.value
        assert e.body == {
            "message": "Rate limit reached for gpt-4o-mini in organization org-emulator on requests per min (RPM): "
                       "Limit 3, Used 3, Requested 1. Please try again in 19.5s. Visit "
                       "https://platform.openai.com/account/rate-limits to learn more.",
            "type": "requests", "param": None, "code": "rate_limit_exceeded"}
        assert e.response.headers["retry-after"] == "20"
        assert e.response.headers["retry-after-ms"] == "19500"
        assert e.response.headers["x-ratelimit-remaining-requests"] == "0"
        clock.advance(19.5)
        await c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])


async def test_tpm_and_rpd(openai_emu: OpenAIEmulator, clock: FakeClock, to_pacific: object) -> None:
    async with client(openai_emu, "sk-tpm") as c:
        await c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "y" * 160}])
        with pytest.raises(openai.RateLimitError) as ei:
            await c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "y" * 80}])
        assert ei.value.body["type"] == "tokens"
        assert "on tokens per min (TPM): Limit 50, Used 40, Requested 20." in ei.value.body["message"]
    async with client(openai_emu) as c:
        for _ in range(10):
            await c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
            clock.advance(30)
        with pytest.raises(openai.RateLimitError) as ei:
            await c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
        assert ei.value.body["code"] == "insufficient_quota" and ei.value.body["type"] == "insufficient_quota"
        assert ei.value.body["message"].startswith("You exceeded your current quota, please check your plan")
        assert "retry-after" not in ei.value.response.headers
        clock.set(to_pacific(2026, 1, 16, 0, 0, 0))  # type: ignore[operator]
        await c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert openai_emu.count(kind="daily_exhausted") == 1 and openai_emu.count(kind="rate_limited") == 1


async def test_bad_requests(session: aiohttp.ClientSession, openai_emu: OpenAIEmulator) -> None:
    url, h = f"{openai_emu.base_url}/v1/chat/completions", {"Authorization": "Bearer sk-free"}
    async with session.post(url, data=b"{nope", headers=h) as r:
        assert r.status == 400 and (await r.json())["error"]["message"].startswith("We could not parse the JSON body")
    async with session.post(url, json={"model": MODEL}, headers=h) as r:
        assert r.status == 400 and (await r.json())["error"] == {
            "message": "Missing required parameter: 'messages'.", "type": "invalid_request_error",
            "param": "messages", "code": "missing_required_parameter"}
    async with session.post(url, json={"model": "gpt-nope", "messages": []}, headers=h) as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "model_not_found"


async def test_models_and_embeddings(openai_emu: OpenAIEmulator) -> None:
    async with client(openai_emu, "sk-free") as c:
        ids = [m.id async for m in c.models.list()]
        assert ids == openai_emu.models
        assert (await c.models.retrieve("gpt-4o")).id == "gpt-4o"
        e = await c.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
        assert len(e.data) == 2 and len(e.data[0].embedding) == 8
        e2 = await c.embeddings.create(model="text-embedding-3-small", input="a", encoding_format="float")
        assert e2.data[0].embedding == pytest.approx(e.data[0].embedding, rel=1e-6)
