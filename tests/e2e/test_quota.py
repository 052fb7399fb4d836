"""What users of free-tier keys notice: no request a key cannot take, honest waits, no wasted 429s."""

from __future__ import annotations

import asyncio

import pytest
from openai import APIStatusError, RateLimitError

from keymux.emulator import EmuKey
from keymux.pool.limits import next_pacific_midnight

from .conftest import StackFactory, gemini_group

MSG = [{"role": "user", "content": "hi"}]


async def _ask(client, model: str = "chat"):  # type: ignore[no-untyped-def]
    return await client.chat.completions.create(model=model, messages=MSG)


async def test_declared_limits_send_exactly_what_keys_can_take(make_stack: StackFactory) -> None:
    keys = ["k1", "k2", "k3"]
    stack = await make_stack({"model_list": gemini_group("chat", keys, rpm=2)},
                             gemini_keys={k: EmuKey(rpm=2) for k in keys})
    client = stack.openai()
    results = await asyncio.gather(*[_ask(client) for _ in range(10)], return_exceptions=True)
    served = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, RateLimitError)]
    assert len(served) == 6 and len(refused) == 4
    assert stack.gemini.count(endpoint="generateContent") == 6
    assert stack.gemini.count(status=429) == 0
    for err in refused:
        assert 59 <= int(err.response.headers["retry-after"]) <= 60
        assert 59_000 <= int(err.response.headers["retry-after-ms"]) <= 60_000
        assert "all 3 keys for chat are busy" in err.message and "free in 60 s" in err.message


async def test_requests_queue_for_capacity_and_are_served_when_it_returns(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1"], rpm=1),
                              "router_settings": {"queue_timeout": 120}}, gemini_keys={"k1": EmuKey(rpm=1)})
    client = stack.openai()
    await _ask(client)
    queued = asyncio.create_task(_ask(client))
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert not queued.done()
    stack.clock.advance(60.01)
    answer = await asyncio.wait_for(queued, 5)
    assert answer.choices[0].message.content.startswith("Echo: hi")
    assert stack.gemini.count(status=429) == 0


async def test_without_declared_limits_each_key_sees_at_most_one_429(make_stack: StackFactory) -> None:
    keys = ["k1", "k2", "k3"]
    stack = await make_stack({"model_list": gemini_group("chat", keys)}, gemini_keys={k: EmuKey(rpm=2) for k in keys})
    client = stack.openai()
    results = await asyncio.gather(*[_ask(client) for _ in range(10)], return_exceptions=True)
    assert sum(1 for r in results if not isinstance(r, Exception)) == 6
    for k in keys:
        assert stack.gemini.count(key=k, status=429) <= 1
    # The 429's RetryInfo is honoured: after it, the learned rpm keeps keys from being hammered.
    stack.clock.advance(61)
    results = await asyncio.gather(*[_ask(client) for _ in range(10)], return_exceptions=True)
    assert sum(1 for r in results if not isinstance(r, Exception)) == 6
    for k in keys:
        assert stack.gemini.count(key=k, status=429) <= 1


async def test_a_per_day_429_parks_the_key_until_pacific_midnight(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["daily"])}, gemini_keys={"daily": EmuKey(rpd=1)})
    client = stack.openai()
    await _ask(client)
    with pytest.raises(RateLimitError) as err:
        await _ask(client)
    midnight = next_pacific_midnight(stack.clock.time())
    assert int(err.value.response.headers["retry-after"]) == pytest.approx(midnight - stack.clock.time(), abs=1)
    assert stack.gemini.count(kind="daily_exhausted") == 1
    stack.clock.set(midnight - 60)  # Google's RetryInfo said ~1 min: keymux knows better and does not retry
    with pytest.raises(RateLimitError):
        await _ask(client)
    assert stack.gemini.count(kind="daily_exhausted") == 1
    stack.clock.set(midnight - 5)  # within queue_timeout of midnight: the request waits for the key
    waiting = asyncio.create_task(_ask(client))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    stack.clock.set(midnight + 1)
    assert (await asyncio.wait_for(waiting, 5)).choices[0].message.content
    assert stack.gemini.count(kind="daily_exhausted") == 1
    # The 429 taught keymux the key's daily limit (1): the new day's one request is spent, so the
    # next one is refused here instead of being sent to Google.
    view = stack.gateway.pool.store.view(stack.gateway.pool.groups["chat"][0], stack.clock.time())
    assert view.state.value == "exhausted" and "rpd 1 reached" in view.reason
    with pytest.raises(RateLimitError):
        await _ask(client)
    assert stack.gemini.count(kind="daily_exhausted") == 1


async def test_an_invalid_key_is_hit_once_then_never_again(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["revoked", "good"]),
                              "router_settings": {"routing_strategy": "round-robin"}},  # revoked is offered early
                             gemini_keys={"revoked": EmuKey(status="invalid"), "good": EmuKey()})
    client = stack.openai()
    for _ in range(8):
        assert (await _ask(client)).choices[0].message.content
    assert stack.gemini.count(key="revoked") == 1


async def test_keys_of_one_project_share_one_quota(make_stack: StackFactory) -> None:
    doc = {"model_list": gemini_group("chat", ["a", "b"], rpm=2, project="shared")}
    stack = await make_stack(doc, gemini_keys={"a": EmuKey(rpm=2, project="p"), "b": EmuKey(rpm=2, project="p")})
    results = await asyncio.gather(*[_ask(stack.openai()) for _ in range(4)], return_exceptions=True)
    assert sum(1 for r in results if not isinstance(r, Exception)) == 2
    assert stack.gemini.count(status=429) == 0


async def test_server_errors_fail_over_to_another_key(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1", "k2"]),
                              "router_settings": {"routing_strategy": "round-robin"}},
                             gemini_keys={"k1": EmuKey(), "k2": EmuKey()})
    stack.gemini.inject(None, "503")
    raw = await stack.openai().chat.completions.with_raw_response.create(model="chat", messages=MSG)
    assert raw.headers["x-keymux-attempts"] == "2"
    assert stack.gemini.count(status=503) == 1 and stack.gemini.count(status=200) == 1


async def test_when_every_try_fails_the_error_says_what_happened(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1", "k2"]), "router_settings": {"num_retries": 1}},
                             gemini_keys={"k1": EmuKey(), "k2": EmuKey()})
    stack.gemini.inject(None, "503", "503")
    with pytest.raises(APIStatusError) as err:
        await _ask(stack.openai())
    assert err.value.status_code == 503
    assert "2 attempt(s) failed" in err.value.message and "upstream_error" in err.value.message


async def test_fallback_group_serves_when_the_first_has_no_usable_key(make_stack: StackFactory) -> None:
    doc = {"model_list": gemini_group("chat", ["revoked"]) + gemini_group("backup", ["good"], model="gemini-2.5-pro"),
           "router_settings": {"fallbacks": [{"chat": ["backup"]}]}}
    stack = await make_stack(doc, gemini_keys={"revoked": EmuKey(status="leaked"), "good": EmuKey()})
    answer = await _ask(stack.openai())
    assert answer.choices[0].message.content.startswith("Echo: hi")
    assert stack.gemini.count(key="good", model="gemini-2.5-pro") == 1


async def test_request_errors_go_back_unretried(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1", "k2"], model="no-such-model")},
                             gemini_keys={"k1": EmuKey(), "k2": EmuKey()})
    with pytest.raises(APIStatusError) as err:
        await _ask(stack.openai())
    assert err.value.status_code == 404 and "not found" in err.value.message
    assert len(stack.gemini.calls) == 1


async def test_a_hung_upstream_times_out_and_the_request_moves_on(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["slow", "fast"], timeout=0.2),
                              "router_settings": {"routing_strategy": "round-robin"}},
                             gemini_keys={"slow": EmuKey(), "fast": EmuKey()})
    stack.gemini.inject("slow", "timeout")
    client = stack.openai()
    answers = [await _ask(client) for _ in range(2)]  # round-robin: one of them meets the hung key first
    assert all(a.choices[0].message.content for a in answers)
    assert stack.gemini.count(key="slow", kind="timeout") == 1
    assert stack.gemini.count(key="fast", status=200) == 2
