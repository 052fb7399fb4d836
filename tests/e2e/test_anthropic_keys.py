"""Pooled Anthropic keys: the passthrough for Anthropic clients, the pivot for OpenAI and Gemini clients, and
what keymux learns from Anthropic's answers (rate-limit headers, 529, 401/403, credit balance)."""

from __future__ import annotations

import anthropic
import pytest
from google.genai import types

from keymux.emulator import EmuKey

from .conftest import Stack, StackFactory

MSG = [{"role": "user", "content": "hello there"}]
UPSTREAM = "claude-sonnet-4-5-20250929"


def group(name: str, keys: list[str], **params: object) -> list[dict]:
    return [{"model_name": name, "litellm_params": {"model": f"anthropic/{UPSTREAM}", "api_key": k, **params}}
            for k in keys]


async def _pool(make_stack: StackFactory, keys: dict[str, EmuKey], **doc: object) -> Stack:
    return await make_stack({"model_list": group("claude", list(keys)), **doc}, anthropic_keys=keys)


def _view(stack: Stack, i: int):  # type: ignore[no-untyped-def]
    return stack.gateway.pool.store.view(stack.gateway.pool.groups["claude"][i], stack.clock.time())


async def test_passthrough_keeps_cache_control_and_reports_cache_reads(make_stack: StackFactory) -> None:
    stack = await _pool(make_stack, {"sk-ant-1": EmuKey()})
    system = [{"type": "text", "text": "You are a very long, cached system prompt. " * 20,
               "cache_control": {"type": "ephemeral"}}]
    client = stack.anthropic()
    first = await client.messages.create(model="claude", max_tokens=50, system=system, messages=MSG)
    second = await client.messages.create(model="claude", max_tokens=50, system=system, messages=MSG)
    assert first.usage.cache_creation_input_tokens > 0 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.content[0].text == "Echo: hello there"


async def test_passthrough_stream_keeps_anthropics_events(make_stack: StackFactory) -> None:
    stack = await _pool(make_stack, {"sk-ant-1": EmuKey()})
    async with stack.anthropic().messages.stream(model="claude", max_tokens=4000, messages=MSG,
                                                 thinking={"type": "enabled", "budget_tokens": 1024}) as s:
        kinds = [event.type async for event in s]
        final = await s.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].signature.startswith("EmuSig")  # the upstream's signature, untouched
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"


async def test_openai_and_gemini_clients_reach_anthropic_keys_through_the_pivot(make_stack: StackFactory) -> None:
    stack = await _pool(make_stack, {"sk-ant-1": EmuKey()})
    chat = await stack.openai().chat.completions.create(model="claude", messages=MSG, max_tokens=50)
    assert chat.choices[0].message.content == "Echo: hello there" and chat.choices[0].finish_reason == "stop"
    assert chat.usage and chat.usage.prompt_tokens > 0
    stream = await stack.openai().chat.completions.create(model="claude", messages=MSG, stream=True)
    assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == "Echo: hello there"
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"query": {"type": "string"}}}}}]
    called = await stack.openai().chat.completions.create(model="claude", messages=MSG, tools=tools)
    call = called.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "lookup" and called.choices[0].finish_reason == "tool_calls"
    answered = await stack.openai().chat.completions.create(model="claude", tools=tools, messages=[
        *MSG, called.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "42"}])
    assert answered.choices[0].message.content == "Tool result: 42"
    gem = await stack.genai().aio.models.generate_content(
        model="claude", contents="hi gemini", config=types.GenerateContentConfig(max_output_tokens=50))
    assert gem.text == "Echo: hi gemini"


async def test_429_parks_the_key_until_retry_after_and_learns_the_limit(make_stack: StackFactory) -> None:
    stack = await _pool(make_stack, {"sk-ant-1": EmuKey(), "sk-ant-2": EmuKey()})
    stack.anthropic_emu.inject("sk-ant-1", "array429")
    stack.anthropic_emu.inject("sk-ant-2", "array429")
    with pytest.raises(anthropic.RateLimitError) as limited:
        await stack.anthropic().messages.create(model="claude", max_tokens=10, messages=MSG)
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert 18 <= int(limited.value.response.headers["retry-after"]) <= 21
    for i in (0, 1):
        assert _view(stack, i).state.value == "cooling"
    stack.clock.advance(21)
    msg = await stack.anthropic().messages.create(model="claude", max_tokens=10, messages=MSG)
    assert msg.content[0].text == "Echo: hello there"


async def test_529_is_retried_on_another_key_without_blaming_the_first(make_stack: StackFactory) -> None:
    stack = await _pool(make_stack, {"sk-ant-1": EmuKey(), "sk-ant-2": EmuKey()},
                        router_settings={"allowed_fails": 1})
    stack.anthropic_emu.inject(None, "503")
    msg = await stack.anthropic().messages.create(model="claude", max_tokens=10, messages=MSG)
    assert msg.content[0].text == "Echo: hello there"
    assert stack.anthropic_emu.count(status=529) == 1
    assert {_view(stack, i).state.value for i in (0, 1)} == {"ready"}  # allowed_fails 1, yet nobody cools
    for _ in range(3):
        stack.anthropic_emu.inject(None, "503")
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        await stack.anthropic().messages.create(model="claude", max_tokens=10, messages=MSG)
    assert overloaded.value.status_code == 529
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


@pytest.mark.parametrize(("status", "code"), [("invalid", 401), ("suspended", 403)])
async def test_rejected_keys_are_disabled(make_stack: StackFactory, status: str, code: int) -> None:
    stack = await _pool(make_stack, {"sk-ant-bad": EmuKey(status=status), "sk-ant-good": EmuKey()},
                        router_settings={"routing_strategy": "simple-shuffle"})
    for _ in range(40):  # the shuffle picks the bad key first by chance: on average within two requests
        msg = await stack.anthropic().messages.create(model="claude", max_tokens=10, messages=MSG)
        assert msg.content[0].text == "Echo: hello there"
        if stack.anthropic_emu.count("sk-ant-bad", code):
            break
    for _ in range(4):  # once refused, never asked again
        await stack.anthropic().messages.create(model="claude", max_tokens=10, messages=MSG)
    assert stack.anthropic_emu.count("sk-ant-bad", code) == 1
    assert _view(stack, 0).state.value == "disabled"


async def test_credit_balance_too_low_parks_the_key_as_billing(make_stack: StackFactory) -> None:
    stack = await _pool(make_stack, {"sk-ant-1": EmuKey(), "sk-ant-2": EmuKey()})
    stack.anthropic_emu.inject("sk-ant-1", "prepay")
    stack.anthropic_emu.inject("sk-ant-2", "prepay")
    with pytest.raises(anthropic.RateLimitError):
        await stack.anthropic().messages.create(model="claude", max_tokens=10, messages=MSG)
    for i in (0, 1):
        view = _view(stack, i)
        assert view.state.value == "exhausted" and "credit balance" in view.reason
    assert stack.anthropic_emu.count(kind="credit_balance") == 2


async def test_a_litellm_config_with_anthropic_deployments_loads_them(make_stack: StackFactory) -> None:
    stack = await _pool(make_stack, {"sk-ant-1": EmuKey()})
    assert [d.provider for d in stack.config.deployments] == ["anthropic"]
    assert not [w for w in stack.config.warnings if "anthropic" in w]
    assert stack.gateway.pool.groups["claude"][0].fingerprint.startswith("ant:")


async def test_a_request_on_an_anthropic_key_is_priced_in_the_ledger_and_shown_by_the_admin_api(
        make_stack: StackFactory) -> None:
    stack = await _pool(make_stack, {"sk-ant-1": EmuKey()})
    answer = await stack.anthropic().messages.create(model="claude", max_tokens=50, messages=MSG)
    await stack.gateway.ledger.flush()
    [row] = await stack.gateway.ledger.recent(5, 1e18)
    usage = answer.usage
    expected = (usage.input_tokens * 3.00 + usage.output_tokens * 15.00) / 1e6  # Sonnet 4.5 list price
    assert row["key"].startswith("ant:") and row["upstream_model"] == UPSTREAM
    assert row["cost"] == pytest.approx(expected) and row["cost"] > 0  # Anthropic keys are paid by default
    [key] = [k for k in (await stack.admin_json("/admin/keys"))["data"]]
    assert key["key"] == row["key"] and key["provider"] == "anthropic" and key["today"]["requests"] == 1
    assert key["today"]["cost"] == pytest.approx(expected)
