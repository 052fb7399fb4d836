"""google-genai `caches` and `batches` through keymux: created on a key the pool admits, then every call
naming the cache or batch reaches that key (the emulator answers another project's key 403 / 404)."""

from __future__ import annotations

from google.genai import types

from keymux.emulator import EmuKey
from keymux.emulator.gemini_caches_batches import BATCH_TAKES

from .conftest import gemini_group

KEYS = ["ka-1111111111", "kb-2222222222", "kc-3333333333"]


async def _stack(make_stack):
    return await make_stack({"model_list": gemini_group("flash", KEYS)}, gemini_keys={k: EmuKey() for k in KEYS})


async def test_a_cache_then_cached_generates_all_land_on_its_key(make_stack) -> None:
    stack = await _stack(make_stack)
    client = stack.genai()
    cache = await client.aio.caches.create(model="flash", config=types.CreateCachedContentConfig(
        contents=["a long shared document " * 50], display_name="doc", ttl="600s"))
    assert cache.name.startswith("cachedContents/")
    owner = next(k for k in KEYS if cache.name in stack.gemini.stateful.caches_of(k))
    for n in range(5):
        await client.aio.models.generate_content(model="flash", contents="unrelated")
        answer = await client.aio.models.generate_content(
            model="flash", contents=f"question {n}", config=types.GenerateContentConfig(cached_content=cache.name))
        assert answer.text
    assert stack.gemini.count(status=403) == 0
    assert stack.gemini.count(owner, endpoint="generateContent") >= 5
    got = await client.aio.caches.get(name=cache.name)
    assert got.model == "models/gemini-2.5-flash"
    updated = await client.aio.caches.update(name=cache.name, config=types.UpdateCachedContentConfig(ttl="1200s"))
    assert updated.expire_time > got.expire_time
    listed = [c.name async for c in await client.aio.caches.list()]
    assert listed == [cache.name]
    await client.aio.caches.delete(name=cache.name)
    assert not stack.gemini.stateful.caches_of(owner)


async def test_a_batch_is_created_then_polled_on_its_key(make_stack) -> None:
    stack = await _stack(make_stack)
    client = stack.genai()
    job = await client.aio.batches.create(model="flash", src=[
        {"contents": [{"parts": [{"text": "first question"}], "role": "user"}]},
        {"contents": [{"parts": [{"text": "second question"}], "role": "user"}]}])
    assert job.name.startswith("batches/")
    owner = next(k for k in KEYS if job.name in stack.gemini.stateful.batches_of(k))
    assert job.state.name == "JOB_STATE_PENDING"
    stack.clock.advance(BATCH_TAKES)  # the emulator's batches take their time, as Google's do
    for _ in range(4):
        await client.aio.models.generate_content(model="flash", contents="unrelated")
        polled = await client.aio.batches.get(name=job.name)
        assert polled.state.name == "JOB_STATE_SUCCEEDED"
    answers = [r.response.text for r in polled.dest.inlined_responses]
    assert answers == ["batch answer: first question", "batch answer: second question"]
    assert stack.gemini.count(status=404) == 0
    assert stack.gemini.count(owner, endpoint="batches.get") == 4 + 1  # and keymux's watcher's one round
    names = [b.name async for b in await client.aio.batches.list()]
    assert names == [job.name]
    await client.aio.batches.delete(name=job.name)
    assert not stack.gemini.stateful.batches_of(owner)
