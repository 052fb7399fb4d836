"""keymux's upstream HTTP/1.1 client against servers that write exact bytes on the wire: every way an
answer can be framed, connection reuse, stale connections, malformed answers, flow control and TLS."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from keymux.upstream import Client, UpstreamError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    return head, await reader.readexactly(length)


class Server:
    """A TCP server running `handler` per connection; counts connections."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler, self.tls = handler, tls
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=self.tls)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    def url(self, path: str = "/v1beta/models/m:generateContent", scheme: str = "http") -> str:
        assert self.server is not None
        return f"{scheme}://localhost:{self.server.sockets[0].getsockname()[1]}{path}"


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    c = Client(keepalive=30.0)
    yield c
    await c.close()


def answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Content-Type: application/json", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def test_sends_a_complete_request_and_reuses_the_connection(client: Client) -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, body = await read_request(reader)
            seen.append((head, body))
            writer.write(answer(b'{"n": %d}' % len(seen), "X-RateLimit-Remaining: 7"))

    async with Server(handler) as srv:
        for i in (1, 2, 3):
            resp = await client.post(srv.url("/v1/x?alt=sse"), b'{"a":1}', {"x-goog-api-key": "k1",
                                                                         "Content-Type": "application/json"},
                                     timeout=5)
            assert resp.status == 200 and resp.headers["x-ratelimit-remaining"] == "7"
            assert await resp.read() == b'{"n": %d}' % i
            resp.release()
        assert srv.connections == 1
    head, body = seen[0]
    assert head.startswith(b"POST /v1/x?alt=sse HTTP/1.1\r\n") and body == b'{"a":1}'
    assert b"\r\nHost: localhost:" in head and b"\r\nx-goog-api-key: k1\r\n" in head
    assert b"Content-Length: 7\r\n" in head


async def test_chunked_answers_with_extensions_and_trailers_arrive_whole(client: Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n")
        for part in (b"data: one\n\n", b"data: two", b"\n\n"):
            writer.write(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
            await writer.drain()
            await asyncio.sleep(0)
        writer.write(b"0\r\nX-Trailer: t\r\n\r\n")
        await read_request(reader)  # the same connection carries the next request
        writer.write(answer(b"{}"))

    async with Server(handler) as srv:
        resp = await client.post(srv.url(), b"{}", {}, timeout=5, stream=True)
        got = [part async for part in resp.iter_any()]
        assert b"".join(got) == b"data: one\n\ndata: two\n\n"
        resp.release()
        again = await client.post(srv.url(), b"{}", {}, timeout=5)
        assert await again.read() == b"{}"
        again.release()
        assert srv.connections == 1


async def test_an_answer_ended_by_closing_the_connection_is_read_and_not_reused(client: Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"whole\": true}")
        await writer.drain()

    async with Server(handler) as srv:
        for _ in range(2):
            resp = await client.post(srv.url(), b"{}", {}, timeout=5)
            assert await resp.read() == b'{"whole": true}'
            resp.release()
        assert srv.connections == 2


async def test_a_kept_connection_the_upstream_closed_meanwhile_is_replaced_quietly(client: Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"{}"))
        await writer.drain()
        if srv.connections == 1:
            await read_request(reader)  # the next request, on this connection: closed without a word

    async with Server(handler) as srv:
        for _ in range(3):
            resp = await client.post(srv.url(), b"{}", {}, timeout=5)
            assert resp.status == 200 and await resp.read() == b"{}"
            resp.release()
        assert srv.connections == 3  # 1: answered, then dropped the 2nd request; 2 and 3: one answer each


async def test_broken_answers_raise_upstream_error(client: Client) -> None:
    replies = iter([b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(next(replies))
        await writer.drain()

    async with Server(handler) as srv:
        with pytest.raises(UpstreamError, match="not an HTTP/1.x answer"):
            await client.post(srv.url(), b"{}", {}, timeout=5)
        resp = await client.post(srv.url(), b"{}", {}, timeout=5)
        with pytest.raises(UpstreamError, match="closed"):
            await resp.read()
        resp.release()
        resp = await client.post(srv.url(), b"{}", {}, timeout=5, stream=True)
        with pytest.raises(UpstreamError, match="bad chunk size"):
            await resp.readany()


async def test_refused_connection_and_line_breaks_in_headers_are_refused(client: Client) -> None:
    async with Server(lambda r, w: asyncio.sleep(0)) as srv:
        url = srv.url()
    with pytest.raises(UpstreamError, match="cannot connect"):
        await client.post(url, b"{}", {}, timeout=5)
    with pytest.raises(UpstreamError, match="line break"):
        await client.post("http://localhost:9/", b"{}", {"x-goog-api-key": "k\r\nX-Evil: 1"}, timeout=5)


async def test_silence_past_the_timeout_is_a_timeout(client: Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # no answer; returns when the client gives up and hangs up

    async with Server(handler) as srv:
        with pytest.raises(asyncio.TimeoutError):
            await client.post(srv.url(), b"{}", {}, timeout=0.05)


async def test_interim_answers_are_skipped_and_a_large_stream_passes_flow_control(client: Client) -> None:
    size = 3 * 1024 * 1024  # over the pause threshold: reading pauses and resumes as the body is consumed

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for i in range(size // 65536):
            writer.write(bytes([i % 256]) * 65536)
            await writer.drain()

    async with Server(handler) as srv:
        resp = await client.post(srv.url(), b"{}", {}, timeout=30, stream=True)
        total = 0
        async for part in resp.iter_any():
            total += len(part)
            await asyncio.sleep(0)  # a slow reader
        assert resp.status == 200 and total == size
        resp.release()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


async def test_https_upstreams_are_verified(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b'{"tls": true}'))
        await writer.drain()

    async with Server(handler, tls=server_ctx) as srv:
        trusting = Client(ssl_context=ssl.create_default_context(cafile=str(cert)))
        try:
            resp = await trusting.post(srv.url(scheme="https"), b"{}", {}, timeout=5)
            assert await resp.read() == b'{"tls": true}'
            resp.release()
        finally:
            await trusting.close()
        default = Client()  # the system's trust store does not know this certificate
        try:
            with pytest.raises(UpstreamError, match="cannot connect"):
                await default.post(srv.url(scheme="https"), b"{}", {}, timeout=5)
        finally:
            await default.close()


async def test_chunked_framing_split_at_every_byte_still_decodes(client: Client) -> None:
    body = b"5\r\nhello\r\n1;x=y\r\n \r\n6\r\nworld!\r\n0\r\nTrailer: 1\r\n\r\n"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(len(body)):
            writer.write(body[i:i + 1])
            await writer.drain()
            await asyncio.sleep(0)
        await read_request(reader)
        writer.write(answer(b"next"))

    async with Server(handler) as srv:
        resp = await client.post(srv.url(), b"{}", {}, timeout=5, stream=True)
        assert b"".join([part async for part in resp.iter_any()]) == b"hello world!"
        resp.release()
        resp = await client.post(srv.url(), b"{}", {}, timeout=5)
        assert await resp.read() == b"next"  # the framing was consumed exactly: the connection is in step
        resp.release()
        assert srv.connections == 1


@pytest.mark.parametrize("split", [False, True])
async def test_a_chunk_longer_than_its_size_line_says_is_an_upstream_error(client: Client, split: bool) -> None:
    body = b"5\r\nhello!!\r\n0\r\n\r\n"  # 5 announced, 7 sent: the byte after the data is not CRLF

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in ([body[i:i + 1] for i in range(len(body))] if split else [body]):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0)

    async with Server(handler) as srv:
        resp = await client.post(srv.url(), b"{}", {}, timeout=5, stream=True)
        with pytest.raises(UpstreamError, match="chunk not followed by CRLF"):
            async for _ in resp.iter_any():
                pass
        resp.release()


async def test_a_malformed_length_is_an_upstream_error_and_a_bodiless_204_keeps_the_connection(client: Client) -> None:
    replies = iter([b"HTTP/1.1 204 No Content\r\n\r\n", answer(b"{}"),
                    b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n"])

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(next(replies))
            await writer.drain()

    async with Server(handler) as srv:
        resp = await client.post(srv.url(), b"{}", {}, timeout=5)
        assert resp.status == 204 and await resp.read() == b""
        resp.release()
        resp = await client.post(srv.url(), b"{}", {}, timeout=5)
        assert await resp.read() == b"{}"
        resp.release()
        assert srv.connections == 1
        with pytest.raises(UpstreamError, match="malformed Content-Length"):
            await client.post(srv.url(), b"{}", {}, timeout=5)
        assert srv.connections == 1  # an answer came: not taken for a stale connection, not sent again


async def test_a_whole_answer_larger_than_the_read_buffer_is_read(client: Client) -> None:
    size = 5 * 1024 * 1024  # e.g. a generated image inline: over the point where reading pauses

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // 65536):
            writer.write(b"x" * 65536)
            await writer.drain()

    async with Server(handler) as srv:
        resp = await client.post(srv.url(), b"{}", {}, timeout=10)
        assert len(await resp.read()) == size
        resp.release()
