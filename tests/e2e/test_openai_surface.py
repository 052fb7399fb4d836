"""The OpenAI surface through the official openai SDK, with Gemini keys behind it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openai import APIError, APIStatusError

from keymux.config.load import load_config
from keymux.emulator import EmuKey

from .conftest import StackFactory, gemini_group

MSG = [{"role": "user", "content": "hello there"}]


async def test_the_users_litellm_config_runs_unchanged(make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    path = Path(__file__).parent.parent / "config" / "litellm_config.yaml"
    doc = yaml.safe_load(path.read_text())
    keys = {f"GEMINI_{g}_KEY_{i}": f"AIzaSy-{g.lower()}-{i}" for g in ("CHAT", "IMAGE", "FIX") for i in (1, 2, 3)}
    stack = await make_stack(doc, gemini_keys={v: EmuKey() for v in keys.values()} | {
        "AIzaSyEnvVarsSectionKey1aaaaaaaaaaaaaaaa": EmuKey()}, env=keys, master_key=None)
    master = doc["general_settings"]["master_key"]
    assert load_config(path, env={**keys}).master_key == master  # the file itself loads as is
    client = stack.openai(master)
    models = {m.id for m in (await client.models.list()).data}
    assert models == {"gemini-pro-chat", "gemini-image", "gemini-fix"}
    for group in models:
        answer = await client.chat.completions.create(model=group, messages=MSG)
        assert answer.choices[0].message.content or answer.choices[0].message.model_extra.get("images")
    with pytest.raises(APIStatusError) as err:
        await stack.openai("sk-wrong").chat.completions.create(model="gemini-fix", messages=MSG)
    assert err.value.status_code == 401


async def test_chat_answer_and_usage(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1"])}, gemini_keys={"k1": EmuKey()})
    answer = await stack.openai().chat.completions.create(
        model="chat", messages=[{"role": "system", "content": "be brief"}, *MSG], max_tokens=50, temperature=0.2)
    assert answer.model == "chat" and answer.object == "chat.completion"
    assert answer.choices[0].message.content == "Echo: hello there"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage and answer.usage.prompt_tokens > 0 and answer.usage.total_tokens >= answer.usage.prompt_tokens


async def test_streaming_with_usage(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1"])}, gemini_keys={"k1": EmuKey()})
    stream = await stack.openai().chat.completions.create(model="chat", messages=MSG, stream=True,
                                                          stream_options={"include_usage": True})
    text, finish, usage, chunks = "", None, None, 0
    async for chunk in stream:
        chunks += 1
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert chunks >= 3 and text == "Echo: hello there" and finish == "stop"
    assert usage is not None and usage.total_tokens > 0
    assert stack.gemini.count(endpoint="streamGenerateContent") == 1


async def test_stream_fails_over_before_its_first_byte(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1", "k2"])},
                             gemini_keys={"k1": EmuKey(), "k2": EmuKey()})
    stack.gemini.inject(None, "503")
    stream = await stack.openai().chat.completions.create(model="chat", messages=MSG, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Echo: hello there"
    assert stack.gemini.count(status=503) == 1


async def test_a_stream_broken_after_its_first_byte_ends_with_an_error_not_duplicated_text(
        make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1", "k2"])},
                             gemini_keys={"k1": EmuKey(), "k2": EmuKey()})
    stack.gemini.inject(None, "midstream")
    stream = await stack.openai().chat.completions.create(model="chat", messages=MSG, stream=True)
    received = []
    with pytest.raises(APIError):
        async for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert received  # the first event reached the client...
    assert stack.gemini.count(endpoint="streamGenerateContent") == 1  # ...so no second key was tried


async def test_generated_images_come_back_as_message_images(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("image", ["k1"], model="gemini-2.5-flash-image")},
                             gemini_keys={"k1": EmuKey()})
    answer = await stack.openai().chat.completions.create(
        model="image", messages=[{"role": "user", "content": "a red square"}], modalities=["text", "image"])
    message = answer.choices[0].message
    images = message.model_extra["images"]
    assert message.content == "Here is your image."
    assert images[0]["type"] == "image_url" and images[0]["image_url"]["url"].startswith("data:image/png;base64,")
    stream = await stack.openai().chat.completions.create(
        model="image", messages=[{"role": "user", "content": "a red square"}], stream=True)
    streamed = [c.choices[0].delta.model_extra.get("images") async for c in stream if c.choices]
    assert any(streamed)


async def test_tool_calls_round_trip_keeps_gemini_thought_signatures(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("agent", ["k1"], model="gemini-3-pro-preview")},
                             gemini_keys={"k1": EmuKey()})
    assert stack.gemini.require_thought_signatures  # Gemini 3 rejects tool history without them
    tools = [{"type": "function", "function": {"name": "lookup", "description": "look a thing up",
                                               "parameters": {"type": "object", "properties": {"query": {"type": "string"}},
                                                              "additionalProperties": False}}}]
    client = stack.openai()
    messages: list[dict] = [{"role": "user", "content": "find keymux"}]
    first = await client.chat.completions.create(model="agent", messages=messages, tools=tools, tool_choice="auto")
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls" and call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"query": "find keymux"}
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"hits": 3})}]
    second = await client.chat.completions.create(model="agent", messages=messages, tools=tools)
    assert second.choices[0].message.content.startswith("Tool result:")


async def test_json_schema_response_format(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1"])}, gemini_keys={"k1": EmuKey()})
    answer = await stack.openai().chat.completions.create(model="chat", messages=MSG, response_format={
        "type": "json_schema", "json_schema": {"name": "echo", "schema": {"type": "object", "properties": {
            "echo": {"type": "string"}}}}})
    assert json.loads(answer.choices[0].message.content)["echo"]


async def test_unsupported_params_are_a_clear_400_unless_drop_params(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1"])}, gemini_keys={"k1": EmuKey()})
    with pytest.raises(APIStatusError) as err:
        await stack.openai().chat.completions.create(model="chat", messages=MSG, logit_bias={"1": 5})
    assert err.value.status_code == 400 and "logit_bias" in err.value.message and "drop_params" in err.value.message
    assert stack.gemini.calls == []  # refused before any quota was spent
    dropping = await make_stack({"model_list": gemini_group("chat", ["k1"]), "litellm_settings": {"drop_params": True}},
                                gemini_keys={"k1": EmuKey()})
    answer = await dropping.openai().chat.completions.create(model="chat", messages=MSG, logit_bias={"1": 5})
    assert answer.choices[0].message.content == "Echo: hello there"


async def test_openai_compatible_upstream_passes_through(make_stack: StackFactory) -> None:
    doc = {"model_list": [{"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": k}}
                          for k in ("sk-one", "sk-two")]}
    stack = await make_stack(doc, openai_keys={"sk-one": EmuKey(rpm=1), "sk-two": EmuKey(rpm=1)})
    client = stack.openai()
    for _ in range(2):
        answer = await client.chat.completions.create(model="gpt", messages=MSG)
        assert answer.choices[0].message.content == "Echo: hello there"
    # Each answer said x-ratelimit-remaining-requests: 0, so keymux parks both keys until the reset
    # the upstream announced, and refuses the third request itself instead of collecting a 429.
    with pytest.raises(APIStatusError) as err:
        await client.chat.completions.create(model="gpt", messages=MSG, stream=True)
    assert err.value.status_code == 429 and 59 <= int(err.value.response.headers["retry-after"]) <= 61
    assert "no requests left in the upstream window" in err.value.message
    assert stack.openai_emu.count(status=429) == 0
