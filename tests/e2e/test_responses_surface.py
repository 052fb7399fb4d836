"""POST /v1/responses through the official openai SDK, over Gemini keys (translated through the pivot) and over
OpenAI keys (passed through), on the emulators."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from openai import APIStatusError

from keymux.emulator import EmuKey

from .conftest import Stack, StackFactory, gemini_group

GEMINI3 = "gemini-3-flash-preview"  # its emulator refuses function-call history without thought signatures
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}
SCHEMA = {"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"],
          "additionalProperties": False}


async def gemini_stack(make_stack: StackFactory, model: str = "gemini-2.5-flash") -> Stack:
    return await make_stack({"model_list": gemini_group("chat", ["k1", "k2"], model=model)},
                            gemini_keys={"k1": EmuKey(), "k2": EmuKey()})


async def openai_stack(make_stack: StackFactory) -> Stack:
    doc = {"model_list": [{"model_name": "chat", "litellm_params": {"model": "openai/gpt-5-mini", "api_key": k}}
                          for k in ("sk-o1", "sk-o2")]}
    return await make_stack(doc, openai_keys={"sk-o1": EmuKey(), "sk-o2": EmuKey()})


STACKS = {"gemini": gemini_stack, "openai": openai_stack}


@pytest.fixture(params=["gemini", "openai"])
async def stack(request: pytest.FixtureRequest, make_stack: StackFactory) -> Stack:
    return await STACKS[request.param](make_stack)


async def test_plain_answer_with_usage(stack: Stack) -> None:
    answer = await stack.openai().responses.create(model="chat", input="hello there", instructions="be brief")
    assert answer.object == "response" and answer.status == "completed"
    assert answer.id.startswith("resp_")
    assert answer.output_text == "Echo: hello there"
    assert [item.type for item in answer.output] == ["message"]
    assert answer.usage is not None and answer.usage.input_tokens > 0 and answer.usage.output_tokens > 0
    assert answer.usage.total_tokens == answer.usage.input_tokens + answer.usage.output_tokens


async def test_input_items_and_developer_messages(stack: Stack) -> None:
    answer = await stack.openai().responses.create(model="chat", input=[
        {"role": "developer", "content": "answer briefly"},
        {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Echo: first"}]},
        {"role": "user", "content": "second question"},
    ])
    assert answer.output_text == "Echo: second question"


async def test_stream_event_sequence(stack: Stack) -> None:
    stream = await stack.openai().responses.create(model="chat", input="hello there", stream=True)
    events = [event async for event in stream]
    types = [e.type for e in events]
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert types[3] == "response.content_part.added"
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Echo: hello there"
    final = events[-1].response
    assert final.output_text == "Echo: hello there" and final.usage and final.usage.output_tokens > 0


async def test_stream_helper_assembles_the_final_response(stack: Stack) -> None:
    async with stack.openai().responses.stream(model="chat", input="hello there") as stream:
        texts = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(texts) == final.output_text == "Echo: hello there"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_tools_across_two_turns(stack: Stack, stream: bool) -> None:
    client = stack.openai()
    history: list[Any] = [{"role": "user", "content": "weather in Paris"}]
    if stream:
        async with client.responses.stream(model="chat", input=history, tools=[WEATHER]) as s:
            args = "".join([e.delta async for e in s if e.type == "response.function_call_arguments.delta"])
            first = await s.get_final_response()
        assert json.loads(args) == {"query": "weather in Paris"}
    else:
        first = await client.responses.create(model="chat", input=history, tools=[WEATHER])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"query": "weather in Paris"}
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"temp": 21}'})
    second = await client.responses.create(model="chat", input=history, tools=[WEATHER])
    assert second.output_text.startswith("Tool result: ") and "21" in second.output_text


async def test_thought_signatures_survive_the_round_trip_on_gemini_3(make_stack: StackFactory) -> None:
    stack = await gemini_stack(make_stack, model=GEMINI3)
    client = stack.openai()
    history: list[Any] = [{"role": "user", "content": "weather in Rome"}]
    first = await client.responses.create(model="chat", input=history, tools=[WEATHER])
    call = next(item for item in first.output if item.type == "function_call")
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "sunny"})
    second = await client.responses.create(model="chat", input=history, tools=[WEATHER])
    assert second.output_text.startswith("Tool result: ") and "sunny" in second.output_text
    # Without the signature Gemini 3 refuses the turn: the client gets the upstream's 400, in OpenAI's shape.
    history[1]["call_id"] = "call_plain"
    history[2]["call_id"] = "call_plain"
    with pytest.raises(APIStatusError) as err:
        await client.responses.create(model="chat", input=history, tools=[WEATHER])
    assert err.value.status_code == 400 and "thought_signature" in err.value.message


async def test_json_schema(stack: Stack) -> None:
    answer = await stack.openai().responses.create(
        model="chat", input="make json", text={"format": {"type": "json_schema", "name": "echo", "schema": SCHEMA,
                                                          "strict": True}})
    assert json.loads(answer.output_text) == {"echo": "make json"}


async def test_reasoning(stack: Stack) -> None:
    answer = await stack.openai().responses.create(model="chat", input="think first",
                                                   reasoning={"effort": "low", "summary": "auto"},
                                                   include=["reasoning.encrypted_content"])
    kinds = [item.type for item in answer.output]
    assert kinds == ["reasoning", "message"]
    reasoning = answer.output[0]
    assert reasoning.summary and reasoning.summary[0].text
    assert answer.usage and answer.usage.output_tokens_details.reasoning_tokens > 0
    assert answer.output_text == "Echo: think first"


async def test_max_output_tokens_is_an_incomplete_answer(stack: Stack) -> None:
    answer = await stack.openai().responses.create(model="chat", input="a long question " * 20, max_output_tokens=2)
    assert answer.status == "incomplete"
    assert answer.incomplete_details and answer.incomplete_details.reason == "max_output_tokens"


async def test_built_in_tools_and_stored_responses_are_refused_clearly(make_stack: StackFactory) -> None:
    stack = await gemini_stack(make_stack)
    client = stack.openai()
    with pytest.raises(APIStatusError) as err:
        await client.responses.create(model="chat", input="hi", tools=[{"type": "web_search"}])
    assert err.value.status_code == 400 and "built-in tools" in err.value.message
    assert err.value.body["param"] == "tools[0].type"
    with pytest.raises(APIStatusError) as err:
        await client.responses.create(model="chat", input="hi", previous_response_id="resp_123")
    assert err.value.status_code == 400 and "stateless" in err.value.message
    assert err.value.body["param"] == "previous_response_id"
    for call in (client.responses.retrieve, client.responses.delete):
        with pytest.raises(APIStatusError) as err:
            await call("resp_123")
        assert err.value.status_code == 404 and "keeps no responses" in err.value.message
    with pytest.raises(APIStatusError) as err:
        await client.responses.create(model="chat", input=[{"type": "local_shell_call", "id": "x"}])
    assert err.value.status_code == 400 and err.value.body["param"] == "input[0].type"
    assert not stack.gemini.stats  # refused before any upstream call


async def test_without_the_v1_prefix_and_gateway_auth(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{stack.base}/responses", json={"model": "chat", "input": "hi"},
                                headers={"authorization": "Bearer sk-master"}) as resp:
            assert resp.status == 200
            assert (await resp.json())["output"][0]["content"][0]["text"] == "Echo: hi"
        async with session.post(f"{stack.base}/v1/responses", json={"model": "chat", "input": "hi"},
                                headers={"authorization": "Bearer sk-wrong"}) as resp:
            assert resp.status == 401 and (await resp.json())["error"]["type"] == "authentication_error"


async def test_a_stream_broken_after_its_first_byte_ends_in_error_and_response_failed(
        make_stack: StackFactory) -> None:
    stack = await gemini_stack(make_stack)
    stack.gemini.inject(None, "midstream")  # one good event, a pause, then the error
    stream = await stack.openai().responses.create(model="chat", input="hello there", stream=True)
    events = [event async for event in stream]
    types = [e.type for e in events]
    assert types[0] == "response.created" and "response.output_text.delta" in types
    assert types[-2:] == ["error", "response.failed"] and "response.completed" not in types
    assert events[-1].response.status == "failed" and events[-1].response.error.message
    assert stack.gemini.count(endpoint="streamGenerateContent") == 1  # text reached the client: no second key


async def test_an_openai_stream_that_fails_in_its_first_read_is_retried_on_another_key(
        make_stack: StackFactory) -> None:
    stack = await openai_stack(make_stack)
    stack.openai_emu.inject(None, "midstream")  # three events and an `error` event, all in one read
    stream = await stack.openai().responses.create(model="chat", input="hello there", stream=True)
    types = [event.type async for event in stream]
    assert types[0] == "response.created" and types[-1] == "response.completed" and "error" not in types
    assert [c.kind for c in stack.openai_emu.calls] == ["midstream", "ok"]
    assert len({c.key for c in stack.openai_emu.calls}) == 2


async def test_upstream_errors_before_the_first_byte_come_back_in_openai_shape(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1"], model=GEMINI3)}, gemini_keys={"k1": EmuKey()})
    with pytest.raises(APIStatusError) as err:
        await stack.openai().responses.create(model="chat", tools=[WEATHER], input=[
            {"role": "user", "content": "weather?"},
            {"type": "function_call", "call_id": "call_x", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_x", "output": "1"}])
    assert err.value.status_code == 400
    assert err.value.body["type"] == "invalid_request_error" and "thought_signature" in err.value.body["message"]


async def test_metrics_count_responses_by_surface(stack: Stack) -> None:
    answer = await stack.openai().responses.create(model="chat", input="hello there")
    assert answer.usage is not None
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{stack.base}/metrics", headers={"authorization": "Bearer sk-master"}) as resp:
            text = await resp.text()
    lines = [line for line in text.splitlines() if line.startswith("keymux_requests_total{")]
    assert any('surface="openai_responses"' in line and 'status="200"' in line and line.endswith(" 1")
               for line in lines), lines


@pytest.mark.parametrize("fault", ["503", "array429"])
async def test_a_failing_key_is_retried_on_another(stack: Stack, fault: str) -> None:
    emulator = stack.gemini if stack.config.deployments[0].provider == "gemini" else stack.openai_emu
    emulator.inject(None, fault)
    answer = await stack.openai().responses.create(model="chat", input="hello there")
    assert answer.output_text == "Echo: hello there"
    assert [c.status for c in emulator.calls] == [503 if fault == "503" else 429, 200]
    assert len({c.key for c in emulator.calls}) == 2
