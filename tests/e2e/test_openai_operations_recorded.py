"""Each new OpenAI endpoint is its own operation in the ledger, the admin usage API and /metrics."""

from __future__ import annotations

from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from keymux.emulator import EmuKey

from .conftest import StackFactory, gemini_group


async def _get(stack: Any, path: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(stack.base + path,
                                                   headers={"Authorization": "Bearer sk-master"}) as r:
        assert r.status == 200
        return await r.json() if r.content_type == "application/json" else await r.text()


async def test_rows_usage_and_metrics_carry_the_operation(make_stack: StackFactory) -> None:
    groups = (gemini_group("chat", ["k1"]) + gemini_group("embed", ["k1"], model="gemini-embedding-001")
              + gemini_group("draw", ["k1"], model="imagen-4.0-fast-generate-001")
              + gemini_group("voice", ["k1"], model="gemini-2.5-flash-preview-tts"))
    stack = await make_stack({"model_list": groups}, gemini_keys={"k1": EmuKey()})
    client = stack.openai()
    await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
    await client.embeddings.create(model="embed", input=["a", "b"])
    await client.images.generate(model="draw", prompt="a cat")
    await client.audio.speech.create(model="voice", voice="alloy", input="hi", response_format="wav")
    await stack.gateway.ledger.flush()
    page = await _get(stack, "/admin/requests?limit=10")
    assert sorted(r["operation"] for r in page["data"]) == ["chat", "embeddings", "images", "speech"]
    usage = await _get(stack, "/admin/usage?by=operation&since=1h")
    assert {r["operation"]: r["requests"] for r in usage["data"]} == {"chat": 1, "embeddings": 1, "images": 1,
                                                                      "speech": 1}
    text = await _get(stack, "/metrics")
    samples = [s for f in text_string_to_metric_families(text) if f.name == "keymux_requests"
               for s in f.samples if s.name == "keymux_requests_total"]
    assert {(s.labels["group"], s.labels["operation"]) for s in samples} == {
        ("chat", "chat"), ("embed", "embeddings"), ("draw", "images"), ("voice", "speech")}
