"""Slow and idle clients cannot starve the server: real sockets on 127.0.0.1 against `keymux serve`'s own
start-up (keymux/server.py), with short limits so the test stays quick. Deadlines here are real seconds:
they are the socket timeouts under test."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from openai import APIStatusError, AsyncOpenAI

from keymux.clock import FakeClock
from keymux.config.load import parse_config
from keymux.emulator import EmuKey, GeminiEmulator
from keymux.server import start

from .conftest import T0, gemini_group

PARTIAL_HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sk-master\r\n"
LIMITS = {"request_header_timeout": 0.5, "request_body_timeout": 0.5, "keepalive_timeout": 0.5,
          "max_connections": 20}


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, int]]:
    clock = FakeClock(T0)
    emu = GeminiEmulator({"AIzaSySlowLoris1": EmuKey()}, clock=clock)
    url = await emu.serve()
    config = parse_config({"model_list": gemini_group("chat", ["AIzaSySlowLoris1"]),
                           "general_settings": {"master_key": "sk-master", **LIMITS}},
                          env={"KEYMUX_GEMINI_API_BASE": url})
    runner: web.AppRunner = await start(config, "127.0.0.1", 0, clock=clock)
    port = runner.addresses[0][1]
    try:
        yield "127.0.0.1", port
    finally:
        await runner.cleanup()
        await emu.close()


async def ask(port: int) -> str:
    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-master", max_retries=0, timeout=5)
    try:
        answer = await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
        return answer.choices[0].message.content or ""
    finally:
        await client.close()


async def slow_client(port: int, head: bytes = PARTIAL_HEAD) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    await writer.drain()
    return reader, writer


async def test_trickled_heads_are_closed_and_a_valid_request_is_answered(
        served: tuple[str, int], caplog: pytest.LogCaptureFixture) -> None:
    _, port = served
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.INFO, "keymux"):
        slow = [await slow_client(port) for _ in range(30)]  # 10 past the cap
        started = loop.time()
        answers = await asyncio.wait_for(asyncio.gather(*[reader.read() for reader, _ in slow]), 5)
        elapsed = loop.time() - started
        refused = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
        assert len(refused) == 10 and all(b"Retry-After: 1" in a for a in refused)
        assert answers.count(b"") == 20  # the ones let in: closed, their head never completed
        assert elapsed < 3.0  # header timeout 0.5 s, with room for a loaded machine
        assert await ask(port)
    reached = [r for r in caplog.records if "connection cap reached" in r.getMessage()]
    assert len(reached) == 1 and reached[0].levelno == logging.WARNING
    for _, writer in slow:
        writer.close()


async def test_while_at_the_cap_a_client_is_told_to_retry_not_left_hanging(served: tuple[str, int]) -> None:
    _, port = served
    slow = [await slow_client(port) for _ in range(20)]
    with pytest.raises(APIStatusError) as caught:
        await ask(port)
    assert caught.value.status_code == 503 and "too many open connections" in caught.value.message
    await asyncio.wait_for(asyncio.gather(*[reader.read() for reader, _ in slow]), 5)  # the header timeout frees them
    assert await ask(port)
    for _, writer in slow:
        writer.close()


async def test_a_body_that_never_completes_is_cut_off(served: tuple[str, int]) -> None:
    _, port = served
    loop = asyncio.get_running_loop()
    reader, writer = await slow_client(port, PARTIAL_HEAD + b"Content-Type: application/json\r\n"
                                       b"Content-Length: 1000\r\n\r\n{\"model\":")
    started = loop.time()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert 0.4 < loop.time() - started < 3.0
    writer.close()


async def test_an_idle_kept_alive_connection_is_closed(served: tuple[str, int]) -> None:
    _, port = served
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health/liveliness HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    await reader.readexactly(length)
    started = loop.time()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # nothing more was sent: closed after keepalive_timeout
    assert loop.time() - started < 3.0
    writer.close()
