"""The cache's parts on their own: the LRU bounded in bytes, TTL by the clock, the request key, replay."""

from __future__ import annotations

import orjson

from keymux.cache import LocalCache, ResponseCache
from keymux.cache.replay import assemble, stream_events
from keymux.clock import FakeClock
from keymux.config.schema import CacheSettings
from keymux.exchange import Usage
from keymux.request import Reply, Request, Trace
from keymux.surfaces.openai import cache_controls


def call(body: dict, group: str = "chat", **kw: object) -> Request:
    body, controls = cache_controls(body)
    return Request(surface="openai", operation="chat", group=group, model="chat", body=body, raw=orjson.dumps(body),
                   stream=bool(body.get("stream")), request_id="r", controls=controls, **kw)  # type: ignore[arg-type]


MSG = [{"role": "user", "content": "hi"}]


async def test_local_cache_is_an_lru_bounded_in_bytes() -> None:
    cache = LocalCache(max_bytes=10)
    await cache.set("a", b"12345", 60, 0)
    await cache.set("b", b"12345", 60, 0)
    assert await cache.get("a", 1) == b"12345"  # a is now the most recently used
    await cache.set("c", b"123", 60, 0)
    assert await cache.get("b", 1) is None and await cache.get("a", 1) and await cache.get("c", 1)
    assert cache.size <= 10
    await cache.set("huge", b"x" * 11, 60, 0)  # larger than the whole cache: not kept, nothing evicted
    assert await cache.get("huge", 1) is None and len(cache) == 2


async def test_local_cache_entries_expire_by_the_clock() -> None:
    cache = LocalCache()
    await cache.set("k", b"v", 60, 1000)
    assert await cache.get("k", 1059.9) == b"v"
    assert await cache.get("k", 1060) is None and cache.size == 0


def test_the_key_ignores_user_stream_and_stream_options_but_not_generation_params() -> None:
    cache = ResponseCache(CacheSettings(), LocalCache(), FakeClock())
    base = {"model": "chat", "messages": MSG, "temperature": 0.7}
    key = cache.plan(call(base))
    assert key is not None
    same = [{**base, "user": "u1"}, {**base, "stream": True, "stream_options": {"include_usage": True}},
            dict(reversed(list(base.items())))]
    assert all(cache.plan(call(b)).key == key.key for b in same)  # type: ignore[union-attr]
    other = [{**base, "temperature": 0.2}, {**base, "tools": [{"type": "function", "function": {"name": "f"}}]},
             {**base, "messages": [{"role": "user", "content": "hello"}]}]
    assert all(cache.plan(call(b)).key != key.key for b in other)  # type: ignore[union-attr]
    assert cache.plan(call(base, group="other")).key != key.key  # type: ignore[union-attr]
    assert cache.plan(call(base, metered=False)) is None


def test_per_request_controls_are_taken_out_of_the_body() -> None:
    c = call({"model": "chat", "messages": MSG, "cache": {"no-cache": True, "no-store": True, "ttl": 5}})
    assert "cache" not in c.body and b'"cache"' not in c.raw
    plan = ResponseCache(CacheSettings(ttl=600), LocalCache(), FakeClock()).plan(c)
    assert plan is not None and (plan.read, plan.write, plan.ttl) == (False, False, 5.0)
    header = call({"model": "chat", "messages": MSG}, cache_control="no-store")
    plan = ResponseCache(CacheSettings(), LocalCache(), FakeClock()).plan(header)
    assert plan is not None and (plan.read, plan.write) == (True, False)


async def test_errors_are_never_stored() -> None:
    clock = FakeClock()
    cache = ResponseCache(CacheSettings(), LocalCache(), clock)
    c = call({"model": "chat", "messages": MSG})
    plan = cache.plan(c)
    assert plan is not None
    reply = await cache.keep(plan, c, Trace(c, clock.time()), Reply(400, b'{"error": {}}'))
    assert reply.headers["x-keymux-cache"] == "miss"
    assert await cache.lookup(plan, c) is None


COMPLETION = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "chat",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there",
                                                   "tool_calls": [{"id": "c1", "type": "function",
                                                                   "function": {"name": "f", "arguments": "{}"}}]},
                           "finish_reason": "tool_calls"}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def test_an_openai_body_replays_as_a_stream_and_assembles_back() -> None:
    events = stream_events("openai", orjson.dumps(COMPLETION), include_usage=True)
    assert events[-1] == b"data: [DONE]\n\n"
    assert orjson.loads(assemble("openai", events, None)) == COMPLETION  # type: ignore[arg-type]
    without_usage = stream_events("openai", orjson.dumps(COMPLETION), include_usage=False)
    body = orjson.loads(assemble("openai", without_usage, Usage(3, 2, 0, 5)))  # type: ignore[arg-type]
    assert body["usage"] == COMPLETION["usage"]


def test_a_gemini_stream_assembles_into_one_response() -> None:
    chunks = [{"candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}, "index": 0}]},
              {"candidates": [{"content": {"parts": [{"text": "lo"}], "role": "model"}, "index": 0,
                               "finishReason": "STOP"}], "usageMetadata": {"totalTokenCount": 4}}]
    events = [b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in chunks]
    body = orjson.loads(assemble("gemini", events, None))  # type: ignore[arg-type]
    assert body["candidates"][0]["content"]["parts"] == [{"text": "Hello"}]
    assert body["candidates"][0]["finishReason"] == "STOP" and body["usageMetadata"] == {"totalTokenCount": 4}
    assert assemble("gemini", events[:1], None) is None  # never finished: not a whole answer
    assert stream_events("gemini", b'{"a":1}', False) == [b'data: {"a":1}\r\n\r\n']
