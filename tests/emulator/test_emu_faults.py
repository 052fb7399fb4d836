"""Fault injection and latency, for both emulators."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson
import pytest
from google import genai
from google.genai import types

from keymux.emulator import GeminiEmulator, OpenAIEmulator

pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
MODEL = "gemini-2.5-flash"


async def test_5xx_and_bare429(post: Any, gemini: GeminiEmulator) -> None:
    gemini.inject("k2", "503", "500", "bare429")
    assert await post("k2") == (503, {"error": {
        "code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}})
    status, body = await post("k2")
    assert status == 500 and body["error"]["status"] == "INTERNAL"
    assert body["error"]["message"].startswith("An internal error has occurred")
    assert await post("k2") == (429, {"error": {
        "code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}})
    assert (await post("k2"))[0] == 200
    assert [c.kind for c in gemini.calls] == ["overloaded", "internal", "bare429", "ok"]


async def test_faults_are_per_key_then_any(post: Any, gemini: GeminiEmulator) -> None:
    gemini.inject("k1", "503")
    gemini.inject(None, "500")
    assert (await post("k2"))[0] == 500  # any-key fault
    assert (await post("k2"))[0] == 200
    assert (await post("k1"))[0] == 503
    assert (await post("k1"))[0] == 200
    gemini.inject(None, "503")
    assert (await post("bad"))[0] == 400  # key errors come first and do not consume faults
    assert (await post("k2", model="nope"))[0] == 404
    assert (await post("k2"))[0] == 503


async def test_array429(post: Any, gemini: GeminiEmulator) -> None:
    gemini.inject("k1", "array429")
    status, body = await post("k1")
    assert status == 429 and isinstance(body, list) and len(body) == 1
    err = body[0]["error"]
    assert err["status"] == "RESOURCE_EXHAUSTED"
    assert err["details"][0]["violations"][0]["quotaId"] == "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    assert err["details"][0]["violations"][0]["quotaValue"] == "2"
    assert err["details"][2]["@type"] == "type.googleapis.com/google.rpc.RetryInfo"


async def test_midstream_sse(session: aiohttp.ClientSession, gemini: GeminiEmulator) -> None:
    gemini.inject("k2", "midstream")
    url = f"{gemini.base_url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    async with session.post(url, json={"contents": [{"parts": [{"text": "a b c d e f g h i j"}]}]},
                            headers={"x-goog-api-key": "k2"}) as r:
        assert r.status == 200
        raw = await r.read()
    events = [orjson.loads(e[6:]) for e in raw.split(b"\r\n\r\n") if e]
    assert len(events) == 2
    assert "candidates" in events[0]
    assert events[1]["error"]["code"] == 500 and events[1]["error"]["status"] == "INTERNAL"
    assert gemini.count(kind="midstream", status=200) == 1


async def test_midstream_sdk_raises(gemini: GeminiEmulator) -> None:
    gemini.inject(None, "midstream")
    client = genai.Client(api_key="k2", http_options=types.HttpOptions(base_url=gemini.base_url, api_version="v1beta"))
    got = []
    with pytest.raises(genai.errors.APIError):
        async for chunk in await client.aio.models.generate_content_stream(model=MODEL, contents="a b c d e f g h"):
            got.append(chunk.text)
    assert got and got[0].startswith("Echo:")


async def test_midstream_non_stream_is_500(post: Any, gemini: GeminiEmulator) -> None:
    gemini.inject("k2", "midstream")
    status, body = await post("k2")
    assert status == 500 and body["error"]["status"] == "INTERNAL"


async def test_midstream_waits_when_rate_limited(post: Any, gemini: GeminiEmulator, clock: Any) -> None:
    await post("k1")
    await post("k1")
    gemini.inject("k1", "midstream")
    assert (await post("k1"))[0] == 429  # never started: the fault stays queued
    assert gemini.faults.pending("k1") == 1
    clock.advance(60)
    assert (await post("k1"))[0] == 500


async def test_timeout_hangs_until_client_gives_up(session: aiohttp.ClientSession, gemini: GeminiEmulator) -> None:
    gemini.inject("k2", "timeout")
    url = f"{gemini.base_url}/v1beta/models/{MODEL}:generateContent"
    t0 = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        async with session.post(url, json={"contents": [{"parts": [{"text": "x"}]}]},
                                headers={"x-goog-api-key": "k2"}, timeout=aiohttp.ClientTimeout(total=0.2)):
            pass
    assert time.monotonic() - t0 < 2
    assert gemini.count(kind="timeout", status=0) == 1
    async with session.post(url, json={"contents": [{"parts": [{"text": "x"}]}]},
                            headers={"x-goog-api-key": "k2"}) as r:
        assert r.status == 200


async def test_close_ends_hanging_requests(clock: Any) -> None:
    from keymux.emulator import EmuKey

    emu = GeminiEmulator({"k": EmuKey()}, clock=clock)
    await emu.serve()
    emu.inject(None, "timeout")
    async with aiohttp.ClientSession() as s:
        task = asyncio.ensure_future(s.post(f"{emu.base_url}/v1beta/models/{MODEL}:generateContent",
                                            json={"contents": [{"parts": [{"text": "x"}]}]},
                                            headers={"x-goog-api-key": "k"}))
        for _ in range(100):
            await asyncio.sleep(0.005)
            if emu.count(kind="timeout"):
                break
        t0 = time.monotonic()
        await emu.close()
        assert time.monotonic() - t0 < 2
        with pytest.raises(aiohttp.ClientError):
            await task


async def test_latency(post: Any, gemini: GeminiEmulator) -> None:
    gemini.latency = 0.05
    t0 = time.monotonic()
    assert (await post("k2"))[0] == 200
    assert time.monotonic() - t0 >= 0.05


async def test_openai_faults(session: aiohttp.ClientSession, openai_emu: OpenAIEmulator) -> None:
    key = "sk-test-aaaaaaaaaaaaaaaaaaaaaaaa1234"
    url = f"{openai_emu.base_url}/v1/chat/completions"
    h = {"Authorization": f"Bearer {key}"}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    openai_emu.inject(key, "503", "500", "bare429", "array429")
    expected = {"error": {"message": "The server had an error while processing your request. Sorry about that!",
                          "type": "server_error", "param": None, "code": None}}
    for status in (503, 500):
        async with session.post(url, json=body, headers=h) as r:
            assert r.status == status and await r.json() == expected
    async with session.post(url, json=body, headers=h) as r:
        assert r.status == 429 and "retry-after" not in r.headers
        assert (await r.json())["error"]["code"] == "rate_limit_exceeded"
    async with session.post(url, json=body, headers=h) as r:
        assert r.status == 429 and r.headers["retry-after"] == "20"
    async with session.post(url, json=body, headers=h) as r:
        assert r.status == 200
    assert [c.kind for c in openai_emu.calls] == ["overloaded", "internal", "bare429", "array429", "ok"]
