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


def anthropic_group(name: str, keys: list[str], model: str = "claude-sonnet-4-5-20250929") -> list[dict]:
    return [{"model_name": name, "litellm_params": {"model": f"anthropic/{model}", "api_key": k}} for k in keys]


@pytest.fixture(params=["gemini", "openai", "anthropic"])
async def stack(request: pytest.FixtureRequest, make_stack: StackFactory):  # type: ignore[no-untyped-def]
    if request.param == "gemini":
        return await make_stack({"model_list": gemini_group("chat", ["k1"])}, gemini_keys={"k1": EmuKey()})
    if request.param == "openai":
        return await make_stack({"model_list": openai_group("chat", ["sk-o1"])}, openai_keys={"sk-o1": EmuKey()})
    return await make_stack({"model_list": anthropic_group("chat", ["sk-ant-1"])},
                            anthropic_keys={"sk-ant-1": EmuKey()})


async def test_create_answers_in_anthropic_shape(stack) -> None:  # type: ignore[no-untyped-def]
    msg = await stack.anthropic().messages.create(model="chat", max_tokens=100, messages=MSG,
                                                  system="be brief", extra_body={"temperature": 0.2})
    assert msg.type == "message" and msg.role == "assistant"
    # Translated answers name the group asked for; an Anthropic key's answer passes through as it came.
    assert msg.model == ("claude-sonnet-4-5-20250929" if stack.config.deployments[0].provider == "anthropic" else "chat")
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
    server_tool = [{"type": "web_search_20250305", "name": "web_search"}]
    if stack.config.deployments[0].provider == "anthropic":  # Anthropic runs its server tools itself
        await stack.anthropic().messages.create(model="chat", max_tokens=10, messages=MSG, tools=server_tool)
        return
    with pytest.raises(anthropic.BadRequestError) as bad:
        await stack.anthropic().messages.create(model="chat", max_tokens=10, messages=MSG, tools=server_tool)
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "tools.0.type" in bad.value.body["error"]["message"]  # type: ignore[index]


@pytest.mark.parametrize("streamed", [False, True])
async def test_thinking_with_signatures_keeps_gemini3_tool_use_working(make_stack: StackFactory,
                                                                       streamed: bool) -> None:
    stack = await make_stack({"model_list": gemini_group("think", ["k1"], model="gemini-3-pro-preview")},
                             gemini_keys={"k1": EmuKey()})
    client = stack.anthropic()
    ask = [{"role": "user", "content": "Oslo"}]
    args = {"model": "think", "max_tokens": 4000, "tools": [WEATHER],
            "thinking": {"type": "enabled", "budget_tokens": 2048}}
    if streamed:
        deltas = []
        async with client.messages.stream(messages=ask, **args) as s:
            async for event in s:
                if event.type == "content_block_delta":
                    deltas.append(event.delta.type)
            first = await s.get_final_message()
        assert {"thinking_delta", "input_json_delta"} <= set(deltas)
    else:
        first = await client.messages.create(messages=ask, **args)
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    assert first.content[0].thinking == "Thinking about it..."
    # Gemini 3 refuses the next turn unless the function call's thoughtSignature comes back: it does.
    use = first.content[1]
    second = await client.messages.create(messages=[
        *ask, {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "snow"}]}], **args)
    assert second.stop_reason == "end_turn" and "snow" in second.content[-1].text
    stripped = [{**b.model_dump(), "id": use.id.partition("__thought__")[0]} if b.type == "tool_use" else b.model_dump()
                for b in first.content]
    with pytest.raises(anthropic.BadRequestError) as refused:
        await client.messages.create(messages=[*ask, {"role": "assistant", "content": stripped}, {
            "role": "user", "content": [{"type": "tool_result", "tool_use_id": stripped[1]["id"], "content": "x"}]}],
            **args)
    assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


async def test_rate_limit_error_with_retry_after(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1"], rpm=1),
                              "router_settings": {"queue_timeout": 0}}, gemini_keys={"k1": EmuKey()})
    client = stack.anthropic()
    await client.messages.create(model="chat", max_tokens=10, messages=MSG)
    with pytest.raises(anthropic.RateLimitError) as limited:
        await client.messages.create(model="chat", max_tokens=10, messages=MSG)
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert int(limited.value.response.headers["retry-after"]) > 0


async def test_unsupported_field_is_a_400_or_dropped(make_stack: StackFactory) -> None:
    doc = {"model_list": gemini_group("chat", ["k1"])}
    stack = await make_stack(doc, gemini_keys={"k1": EmuKey()})
    with pytest.raises(anthropic.BadRequestError) as bad:
        await stack.anthropic().messages.create(model="chat", max_tokens=10, messages=MSG,
                                                container="c-1")
    assert "container" in bad.value.body["error"]["message"]  # type: ignore[index]
    dropping = await make_stack({**doc, "litellm_settings": {"drop_params": True}}, gemini_keys={"k1": EmuKey()})
    msg = await dropping.anthropic().messages.create(model="chat", max_tokens=10, messages=MSG, container="c-1")
    assert msg.content[0].text.startswith("Echo")


async def test_models_list_in_anthropic_shape(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1"]) + gemini_group("fast", ["k1"])},
                             gemini_keys={"k1": EmuKey()})
    page = await stack.anthropic().models.list()
    assert [m.id for m in page.data] == ["chat", "fast"] and page.data[0].type == "model"
    assert {m.id for m in (await stack.openai().models.list()).data} == {"chat", "fast"}  # OpenAI shape still


@pytest.mark.parametrize("where", ["router_settings", "aliases"])
async def test_claude_model_ids_route_to_a_gemini_group_by_config(make_stack: StackFactory, where: str) -> None:
    aliases = {"claude-sonnet-4-5-20250929": "chat", "claude-haiku-4-5": {"model": "chat"}}
    doc = {"model_list": gemini_group("chat", ["k1"]),
           **({"router_settings": {"model_group_alias": aliases}} if where == "router_settings" else {"aliases": aliases})}
    stack = await make_stack(doc, gemini_keys={"k1": EmuKey()})
    for model in ("claude-sonnet-4-5-20250929", "claude-haiku-4-5"):
        msg = await stack.anthropic().messages.create(model=model, max_tokens=50, messages=MSG)
        assert msg.model == model and msg.content[0].text == "Echo: hello there"
    assert stack.gemini.count("k1", 200) == 2
    with pytest.raises(anthropic.NotFoundError):
        await stack.anthropic().messages.create(model="claude-opus-4-1", max_tokens=50, messages=MSG)


def test_an_alias_to_a_missing_group_is_refused_with_its_path() -> None:
    from keymux.config.fields import ConfigError
    from keymux.config.load import parse_config

    with pytest.raises(ConfigError) as err:
        parse_config({"model_list": gemini_group("chat", ["k1"]), "aliases": {"claude-x": "nope"}}, env={})
    assert "aliases.claude-x" in str(err.value) and "nope" in str(err.value)
