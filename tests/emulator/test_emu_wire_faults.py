"""Wire faults (keymux/emulator/faults.py): each mode produces its fault on the wire, in both dialects,
stream and not, selected per key, for any key, standing, or per request by header."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import orjson
import pytest

from keymux.emulator import GeminiEmulator, OpenAIEmulator
from keymux.emulator.faults import WIRE_FAULTS

from .conftest import MODEL, user

SK = "sk-test-aaaaaaaaaaaaaaaaaaaaaaaa1234"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def gem_url(emu: GeminiEmulator, stream: bool, sse: bool = True) -> str:
    method = "streamGenerateContent" if stream else "generateContent"
    return f"{emu.base_url}/v1beta/models/{MODEL}:{method}" + ("?alt=sse" if stream and sse else "")


async def gem(session: aiohttp.ClientSession, emu: GeminiEmulator, key: str, stream: bool = False,
              sse: bool = True, fault: str | None = None) -> tuple[int, str, bytes]:
    headers = {"x-goog-api-key": key, **({"x-emulator-fault": fault} if fault else {})}
    async with session.post(gem_url(emu, stream, sse), data=orjson.dumps(user("hi")), headers=headers) as r:
        return r.status, r.headers.get("content-type", ""), await r.read()


async def oai(session: aiohttp.ClientSession, emu: OpenAIEmulator, stream: bool = False,
              key: str = SK) -> tuple[int, bytes]:
    body = {**CHAT, "stream": stream}
    async with session.post(f"{emu.base_url}/v1/chat/completions", json=body,
                            headers={"Authorization": f"Bearer {key}"}) as r:
        return r.status, await r.read()


def sse_events(raw: bytes) -> list[bytes]:
    return [line[6:] for line in raw.split(b"\n") if line.startswith(b"data: ")]


async def test_key5xx_quotes_the_key_in_each_dialect(session: aiohttp.ClientSession, gemini: GeminiEmulator,
                                                     openai_emu: OpenAIEmulator) -> None:
    gemini.wire.inject("k2", "key5xx", "key5xx")
    status, _, raw = await gem(session, gemini, "k2")
    err = orjson.loads(raw)["error"]
    assert status == 500 and err["status"] == "INTERNAL" and "Consumer 'api_key:k2'" in err["message"]
    status, _, raw = await gem(session, gemini, "k2", stream=True)
    assert status == 500 and b"api_key:k2" in raw
    assert (await gem(session, gemini, "k2"))[0] == 200  # one-shot: consumed
    openai_emu.wire.inject(None, "key5xx")
    status, raw = await oai(session, openai_emu)
    assert status == 500 and SK.encode() in raw and orjson.loads(raw)["error"]["type"] == "server_error"
    assert [c.kind for c in gemini.calls] == ["wire_key5xx", "wire_key5xx", "ok"]


async def test_key_midstream_sends_a_good_event_then_an_error_quoting_the_key(
        session: aiohttp.ClientSession, gemini: GeminiEmulator, openai_emu: OpenAIEmulator) -> None:
    gemini.wire.inject("k2", "key_midstream")
    status, ctype, raw = await gem(session, gemini, "k2", stream=True)
    events = sse_events(raw)
    assert status == 200 and ctype.startswith("text/event-stream") and len(events) == 2
    assert orjson.loads(events[0])["candidates"][0]["content"]["parts"][0]["text"]
    assert "api_key:k2" in orjson.loads(events[1])["error"]["message"]
    openai_emu.wire.inject(SK, "key_midstream")
    status, raw = await oai(session, openai_emu, stream=True)
    events = sse_events(raw)
    assert status == 200 and b"[DONE]" not in raw and SK in orjson.loads(events[-1])["error"]["message"]


async def test_cut200_is_a_well_framed_200_with_half_an_answer(session: aiohttp.ClientSession,
                                                              gemini: GeminiEmulator,
                                                              openai_emu: OpenAIEmulator) -> None:
    gemini.wire.always("k2", "cut200")
    status, _, raw = await gem(session, gemini, "k2")
    assert status == 200 and raw.startswith(b'{"candidates"')
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)
    status, _, raw = await gem(session, gemini, "k2", stream=True)
    events = [orjson.loads(e) for e in sse_events(raw)]
    assert status == 200 and events and all("finishReason" not in e["candidates"][0] for e in events)
    status, _, raw = await gem(session, gemini, "k2", stream=True, sse=False)
    assert status == 200 and raw.startswith(b"[") and not raw.endswith(b"]")
    gemini.wire.always("k2", None)
    assert (await gem(session, gemini, "k2"))[0] == 200 and gemini.calls[-1].kind == "ok"
    openai_emu.wire.inject(None, "cut200", "cut200")
    status, raw = await oai(session, openai_emu)
    assert status == 200 and raw.startswith(b'{"id"') and len(raw) > 20
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)
    status, raw = await oai(session, openai_emu, stream=True)
    chunks = [orjson.loads(e) for e in sse_events(raw)]
    assert status == 200 and b"[DONE]" not in raw
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)


async def test_empty200_and_empty_stream(session: aiohttp.ClientSession, gemini: GeminiEmulator,
                                         openai_emu: OpenAIEmulator) -> None:
    for stream in (False, True):
        assert (await gem(session, gemini, "k2", stream=stream, fault="empty200"))[::2] == (200, b"")
    assert (await gem(session, gemini, "k2", stream=True, fault="empty_stream"))[::2] == (200, b"")
    assert (await gem(session, gemini, "k2", stream=True, sse=False, fault="empty_stream"))[::2] == (200, b"[]")
    assert (await gem(session, gemini, "k2", fault="empty_stream"))[::2] == (200, b"{}")
    openai_emu.wire.inject(None, "empty200", "empty_stream")
    assert await oai(session, openai_emu) == (200, b"")
    assert await oai(session, openai_emu, stream=True) == (200, b"data: [DONE]\n\n")


async def test_huge_is_a_well_formed_answer_of_the_size_asked(session: aiohttp.ClientSession,
                                                             gemini: GeminiEmulator,
                                                             openai_emu: OpenAIEmulator) -> None:
    gemini.wire.huge_bytes = openai_emu.wire.huge_bytes = 1_000_000
    status, _, raw = await gem(session, gemini, "k2", fault="huge")
    text = orjson.loads(raw)["candidates"][0]["content"]["parts"][0]["text"]
    assert status == 200 and len(text) == 1_000_000
    status, _, raw = await gem(session, gemini, "k2", stream=True, fault="huge")
    events = [orjson.loads(e) for e in sse_events(raw)]
    assert sum(len(p.get("text", "")) for e in events for p in e["candidates"][0]["content"]["parts"]) > 900_000
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    openai_emu.wire.inject(None, "huge", "huge")
    status, raw = await oai(session, openai_emu)
    assert status == 200 and len(orjson.loads(raw)["choices"][0]["message"]["content"]) == 1_000_000
    status, raw = await oai(session, openai_emu, stream=True)
    assert status == 200 and len(raw) > 900_000 and raw.endswith(b"data: [DONE]\n\n")


def _raw_request(emu: GeminiEmulator, fault: str) -> socket.socket:
    host, port = emu.base_url.removeprefix("http://").split(":")  # type: ignore[union-attr]
    body = orjson.dumps(user("hi"))
    s = socket.create_connection((host, int(port)))
    s.sendall(f"POST /v1beta/models/{MODEL}:generateContent HTTP/1.1\r\nHost: x\r\nx-goog-api-key: k2\r\n"
              f"x-emulator-fault: {fault}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
              f"\r\n\r\n".encode() + body)
    return s


async def test_reset_resets_the_connection_before_any_byte(gemini: GeminiEmulator) -> None:
    s = _raw_request(gemini, "reset")
    try:
        with pytest.raises(ConnectionResetError):
            got = await asyncio.to_thread(s.recv, 1024)
            assert got == b"", "expected a reset, got bytes or a clean close"
    finally:
        s.close()
    assert gemini.calls[-1].kind == "wire_reset"


async def test_hang_reads_the_request_and_never_answers(gemini: GeminiEmulator) -> None:
    s = _raw_request(gemini, "hang")
    try:
        while not gemini._hangs:  # the request was read and the handler is parked
            await asyncio.sleep(0)
        s.setblocking(False)
        with pytest.raises(BlockingIOError):
            s.recv(1)  # nothing was written: the handler is awaiting, not answering
        assert gemini.calls[-1].kind == "wire_hang" and gemini.calls[-1].status == 0
    finally:
        s.close()


async def test_faults_skip_requests_they_do_not_apply_to(session: aiohttp.ClientSession,
                                                        gemini: GeminiEmulator) -> None:
    gemini.wire.inject(None, "key5xx")
    async with session.get(f"{gemini.base_url}/v1beta/models", headers={"x-goog-api-key": "k2"}) as r:
        assert r.status == 200
    url = f"{gemini.base_url}/v1beta/models/{MODEL}:countTokens"
    async with session.post(url, json=user("hi"), headers={"x-goog-api-key": "k2"}) as r:
        assert r.status == 200
    assert gemini.wire.pending() == 1
    with pytest.raises(ValueError, match="unknown wire fault"):
        gemini.wire.inject(None, "nonsense")
    assert set(WIRE_FAULTS) >= {"key5xx", "cut200", "empty200", "empty_stream", "hang", "reset", "huge"}
