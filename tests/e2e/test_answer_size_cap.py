"""No upstream answer can take more memory than general_settings.max_upstream_response_mb: whole answers,
chunked answers and streams are cut at the limit with an error naming it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from openai import APIStatusError

from keymux.emulator import EmuKey
from keymux.upstream import Client, UpstreamError

from ..test_upstream import Server, read_request
from .conftest import StackFactory, gemini_group

MB = 1024 * 1024


@pytest.fixture
async def capped() -> AsyncIterator[Client]:
    c = Client(keepalive=30.0, max_answer_bytes=1 * MB)
    yield c
    await c.close()


async def test_a_content_length_over_the_limit_is_refused_before_its_body_is_read(capped: Client) -> None:
    sent = asyncio.Event()

    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (200 * MB) + b"x" * 65536)
        await writer.drain()
        sent.set()
        await reader.read()  # until keymux hangs up

    async with Server(huge) as server:
        with pytest.raises(UpstreamError, match="larger than the limit of 1 MB .*max_upstream_response_mb"):
            await capped.post(server.url(), b"{}", {}, timeout=5)
        assert sent.is_set()


async def test_a_chunked_answer_is_cut_at_the_limit(capped: Client) -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"y" * 65536
        while not writer.is_closing():  # never ends by itself: only the limit stops the reader
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()

    async with Server(endless) as server:
        resp = await capped.post(server.url(), b"{}", {}, timeout=5)
        with pytest.raises(UpstreamError, match="limit of 1 MB"):
            await resp.read()
        resp = await capped.post(server.url(), b"{}", {}, timeout=5, stream=True)
        got = 0
        with pytest.raises(UpstreamError, match="limit of 1 MB"):
            async for part in resp.iter_any():
                got += len(part)
        assert MB / 2 < got <= MB  # what was handed out stays under the limit


async def test_an_answer_under_the_limit_is_read_whole(capped: Client) -> None:
    async def fine(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = b"z" * MB
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()

    async with Server(fine) as server:
        resp = await capped.post(server.url(), b"{}", {}, timeout=5)
        assert len(await resp.read()) == MB


async def test_clients_get_a_502_naming_the_limit(make_stack: StackFactory) -> None:
    # 0.0002 MB (about 200 bytes): smaller than any emulator answer, so every answer is over it.
    stack = await make_stack({"model_list": gemini_group("chat", ["AIzaSyCapOne"]),
                              "router_settings": {"num_retries": 0},
                              "general_settings": {"max_upstream_response_mb": 0.0002}},
                             gemini_keys={"AIzaSyCapOne": EmuKey()})
    client = stack.openai()
    with pytest.raises(APIStatusError) as caught:
        await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi " * 50}])
    assert caught.value.status_code == 502
    assert "limit of 209 bytes" in caught.value.message
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{stack.base}/v1beta/models/chat:streamGenerateContent?alt=sse",
                             headers={"x-goog-api-key": "sk-master"},
                             json={"contents": [{"parts": [{"text": "hi " * 50}]}]}) as resp:
            status, text = resp.status, await resp.text()
    assert status == 502 and "limit of 209 bytes" in text
