"""A long-running operation through keymux: Veo's REST `:predictLongRunning` (google-genai 3.x sends it only
in Vertex mode, so it is called as Google's REST docs do), then google-genai's `operations.get`: started on a
key the pool admits, every poll on that key while other traffic rotates the pool; the merged list;
Google-shaped 404s where Google has no such operation path."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from google.genai import types

from keymux.emulator import EmuKey
from keymux.emulator.gemini_operations import VIDEO_TAKES
from keymux.fingerprint import fingerprint

from .conftest import Stack, StackFactory, gemini_group

KEYS = ["ka-1111111111", "kb-2222222222", "kc-3333333333"]
VEO = "veo-3.1-generate-preview"


async def _stack(make_stack: StackFactory) -> Stack:
    return await make_stack({"model_list": gemini_group("flash", KEYS) + gemini_group("video", KEYS, model=VEO)},
                            gemini_keys={k: EmuKey() for k in KEYS})


async def _call(stack: Stack, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    headers = {"x-goog-api-key": "sk-master", "content-type": "application/json"}
    async with aiohttp.ClientSession() as http, http.request(
            method, f"{stack.base}{path}", headers=headers, data=None if body is None else orjson.dumps(body)) as r:
        return r.status, orjson.loads(await r.read())


async def test_a_video_operation_is_polled_on_its_key_until_done(make_stack: StackFactory) -> None:
    stack = await _stack(make_stack)
    client = stack.genai()
    status, started = await _call(stack, "POST", "/v1beta/models/video:predictLongRunning",
                                  {"instances": [{"prompt": "a cat on a skateboard"}], "parameters": {}})
    assert status == 200 and started["name"].startswith(f"models/{VEO}/operations/") and "done" not in started
    operation = types.GenerateVideosOperation(name=started["name"])
    [owner] = [k for k in KEYS if operation.name in stack.gemini.operations.owned_by(k)]
    for _ in range(4):
        await client.aio.models.generate_content(model="flash", contents="unrelated")
        operation = await client.aio.operations.get(operation)
        assert not operation.done
    stack.clock.advance(VIDEO_TAKES)
    operation = await client.aio.operations.get(operation)
    assert operation.done
    assert operation.response.generated_videos[0].video.uri.endswith(":download?alt=media")
    assert stack.gemini.count(status=404) == 0
    assert stack.gemini.count(owner, endpoint="operations.get") == 5
    status, listed = await _call(stack, "GET", f"/v1beta/models/{VEO}/operations")
    assert status == 200
    assert [(o["name"], o["done"], o["keymuxKey"]) for o in listed["operations"]] == [
        (operation.name, True, fingerprint(owner))]


async def test_paths_google_does_not_have_answer_its_404(make_stack: StackFactory) -> None:
    stack = await _stack(make_stack)
    for method, path in (("GET", "/v1beta/operations"), ("GET", "/v1beta/operations/abc"),
                         ("POST", "/v1beta/operations/abc:cancel"), ("DELETE", "/v1beta/operations/abc"),
                         ("DELETE", f"/v1beta/models/{VEO}/operations/abc"),
                         ("POST", f"/v1beta/models/{VEO}/operations/abc:cancel")):
        status, err = await _call(stack, method, path, {} if method == "POST" else None)
        assert status == 404, path
        assert err["error"]["status"] == "NOT_FOUND" and "batches/{id}" in err["error"]["message"]
    status, err = await _call(stack, "GET", f"/v1beta/models/{VEO}/operations/never-made-here")
    assert status == 404 and err["error"]["status"] == "NOT_FOUND"
    assert "not known here" in err["error"]["message"]
    status, err = await _call(stack, "POST", "/v1beta/models/video:predictLongRunning", {"instances": []})
    assert status == 400 and err["error"]["status"] == "INVALID_ARGUMENT"
    assert stack.gemini.count(status=404) == 0
