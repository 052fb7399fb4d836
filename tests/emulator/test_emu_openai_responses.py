"""OpenAI emulator's /v1/responses: answers and named event streams the openai SDK's own types accept, OpenAI's
errors for what it refuses, quota like chat."""

from __future__ import annotations

import aiohttp
import openai
import orjson
import pytest
from openai import AsyncOpenAI
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from keymux.emulator import EmuKey, OpenAIEmulator
from keymux.translate.sse import SSEDecoder

from .test_emu_openai import KEY, MODEL, client

EVENT = TypeAdapter(ResponseStreamEvent)
WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


async def _raw(emu: OpenAIEmulator, body: dict) -> tuple[int, bytes, str]:
    async with aiohttp.ClientSession() as s, s.post(f"{emu.base_url}/v1/responses", json=body,
                                                    headers={"authorization": f"Bearer {KEY}"}) as r:
        return r.status, await r.read(), r.headers.get("content-type", "")


async def test_answer_validates_and_echoes(openai_emu: OpenAIEmulator) -> None:
    status, raw, _ = await _raw(openai_emu, {"model": MODEL, "input": "Hello there", "reasoning": {"effort": "low"},
                                             "include": ["reasoning.encrypted_content"]})
    assert status == 200
    doc = Response.model_validate(orjson.loads(raw))
    assert doc.output_text == "Echo: Hello there" and [i.type for i in doc.output] == ["reasoning", "message"]
    assert doc.output[0].encrypted_content and doc.usage and doc.usage.output_tokens_details.reasoning_tokens > 0


@pytest.mark.parametrize("tools", [[], [WEATHER]], ids=["text", "call"])
async def test_stream_events_validate_in_order(openai_emu: OpenAIEmulator, tools: list) -> None:
    status, raw, ctype = await _raw(openai_emu, {"model": MODEL, "input": "Hello there", "stream": True,
                                                 "tools": tools})
    assert status == 200 and ctype.startswith("text/event-stream")
    events = [orjson.loads(p) for p in SSEDecoder().feed(raw)]
    for event in events:
        EVENT.validate_python(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    assert raw.startswith(b"event: response.created\ndata: ")
    kinds = {e["type"] for e in events}
    assert ("response.function_call_arguments.delta" in kinds) == bool(tools)


async def test_refusals_in_openai_shape(openai_emu: OpenAIEmulator) -> None:
    async with client(openai_emu) as c:
        with pytest.raises(openai.BadRequestError) as err:
            await c.responses.create(model=MODEL, input="x", previous_response_id="resp_nope")
        assert err.value.code == "previous_response_not_found"
        with pytest.raises(openai.BadRequestError) as err:
            await c.responses.create(model=MODEL, input="x", tools=[{"type": "web_search"}])
        assert err.value.param == "tools[0]"


async def test_quota_applies(openai_emu: OpenAIEmulator) -> None:
    openai_emu.keys["sk-limited"] = EmuKey(rpm=1)
    c = AsyncOpenAI(base_url=openai_emu.base_url + "/v1", api_key="sk-limited", max_retries=0)
    await c.responses.create(model=MODEL, input="one")
    with pytest.raises(openai.RateLimitError):
        await c.responses.create(model=MODEL, input="two")
