"""A gateway with both upstream emulators, for the fuzz and fault suites.

Hypothesis drives plain (synchronous) test functions, so `threaded_stack` runs the gateway and its emulators on
an event loop in a thread of their own and the tests talk to it over real sockets with `raw_http`, which can send
any bytes a hostile client can (odd header bytes included). `fault_stack` is the same gateway for async tests.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from keymux.app import create_app
from keymux.clock import FakeClock
from keymux.config.load import parse_config
from keymux.emulator import EmuKey, GeminiEmulator, OpenAIEmulator

from ..served import Served

T0 = 1_795_716_000.0
MASTER = "sk-fuzz-master-0123456789abcdef"
GEMINI_KEYS = ("AIzaSyFuzzKeyOne-0123456789abcdefghijk", "AIzaSyFuzzKeyTwo-0123456789abcdefghijk")
OPENAI_KEYS = ("sk-proj-fuzzkeyone0123456789abcdefghijklmnop",)
SECRETS = (*GEMINI_KEYS, *OPENAI_KEYS, MASTER)


def doc(tmp: Path, **router: Any) -> dict[str, Any]:
    models = [{"model_name": "chat", "litellm_params": {"model": "gemini/gemini-2.5-flash", "api_key": k}}
              for k in GEMINI_KEYS]
    models += [{"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": k}}
               for k in OPENAI_KEYS]
    return {"model_list": models,
            "router_settings": {"num_retries": 1, "queue_timeout": 0, "timeout": 5, **router},
            "general_settings": {"master_key": MASTER, "database_url": f"sqlite:///{tmp / 'fuzz.db'}"}}


@dataclass
class FaultStack(Served):
    clock: FakeClock
    gemini: GeminiEmulator
    openai_emu: OpenAIEmulator
    server: TestServer

    def faults(self, mode: str | None) -> None:
        """Every upstream answer from now on has this wire fault (None: none)."""
        self.gemini.wire.always(None, mode)
        self.openai_emu.wire.always(None, mode)


async def start_stack(tmp: Path, **router: Any) -> FaultStack:
    clock = FakeClock(T0)
    gemini = GeminiEmulator({k: EmuKey() for k in GEMINI_KEYS}, clock=clock)
    openai_emu = OpenAIEmulator({k: EmuKey() for k in OPENAI_KEYS}, clock=clock)
    env = {"KEYMUX_GEMINI_API_BASE": await gemini.serve(),
           "KEYMUX_OPENAI_API_BASE": f"{await openai_emu.serve()}/v1"}
    server = TestServer(create_app(parse_config(doc(tmp, **router), env=env), clock=clock))
    await server.start_server()
    return FaultStack(clock, gemini, openai_emu, server)


async def stop_stack(stack: FaultStack) -> None:
    await stack.server.close()
    await stack.gemini.close()
    await stack.openai_emu.close()


@pytest.fixture
async def fault_stack(tmp_path: Path) -> AsyncIterator[FaultStack]:
    stack = await start_stack(tmp_path, timeout=0.5)
    yield stack
    await stop_stack(stack)


class ThreadedStack:
    """The stack on its own loop in a thread; `run(coro)` runs a coroutine there and returns its result."""

    def __init__(self, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stack: FaultStack = self.run(start_stack(tmp))
        self.port: int = self.stack.server.port  # type: ignore[assignment]

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.run(stop_stack(self.stack))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def threaded_stack(tmp_path: Path) -> Iterator[ThreadedStack]:
    s = ThreadedStack(tmp_path)
    yield s
    s.close()


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    raw: bytes


def _dechunk(data: bytes) -> bytes:
    out, rest = b"", data
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2:]
    return out


def raw_http(port: int, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes = b"",
             timeout: float = 20.0) -> Answer:
    """One request on a fresh connection (Connection: close), read to the end."""
    head = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close",
            b"Content-Length: " + str(len(body)).encode()]
    head += [name + b": " + value for name, value in headers]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        chunks = []
        while True:
            got = s.recv(65536)
            if not got:
                break
            chunks.append(got)
    raw = b"".join(chunks)
    top, _, payload = raw.partition(b"\r\n\r\n")
    lines = top.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    hdrs = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        hdrs[name.strip().lower()] = value.strip()
    if hdrs.get(b"transfer-encoding", b"").lower() == b"chunked":
        payload = _dechunk(payload)
    return Answer(status, hdrs, payload, raw)


def assert_no_secret(data: bytes | str) -> None:
    text = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    for secret in SECRETS:
        assert secret.encode() not in text, f"a key reached the client: {secret[:8]}..."
