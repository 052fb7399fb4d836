"""Per-deployment settings that change what the relay does: `max_retries` and `stream_timeout` (with `timeout`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from openai import APIStatusError

from keymux.emulator import EmuKey
from keymux.fingerprint import fingerprint

from .conftest import Stack, StackFactory, gemini_group

MSG = [{"role": "user", "content": "hi"}]
KEYS = {k: EmuKey() for k in ("k1", "k2", "k3")}
BOUND = 10.0  # real seconds: a request that waits for the router's 300 s timeout fails the test instead


def ordered(**per_key: dict[str, Any]) -> list[dict[str, Any]]:
    """Group "chat" with k1, k2, k3 tried in that order, each with its own extra litellm_params."""
    return [e for i, k in enumerate(("k1", "k2", "k3"), 1)
            for e in gemini_group("chat", [k], order=i, **per_key.get(k, {}))]


async def ask(stack: Stack, stream: bool = False) -> str:
    """The answer's text; its `x-keymux-key` / `x-keymux-attempts` headers go to `stack.last`."""
    client = stack.openai().chat.completions.with_raw_response

    async def read() -> str:
        raw = await client.create(model="chat", messages=MSG, stream=stream)
        stack.last = raw.headers  # type: ignore[attr-defined]
        answer = raw.parse()
        if not stream:
            return answer.choices[0].message.content or ""
        return "".join([c.choices[0].delta.content or "" async for c in answer if c.choices])

    return await asyncio.wait_for(read(), BOUND)


def answered_by(stack: Stack) -> tuple[str, str]:
    return stack.last["x-keymux-key"], stack.last["x-keymux-attempts"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("max_retries", "tried"), [(None, ["k1", "k2", "k3"]), (1, ["k1", "k2"]), (0, ["k1"])])
async def test_max_retries_bounds_the_attempts_after_a_failure_on_that_deployment(
        make_stack: StackFactory, max_retries: int | None, tried: list[str]) -> None:
    k1 = {} if max_retries is None else {"max_retries": max_retries}
    stack = await make_stack({"model_list": ordered(k1=k1), "router_settings": {"num_retries": 2}},
                             gemini_keys=KEYS)
    for k in KEYS:
        stack.gemini.inject(k, "503")
    with pytest.raises(APIStatusError) as err:
        await ask(stack)
    assert err.value.status_code == 503
    assert [c.key for c in stack.gemini.calls] == tried


async def test_max_retries_of_a_later_deployment_bounds_what_follows_it(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": ordered(k2={"max_retries": 0}), "router_settings": {"num_retries": 2}},
                             gemini_keys=KEYS)
    stack.gemini.inject("k1", "503")
    stack.gemini.inject("k2", "503")
    with pytest.raises(APIStatusError):
        await ask(stack)
    assert [c.key for c in stack.gemini.calls] == ["k1", "k2"]  # k3 would have answered


async def test_max_retries_does_not_stop_fallbacks_and_never_raises_num_retries(make_stack: StackFactory) -> None:
    doc = {"model_list": ordered(k1={"max_retries": 5}) + gemini_group("spare", ["k3"]),
           "router_settings": {"num_retries": 0, "fallbacks": [{"chat": ["spare"]}]}}
    stack = await make_stack(doc, gemini_keys=KEYS)
    stack.gemini.inject("k1", "503")
    assert await ask(stack)
    assert [c.key for c in stack.gemini.calls] == ["k1", "k3"]  # num_retries 0: k2 not tried; then the fallback


async def test_stream_timeout_is_the_silence_a_streamed_attempt_may_take(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": ordered(k1={"stream_timeout": 0.2, "timeout": 120})}, gemini_keys=KEYS)
    stack.gemini.inject("k1", "timeout")
    assert await ask(stack, stream=True)
    assert stack.gemini.count(key="k1", kind="timeout") == 1 and answered_by(stack) == (fingerprint("k2"), "2")


async def test_a_stream_without_stream_timeout_uses_the_deployments_timeout(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": ordered(k1={"timeout": 0.2})}, gemini_keys=KEYS)
    stack.gemini.inject("k1", "timeout")
    assert await ask(stack, stream=True)
    assert stack.gemini.count(key="k1", kind="timeout") == 1 and answered_by(stack) == (fingerprint("k2"), "2")


async def test_stream_timeout_does_not_shorten_a_whole_answer(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": ordered(k1={"stream_timeout": 0.05})}, gemini_keys=KEYS)
    stack.gemini.latency = 0.2  # longer than k1's stream_timeout, far below its (router) timeout
    assert await ask(stack)
    assert answered_by(stack) == (fingerprint("k1"), "1")
    assert await ask(stack, stream=True)  # the same wait on a stream is too long a silence
    assert answered_by(stack) == (fingerprint("k2"), "2")
