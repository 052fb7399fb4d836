"""An Interactions stream reaches the client framed as Google frames it: each `data:` event under its
`event: <event_type>` line, the data bytes untouched."""

from __future__ import annotations

import aiohttp
import orjson

from keymux.emulator import EmuKey
from keymux.translate.sse import SSEDecoder

from .conftest import StackFactory, gemini_group


async def test_each_event_keeps_its_name(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("flash", ["k1"])}, gemini_keys={"k1": EmuKey()})
    headers = {"x-goog-api-key": "sk-master", "content-type": "application/json"}
    async with aiohttp.ClientSession() as http, http.post(
            f"{stack.base}/v1beta/interactions", headers=headers,
            data=orjson.dumps({"model": "flash", "input": "name every event", "stream": True})) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        raw = await resp.read()
    frames = [f for f in raw.replace(b"\r\n", b"\n").split(b"\n\n") if f]
    names = [f.split(b"\n")[0].removeprefix(b"event: ").decode() for f in frames]
    datas = [orjson.loads(f.split(b"\n")[1].removeprefix(b"data: ")) for f in frames]
    assert names == [d["event_type"] for d in datas]
    assert names[0] == "interaction.created" and names[-1] == "interaction.completed" and "step.delta" in names
    decoder = SSEDecoder()
    assert [orjson.loads(p) for p in decoder.feed(raw) + decoder.flush()] == datas
