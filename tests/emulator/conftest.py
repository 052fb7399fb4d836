from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
import orjson
import pytest

from keymux.clock import FakeClock
from keymux.emulator import EmuKey, GeminiEmulator, OpenAIEmulator
from keymux.emulator.quota import PACIFIC

MODEL = "gemini-2.5-flash"


def pacific(*args: int) -> float:
    """Epoch seconds of a wall-clock time in America/Los_Angeles."""
    return datetime(*args, tzinfo=PACIFIC).timestamp()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(pacific(2026, 1, 15, 10, 0, 0))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


GEMINI_KEYS = {
    "k1": EmuKey(rpm=2, rpd=5),
    "k2": EmuKey(),
    "tpm": EmuKey(tpm=100),
    "pa": EmuKey(rpm=3, project="proj-a"),
    "pb": EmuKey(rpm=3, project="proj-a"),
    "bad": EmuKey(status="invalid"),
    "nf": EmuKey(status="not_found"),
    "leaked": EmuKey(status="leaked"),
    "susp": EmuKey(status="suspended", project="proj-s"),
    "disabled": EmuKey(status="service_disabled", project="proj-d"),
    "loc": EmuKey(status="location"),
    "zero": EmuKey(free_limit_zero=True),
}


@pytest.fixture
async def gemini(clock: FakeClock) -> AsyncIterator[GeminiEmulator]:
    emu = GeminiEmulator(dict(GEMINI_KEYS), clock=clock)
    await emu.serve()
    yield emu
    await emu.close()


@pytest.fixture
async def openai_emu(clock: FakeClock) -> AsyncIterator[OpenAIEmulator]:
    emu = OpenAIEmulator(
        {
            "sk-test-aaaaaaaaaaaaaaaaaaaaaaaa1234": EmuKey(rpm=3, rpd=10),
            "sk-free": EmuKey(),
            "sk-tpm": EmuKey(tpm=50),
            "sk-bad-xxxxxxxxxxxxxxxxxxxxxxxxxxxx": EmuKey(status="invalid"),
        },
        clock=clock,
    )
    await emu.serve()
    yield emu
    await emu.close()


def user(text: str) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


@pytest.fixture
def to_pacific() -> Any:
    return pacific


@pytest.fixture
def post(session: aiohttp.ClientSession, gemini: GeminiEmulator) -> Any:
    """await post(key, body=None, model=MODEL, method="generateContent", query="") -> (status, json)"""

    async def _post(key: str | None, body: Any = None, model: str = MODEL,
                    method: str = "generateContent", query: str = "") -> tuple[int, Any]:
        return await gemini_post(session, gemini, key, body, model, method, query)

    return _post


async def gemini_post(
    session: aiohttp.ClientSession,
    emu: GeminiEmulator,
    key: str | None,
    body: Any = None,
    model: str = MODEL,
    method: str = "generateContent",
    query: str = "",
) -> tuple[int, Any]:
    headers = {"x-goog-api-key": key} if key else {}
    data = body if isinstance(body, bytes) else orjson.dumps(body if body is not None else user("hi"))
    url = f"{emu.base_url}/v1beta/models/{model}:{method}{query}"
    async with session.post(url, data=data, headers={**headers, "Content-Type": "application/json"}) as r:
        raw = await r.read()
        try:
            return r.status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return r.status, raw.decode()
