"""The Anthropic Messages surface through the official anthropic SDK, with Gemini and OpenAI keys behind it."""

from __future__ import annotations

import base64

import anthropic
import pytest

from keymux.emulator import EmuKey

from .conftest import StackFactory, gemini_group

MSG = [{"role": "user", "content": "hello there"}]
WEATHER = {"name": "get_weather", "description": "Weather of a city",
           "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()


def openai_group(name: str, keys: list[str], model: str = "gpt-4o-mini") -> list[dict]:
    return [{"model_name": name, "litellm_params": {"model": f"openai/{model}", "api_key": k}} for k in keys]


@pytest.fixture(params=["gemini", "openai"])
async def stack(request: pytest.FixtureRequest, make_stack: StackFactory):  # type: ignore[no-untyped-def]
    if request.param == "gemini":
        return await make_stack({"model_list": gemini_group("chat", ["k1"])}, gemini_keys={"k1": EmuKey()})
    return await make_stack({"model_list": openai_group("chat", ["sk-o1"])}, openai_keys={"sk-o1": EmuKey()})


async def test_create_answers_in_anthropic_shape(stack) -> None:  # type: ignore[no-untyped-def]
    msg = await stack.anthropic().messages.create(model="chat", max_tokens=100, messages=MSG,
                                                  system="be brief", extra_body={"temperature": 0.2})
    assert msg.type == "message" and msg.role == "assistant" and msg.model == "chat"
    assert [b.type for b in msg.content] == ["text"]
    assert "hello there" in msg.content[0].text
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0


async def test_stream_event_sequence(stack) -> None:  # type: ignore[no-untyped-def]
    kinds = []
    async with stack.anthropic().messages.stream(model="chat", max_tokens=100, messages=MSG) as s:
        async for event in s:
            kinds.append(event.type)
        final = await s.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "content_block_stop" in kinds and "message_delta" in kinds
    assert "hello there" in final.content[0].text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


@pytest.mark.parametrize("streamed", [False, True])
async def test_tools_across_two_turns(stack, streamed: bool) -> None:  # type: ignore[no-untyped-def]
    client = stack.anthropic()
    ask = [{"role": "user", "content": "Paris"}]
    if streamed:
        async with client.messages.stream(model="chat", max_tokens=200, messages=ask, tools=[WEATHER],
                                          tool_choice={"type": "any"}) as s:
            first = await s.get_final_message()
    else:
        first = await client.messages.create(model="chat", max_tokens=200, messages=ask, tools=[WEATHER],
                                             tool_choice={"type": "any"})
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather" and use.input == {"query": "Paris"} and use.id
    second = await client.messages.create(model="chat", max_tokens=200, tools=[WEATHER], messages=[
        *ask, {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 21 C"}]}])
    assert second.stop_reason == "end_turn"
    assert "sunny, 21 C" in second.content[0].text


async def test_image_in_base64(stack) -> None:  # type: ignore[no-untyped-def]
    msg = await stack.anthropic().messages.create(model="chat", max_tokens=100, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "what is this"}]}])
    assert "what is this" in msg.content[0].text
    assert msg.usage.input_tokens > 0


async def test_count_tokens(stack) -> None:  # type: ignore[no-untyped-def]
    small = await stack.anthropic().messages.count_tokens(model="chat", messages=MSG)
    big = await stack.anthropic().messages.count_tokens(model="chat", messages=[
        {"role": "user", "content": "hello there " * 100}], system="be brief")
    assert 0 < small.input_tokens < big.input_tokens


async def test_errors_in_anthropic_shape(stack) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(anthropic.AuthenticationError) as auth:
        await stack.anthropic("sk-wrong").messages.create(model="chat", max_tokens=10, messages=MSG)
    assert auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as missing:
        await stack.anthropic().messages.create(model="nope", max_tokens=10, messages=MSG)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        await stack.anthropic().messages.create(model="chat", max_tokens=10, messages=MSG,
                                                tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "tools.0.type" in bad.value.body["error"]["message"]  # type: ignore[index]
