"""Gemini 3 thought signatures across turns, for an OpenAI client over Gemini keys (docs/pivot.md: the
signature rides inside the tool-call id). The Gemini emulator, like Google, answers 400 to a follow-up
whose function call has lost its signature."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import BadRequestError

from keymux.emulator import EmuKey
from keymux.translate.tool_calls import split_tool_call_id

from .conftest import StackFactory, gemini_group

TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "look a thing up",
                                           "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]
ASK = [{"role": "user", "content": "find keymux"}]


def follow_up(call_id: str, args: str) -> list[dict[str, Any]]:
    return ASK + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function", "function": {"name": "lookup", "arguments": args}}]},
        {"role": "tool", "tool_call_id": call_id, "content": json.dumps({"hits": 3})}]


async def test_a_streamed_tool_call_keeps_its_signature_for_the_next_turn(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("agent", ["k1"], model="gemini-3.5-flash")},
                             gemini_keys={"k1": EmuKey()})
    client = stack.openai()
    stream = await client.chat.completions.create(model="agent", messages=ASK, tools=TOOLS, stream=True)
    calls = [tc async for chunk in stream if chunk.choices for tc in chunk.choices[0].delta.tool_calls or ()]
    assert len(calls) == 1 and calls[0].function.name == "lookup"
    assert split_tool_call_id(calls[0].id)[1]  # the signature Gemini gave is inside the id
    second = await client.chat.completions.create(
        model="agent", messages=follow_up(calls[0].id, calls[0].function.arguments), tools=TOOLS)
    assert second.choices[0].message.content.startswith("Tool result:")  # Gemini 3 took the history


async def test_a_follow_up_that_lost_the_signature_is_refused_like_google_does(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("agent", ["k1", "k2"], model="gemini-3-pro-preview")},
                             gemini_keys={"k1": EmuKey(), "k2": EmuKey()})
    client = stack.openai()
    first = await client.chat.completions.create(model="agent", messages=ASK, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    bare, signature = split_tool_call_id(call.id)
    assert signature
    with pytest.raises(BadRequestError) as err:  # a client that rebuilt its history with its own ids
        await client.chat.completions.create(model="agent", messages=follow_up(bare, call.function.arguments),
                                             tools=TOOLS)
    assert err.value.status_code == 400
    assert "thought_signature" in err.value.message
    assert stack.gemini.count(status=400) == 1  # the client's fault: not retried on the other key
    older = await make_stack({"model_list": gemini_group("old", ["k1"], model="gemini-2.5-flash")},
                             gemini_keys={"k1": EmuKey()})
    answer = await older.openai().chat.completions.create(
        model="old", messages=follow_up("call_plain", json.dumps({"query": "x"})), tools=TOOLS)
    assert answer.choices[0].message.content.startswith("Tool result:")  # before Gemini 3: no signature needed
