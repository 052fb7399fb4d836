"""Gemini success answers: deterministic content, usage, tools, thoughts, images, streams, SDK."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import aiohttp
import orjson
import pytest
from google import genai
from google.genai import types

from keymux.emulator import EmuKey, GeminiEmulator

MODEL = "gemini-2.5-flash"
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


def user(text: str, **extra: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}


def sdk(emu: GeminiEmulator, key: str = "k2") -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=emu.base_url, api_version="v1beta"))


async def test_echo(post: Any) -> None:
    status, body = await post("k2", user("What is the capital of France?"))
    assert status == 200
    text = "Echo: What is the capital of France?"
    assert body["candidates"] == [{"content": {"parts": [{"text": text}], "role": "model"},
                                   "finishReason": "STOP", "index": 0}]
    assert body["usageMetadata"] == {
        "promptTokenCount": 7, "candidatesTokenCount": len(text) // 4, "totalTokenCount": 7 + len(text) // 4,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 7}]}
    assert body["modelVersion"] == MODEL and body["responseId"]


async def test_prompt_counts_system_and_history(post: Any) -> None:
    body = {"systemInstruction": {"parts": [{"text": "s" * 40}]},
            "contents": [{"role": "user", "parts": [{"text": "a" * 40}]},
                         {"role": "model", "parts": [{"text": "b" * 40}]},
                         {"role": "user", "parts": [{"text": "last one"},
                                                    {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}]}
    status, out = await post("k2", body)
    assert out["usageMetadata"]["promptTokenCount"] == 128 // 4 + 258
    assert out["usageMetadata"]["promptTokensDetails"] == [{"modality": "TEXT", "tokenCount": 32},
                                                           {"modality": "IMAGE", "tokenCount": 258}]
    assert out["candidates"][0]["content"]["parts"][0]["text"] == "Echo: last one"


async def test_max_tokens(post: Any) -> None:
    status, body = await post("k2", user("one two three four five six seven eight",
                                         generationConfig={"maxOutputTokens": 3}))
    c = body["candidates"][0]
    assert c["finishReason"] == "MAX_TOKENS"
    assert c["content"]["parts"][0]["text"] == "Echo: one tw"
    assert body["usageMetadata"]["candidatesTokenCount"] == 3


async def test_thoughts(post: Any) -> None:
    status, body = await post("k2", user("hmm", generationConfig={"thinkingConfig": {"includeThoughts": True}}))
    parts = body["candidates"][0]["content"]["parts"]
    assert parts[0] == {"text": "Thinking about it...", "thought": True}
    assert parts[1] == {"text": "Echo: hmm"}
    u = body["usageMetadata"]
    assert u["thoughtsTokenCount"] == 5
    assert u["totalTokenCount"] == u["promptTokenCount"] + u["candidatesTokenCount"] + 5


TOOLS = [{"functionDeclarations": [
    {"name": "search", "description": "web search", "parameters": {"type": "object"}},
    {"name": "lookup", "description": "lookup", "parameters": {"type": "object"}}]}]


async def test_function_call_and_result(post: Any) -> None:
    status, body = await post("k2", user("find cats", tools=TOOLS))
    part = body["candidates"][0]["content"]["parts"][0]
    assert part["functionCall"] == {"name": "search", "args": {"query": "find cats"}}
    assert base64.b64decode(part["thoughtSignature"])
    assert body["candidates"][0]["finishReason"] == "STOP"
    status, body = await post("k2", user("find cats", tools=TOOLS, toolConfig={
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}}))
    assert body["candidates"][0]["content"]["parts"][0]["functionCall"]["name"] == "lookup"
    status, body = await post("k2", user("find cats", tools=TOOLS, toolConfig={
        "functionCallingConfig": {"mode": "NONE"}}))
    assert body["candidates"][0]["content"]["parts"][0] == {"text": "Echo: find cats"}
    history = {"tools": TOOLS, "contents": [
        {"role": "user", "parts": [{"text": "find cats"}]},
        {"role": "model", "parts": [part]},
        {"role": "user", "parts": [{"functionResponse": {"name": "search", "response": {"hits": [1, 2]}}}]}]}
    status, body = await post("k2", history)
    assert body["candidates"][0]["content"]["parts"] == [{"text": 'Tool result: {"hits":[1,2]}'}]


def _png_ok(data: bytes) -> bool:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return False
    pos = 8
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag, payload = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(tag + payload) != crc:
            return False
        if tag == b"IDAT":
            zlib.decompress(payload)
        pos += 12 + n
    return tag == b"IEND"


async def test_image(post: Any) -> None:
    for model, cfg in (("gemini-2.5-flash-image", {}),
                       (MODEL, {"generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}})):
        status, body = await post("k2", user("a cat", **cfg), model=model)
        parts = body["candidates"][0]["content"]["parts"]
        assert parts[0] == {"text": "Here is your image."}
        assert parts[1]["inlineData"]["mimeType"] == "image/png"
        assert _png_ok(base64.b64decode(parts[1]["inlineData"]["data"]))
        assert {"modality": "IMAGE", "tokenCount": 1290} in body["usageMetadata"]["candidatesTokensDetails"]
    status, body = await post("k2", user("a cat", generationConfig={"responseModalities": ["TEXT"]}),
                              model="gemini-2.5-flash-image")
    assert body["candidates"][0]["content"]["parts"] == [{"text": "Echo: a cat"}]


async def test_candidates_and_json(post: Any) -> None:
    status, body = await post("k2", user("hi", generationConfig={"candidateCount": 3}))
    assert [c["index"] for c in body["candidates"]] == [0, 1, 2]
    assert body["usageMetadata"]["candidatesTokenCount"] == 3 * (len("Echo: hi") // 4)
    status, body = await post("k2", user('say "x"', generationConfig={"responseMimeType": "application/json"}))
    assert orjson.loads(body["candidates"][0]["content"]["parts"][0]["text"]) == {"echo": 'say "x"'}


async def test_sse_wire_format(session: aiohttp.ClientSession, gemini: GeminiEmulator) -> None:
    url = f"{gemini.base_url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    body = user("the quick brown fox jumps over the lazy dog",
                generationConfig={"thinkingConfig": {"includeThoughts": True}})
    async with session.post(url, json=body, headers={"x-goog-api-key": "k2"}) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        raw = await r.read()
    events = raw.split(b"\r\n\r\n")
    assert events[-1] == b"" and b"[DONE]" not in raw
    chunks = [orjson.loads(e[len(b"data: "):]) for e in events[:-1]]
    assert all(e.startswith(b"data: ") for e in events[:-1])
    assert chunks[0]["candidates"][0]["content"]["parts"] == [{"text": "Thinking about it...", "thought": True}]
    texts = [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks[1:]]
    assert len(texts) == 3 and "".join(texts) == "Echo: the quick brown fox jumps over the lazy dog"
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "candidatesTokenCount" in chunks[-1]["usageMetadata"]
    assert "candidatesTokenCount" not in chunks[0]["usageMetadata"]
    assert len({c["responseId"] for c in chunks}) == 1
    assert gemini.count(kind="ok", stream=True) == 1


async def test_stream_without_sse_is_json_array(session: aiohttp.ClientSession, gemini: GeminiEmulator) -> None:
    url = f"{gemini.base_url}/v1beta/models/{MODEL}:streamGenerateContent"
    async with session.post(url, json=user("one two three four five"), headers={"x-goog-api-key": "k2"}) as r:
        arr = orjson.loads(await r.read())
    assert isinstance(arr, list) and len(arr) == 3
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in arr) == "Echo: one two three four five"


async def test_sdk_generate_and_stream(gemini: GeminiEmulator) -> None:
    client = sdk(gemini)
    resp = await client.aio.models.generate_content(model=MODEL, contents="Hello SDK world")
    assert resp.text == "Echo: Hello SDK world"
    assert resp.usage_metadata.prompt_token_count == 3
    pieces = []
    async for chunk in await client.aio.models.generate_content_stream(
        model=MODEL, contents="streaming through the emulator works fine"
    ):
        pieces.append(chunk.text)
    assert len(pieces) == 3
    assert "".join(pieces) == "Echo: streaming through the emulator works fine"
    assert chunk.candidates[0].finish_reason == types.FinishReason.STOP
    tokens = await client.aio.models.count_tokens(model=MODEL, contents="count these tokens please")
    assert tokens.total_tokens == len("count these tokens please") // 4
    assert gemini.count(key="k2", kind="ok") == 3


async def test_sdk_function_call_and_errors(gemini: GeminiEmulator) -> None:
    client = sdk(gemini)
    decl = types.FunctionDeclaration(name="get_weather", description="w",
                                     parameters=types.Schema(type=types.Type.OBJECT))
    resp = await client.aio.models.generate_content(
        model=MODEL, contents="weather?",
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[decl])]))
    fc = resp.function_calls[0]
    assert fc.name == "get_weather" and fc.args == {"query": "weather?"}
    assert resp.candidates[0].content.parts[0].thought_signature
    try:
        await sdk(gemini, "leaked").aio.models.generate_content(model=MODEL, contents="x")
    except genai.errors.ClientError as e:
        assert e.code == 403 and e.status == "PERMISSION_DENIED"
    else:
        raise AssertionError("expected 403")


async def test_models_list_and_get(session: aiohttp.ClientSession, gemini: GeminiEmulator) -> None:
    h = {"x-goog-api-key": "k2"}
    async with session.get(f"{gemini.base_url}/v1beta/models?pageSize=5", headers=h) as r:
        page = await r.json()
    assert len(page["models"]) == 5 and page["nextPageToken"]
    names = [m["name"] for m in page["models"]]
    async with session.get(f"{gemini.base_url}/v1beta/models?pageSize=100&pageToken={page['nextPageToken']}",
                           headers=h) as r:
        rest = await r.json()
    names += [m["name"] for m in rest["models"]]
    assert "nextPageToken" not in rest
    assert names == [f"models/{m}" for m in gemini.models]
    m = page["models"][1]
    assert m["name"] == "models/gemini-2.5-flash"
    assert {"displayName", "supportedGenerationMethods", "inputTokenLimit", "outputTokenLimit"} <= set(m)
    assert "generateContent" in m["supportedGenerationMethods"]
    async with session.get(f"{gemini.base_url}/v1beta/models/gemini-2.5-pro", headers=h) as r:
        assert (await r.json())["name"] == "models/gemini-2.5-pro"
    async with session.get(f"{gemini.base_url}/v1beta/models/nope", headers=h) as r:
        assert r.status == 404
    async with session.get(f"{gemini.base_url}/v1beta/models") as r:
        assert r.status == 403
    models = [x async for x in await sdk(gemini).aio.models.list()]
    assert len(models) == len(gemini.models)


async def test_custom_model_list(clock: Any) -> None:
    from keymux.emulator import EmuKey

    async with GeminiEmulator({"k": EmuKey()}, clock=clock, models=["my-model"]) as emu:
        async with aiohttp.ClientSession() as s:
            url = f"{emu.base_url}/v1beta/models/my-model:generateContent"
            async with s.post(url, json=user("x"), headers={"x-goog-api-key": "k"}) as r:
                assert r.status == 200
            async with s.post(url.replace("my-model", MODEL), json=user("x"), headers={"x-goog-api-key": "k"}) as r:
                assert r.status == 404


async def test_embeddings(post: Any, gemini: GeminiEmulator) -> None:
    body = {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hello"}]}}
    status, one = await post("k2", body, model="gemini-embedding-001", method="embedContent")
    assert status == 200 and len(one["embedding"]["values"]) == 8
    assert (await post("k2", body, model="gemini-embedding-001", method="embedContent"))[1] == one
    batch = {"requests": [body, {**body, "content": {"parts": [{"text": "other"}]}, "outputDimensionality": 4}]}
    status, out = await post("k2", batch, model="gemini-embedding-001", method="batchEmbedContents")
    assert out["embeddings"][0] == one["embedding"] and len(out["embeddings"][1]["values"]) == 4
    assert (await post("k2", body, model=MODEL, method="embedContent"))[0] == 404
    assert (await post("k2", {"content": {}}, model="gemini-embedding-001", method="embedContent"))[0] == 400
    resp = await sdk(gemini).aio.models.embed_content(model="gemini-embedding-001", contents=["a", "b"])
    assert len(resp.embeddings) == 2


async def test_service_tier_is_said_back_and_an_unknown_one_is_google_s_400() -> None:
    emu = GeminiEmulator({"k": EmuKey()})
    base = await emu.serve()
    try:
        async with aiohttp.ClientSession() as http:
            url = f"{base}/v1beta/models/gemini-3.5-flash:generateContent"
            body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "serviceTier": "flex"}
            async with http.post(url, json=body, headers={"x-goog-api-key": "k"}) as resp:
                doc = await resp.json()
                assert resp.status == 200 and resp.headers["x-gemini-service-tier"] == "flex"
                assert doc["usageMetadata"]["serviceTier"] == "flex"
            async with http.post(url, json={**body, "serviceTier": "turbo"}, headers={"x-goog-api-key": "k"}) as resp:
                doc = await resp.json()
                assert resp.status == 400 and doc["error"]["status"] == "INVALID_ARGUMENT"
                assert "Invalid value at 'service_tier'" in doc["error"]["message"]
    finally:
        await emu.close()
