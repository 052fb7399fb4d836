"""Clients that read slowly or go away: keymux's memory stays bounded by backpressure (it does not read an
upstream answer ahead of a stalled client), and the key is released when the client leaves."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import orjson

from .conftest import MASTER, FaultStack

HUGE = 48 * 1024 * 1024


def leases(stack: FaultStack) -> int:
    gw = stack.gateway
    now = gw.clock.time()
    return sum(gw.pool.store.view(d, now).in_flight for d in gw.pool.groups["chat"])


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


async def until(what: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


def stalled_client(stack: FaultStack, target: bytes, body: bytes) -> socket.socket:
    """A client with a tiny receive buffer that sends its request and then never reads."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", stack.server.port))  # type: ignore[arg-type]
    s.sendall(b"POST " + target + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Authorization: Bearer " + MASTER.encode() + b"\r\nContent-Length: " + str(len(body)).encode()
              + b"\r\n\r\n" + body)
    return s


def server_buffered(stack: FaultStack) -> int:
    """Bytes keymux has written to client sockets that the kernel has not taken yet."""
    return sum(c.transport.get_write_buffer_size() for c in stack.server.runner.server.connections  # type: ignore
               if c.transport is not None)


async def steady(read: Callable[[], int], polls: int = 30) -> int:
    """Wait until `read()` stops changing for `polls` consecutive looks; return it."""
    last, same = -1, 0
    deadline = time.monotonic() + 10
    while same < polls:
        assert time.monotonic() < deadline, "never settled"
        await asyncio.sleep(0.01)
        now = read()
        same = same + 1 if now == last else 0
        last = now
    return last


async def test_a_stalled_stream_reader_holds_bounded_memory_and_its_key_is_released(
        fault_stack: FaultStack) -> None:
    fault_stack.gemini.wire.huge_bytes = HUGE
    fault_stack.faults("huge")
    before = rss()
    body = orjson.dumps({"contents": [{"parts": [{"text": "hi"}]}]})
    client = stalled_client(fault_stack, b"/v1beta/models/chat:streamGenerateContent?alt=sse", body)
    try:
        await until(lambda: leases(fault_stack) == 1)
        await until(lambda: server_buffered(fault_stack) > 0)  # the client's socket is full: keymux must wait
        buffered = await steady(lambda: server_buffered(fault_stack))
        grown = rss() - before
        assert buffered < 1024 * 1024, f"keymux buffered {buffered} bytes for a client that does not read"
        assert grown < HUGE // 3, f"RSS grew {grown >> 20} MiB while a client stalled on a {HUGE >> 20} MiB answer"
        assert leases(fault_stack) == 1  # still streaming: the key is rightly held
    finally:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        client.close()  # goes away mid-answer (RST)
    await until(lambda: leases(fault_stack) == 0)
    await until(lambda: server_buffered(fault_stack) == 0)


async def test_a_client_that_leaves_a_streaming_answer_is_recorded_as_gone(fault_stack: FaultStack) -> None:
    """Issue 17: a client-cancelled stream was recorded 200/ok."""
    fault_stack.gemini.wire.huge_bytes = HUGE
    fault_stack.faults("huge")
    body = orjson.dumps({"model": "chat", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    client = stalled_client(fault_stack, b"/v1/chat/completions", body)
    await until(lambda: server_buffered(fault_stack) > 0)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    client.close()
    await until(lambda: leases(fault_stack) == 0)
    rows = await fault_stack.gateway.ledger.recent(5, 1e18)
    assert len(rows) == 1 and rows[0]["outcome"] != "ok", rows


async def test_a_non_streaming_client_that_leaves_cancels_its_upstream_call(fault_stack: FaultStack) -> None:
    """Issue 17: the upstream call ran on, leases stayed held and retries went to other keys."""
    fault_stack.faults("hang")
    body = orjson.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
    client = stalled_client(fault_stack, b"/v1/chat/completions", body)
    await until(lambda: len(fault_stack.gemini.calls) == 1 and leases(fault_stack) == 1)
    client.close()
    await until(lambda: leases(fault_stack) == 0, timeout=0.4)  # well before the 0.5 s upstream timeout
    assert len(fault_stack.gemini.calls) == 1  # no retry for a client that is gone
