"""What a pinned request does when its key cannot take it: waits for that key when it is cooling, and is
refused with that key's reason when it is out for the day; a request naming two keys' resources is a 400."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from keymux.emulator import EmuKey
from keymux.fingerprint import fingerprint
from keymux.pool.store import Park, State

from .conftest import gemini_group

KEYS = ["ka-1111111111", "kb-2222222222"]
HEADERS = {"x-goog-api-key": "sk-master", "content-type": "application/json"}


async def _post(http: aiohttp.ClientSession, url: str, body: dict) -> tuple[int, dict, dict]:
    async with http.post(url, data=orjson.dumps(body), headers=HEADERS) as resp:
        return resp.status, orjson.loads(await resp.read()), dict(resp.headers)


async def _owned(stack, rid: str) -> str:
    return next(k for k in KEYS if rid in stack.gemini.interactions.owned_by(k))


async def test_a_follow_up_waits_for_its_cooling_key_and_never_goes_elsewhere(make_stack) -> None:
    stack = await make_stack({"model_list": gemini_group("flash", KEYS),
                              "router_settings": {"queue_timeout": 120}},
                             gemini_keys={k: EmuKey() for k in KEYS})
    url = f"{stack.base}/v1beta/interactions"
    async with aiohttp.ClientSession() as http:
        status, first, _ = await _post(http, url, {"model": "flash", "input": "one"})
        assert status == 200
        owner = await _owned(stack, first["id"])
        gw = stack.gateway
        until = stack.clock.time() + 30
        for d in gw.pool.deployments_of(fingerprint(owner)):
            await gw.pool.store.park_scope(d.scope, Park(until, State.COOLING, "per-minute quota"))
        follow = asyncio.ensure_future(_post(http, url, {"model": "flash", "input": "two",
                                                          "previous_interaction_id": first["id"]}))
        for _ in range(500):  # real time only for the request to reach keymux; quota time is the FakeClock's
            if gw.pool.queue_depth():
                break
            await asyncio.sleep(0.01)
        assert gw.pool.queue_depth() == 1 and not follow.done()  # queued for its own key, though the other is free
        stack.clock.advance(31)
        status, turn, headers = await asyncio.wait_for(follow, 10)
        assert status == 200 and turn["id"] in stack.gemini.interactions.owned_by(owner)
        assert headers["x-keymux-key"] == fingerprint(owner)


async def test_a_follow_up_for_an_exhausted_key_is_refused_with_its_reason(make_stack) -> None:
    stack = await make_stack({"model_list": gemini_group("flash", KEYS)}, gemini_keys={k: EmuKey() for k in KEYS})
    url = f"{stack.base}/v1beta/interactions"
    async with aiohttp.ClientSession() as http:
        _, first, _ = await _post(http, url, {"model": "flash", "input": "one"})
        owner = fingerprint(await _owned(stack, first["id"]))
        await stack.gateway.pool.disable_key(owner, "key reported as leaked")
        status, err, _ = await _post(http, url, {"model": "flash", "input": "two",
                                                  "previous_interaction_id": first["id"]})
    assert status == 503
    message = err["error"]["message"]
    assert f"interactions/{first['id']} belongs to key {owner}" in message and "leaked" in message
    assert stack.gemini.count(status=404) == 0


async def test_naming_resources_of_two_keys_is_a_400(make_stack) -> None:
    stack = await make_stack({"model_list": gemini_group("flash", KEYS, rpm=1)},
                             gemini_keys={k: EmuKey() for k in KEYS})
    url = f"{stack.base}/v1beta/interactions"
    async with aiohttp.ClientSession() as http:
        _, one, _ = await _post(http, url, {"model": "flash", "input": "one"})
        _, two, _ = await _post(http, url, {"model": "flash", "input": "two"})  # rpm=1: the other key
        assert await _owned(stack, one["id"]) != await _owned(stack, two["id"])
        stack.clock.advance(61)
        status, err, _ = await _post(http, url, {
            "model": "flash", "previous_interaction_id": one["id"],
            "input": [{"type": "text", "text": "hi"},
                      {"type": "document", "uri": "https://x/v1beta/files/abc"}]})
        assert status == 200  # an unknown file pins nothing
        gw = stack.gateway
        await gw.pool.pin("files/abc", fingerprint(await _owned(stack, two["id"])), 3600)
        stack.clock.advance(61)
        status, err, _ = await _post(http, url, {
            "model": "flash", "previous_interaction_id": one["id"],
            "input": [{"type": "text", "text": "hi"}, {"type": "document", "uri": "https://x/v1beta/files/abc"}]})
    assert status == 400 and err["error"]["status"] == "INVALID_ARGUMENT"
    assert "different keys" in err["error"]["message"]


async def test_unknown_gemini_routes_answer_in_googles_status_shape(make_stack) -> None:
    stack = await make_stack({"model_list": gemini_group("flash", KEYS)}, gemini_keys={k: EmuKey() for k in KEYS})
    async with aiohttp.ClientSession() as http:
        for method, path in (("GET", "/v1beta/nothing"), ("POST", "/upload/v1beta/nothing"),
                             ("PUT", "/v1beta/interactions/x")):
            async with http.request(method, f"{stack.base}{path}", headers=HEADERS) as resp:
                body = orjson.loads(await resp.read())
                assert resp.status in (404, 405) and body["error"]["code"] == resp.status
                assert "status" in body["error"]
