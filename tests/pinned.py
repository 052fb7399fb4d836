"""Traffic that pins resources to keys and makes one request wait for its pinned key (admin and UI tests)."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp
import orjson
from google import genai
from google.genai import types

from keymux.fingerprint import fingerprint
from keymux.pool.store import Park, State

WAIT = 30.0  # seconds the owner of the interaction is cooling


async def pin_some(base: str, master: str, model: str) -> genai.Client:
    """A file, a cache and a batch, each on the key the pool admitted."""
    client = genai.Client(api_key=master, http_options=types.HttpOptions(base_url=base, api_version="v1beta"))
    await client.aio.files.upload(file=io.BytesIO(b"x" * 10), config={"mime_type": "text/plain"})
    await client.aio.caches.create(model=model, config=types.CreateCachedContentConfig(
        contents=["a long shared document " * 50], ttl="600s"))
    await client.aio.batches.create(model=model, src=[{"contents": [{"parts": [{"text": "q"}], "role": "user"}]}])
    return client


async def wait_for_pinned(base: str, master: str, model: str, stack: Any) -> tuple[str, str]:
    """A first interaction turn, its key cooling for WAIT s, then a follow-up that waits for it:
    (the owner's fingerprint, the follow-up's answer id)."""
    headers = {"x-goog-api-key": master, "content-type": "application/json"}
    url = f"{base}/v1beta/interactions"
    gw = stack.gateway
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=orjson.dumps({"model": model, "input": "one"}), headers=headers) as r:
            first = orjson.loads(await r.read())
        owner = r.headers["x-keymux-key"]
        for d in gw.pool.deployments_of(owner):
            await gw.pool.store.park_scope(d.scope, Park(stack.clock.time() + WAIT, State.COOLING, "per-minute quota"))

        async def follow() -> Any:
            body = {"model": model, "input": "two", "previous_interaction_id": first["id"]}
            async with http.post(url, data=orjson.dumps(body), headers=headers) as resp:
                return orjson.loads(await resp.read())

        task = asyncio.ensure_future(follow())
        for _ in range(500):  # real time only for the request to reach keymux's queue
            if gw.pool.queue_depth():
                break
            await asyncio.sleep(0.01)
        assert gw.pool.queue_depth() == 1
        stack.clock.advance(WAIT + 1)
        turn = await asyncio.wait_for(task, 10)
    assert owner == fingerprint(next(k for k in stack.gemini.keys if turn["id"] in
                                     stack.gemini.interactions.owned_by(k)))
    return owner, turn["id"]
