"""Shared by tests/ledger, tests/admin, tests/metrics: a gateway built from a config *file* (so reload and
restarts work) with its ledger, against a Gemini emulator, on a FakeClock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer
from openai import AsyncOpenAI

from keymux.app import create_app
from keymux.clock import FakeClock
from keymux.config.load import load_config
from keymux.config.schema import Config
from keymux.emulator import EmuKey, GeminiEmulator

from .served import Served

T0 = 1_795_716_000.0  # 2026-11-26 10:00 Pacific
MASTER = "sk-master-ops"
MSG = [{"role": "user", "content": "hi"}]


def group(name: str, keys: list[str], model: str = "gemini-2.5-flash", **params: Any) -> list[dict[str, Any]]:
    return [{"model_name": name, "litellm_params": {"model": f"gemini/{model}", "api_key": k, **params}} for k in keys]


@dataclass
class OpsStack(Served):
    clock: FakeClock
    gemini: GeminiEmulator
    server: TestServer
    path: Path
    doc: dict[str, Any]
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)
    client: AsyncOpenAI | None = None

    @property
    def config(self) -> Config:
        return self.gateway.config

    def openai(self, key: str = MASTER) -> AsyncOpenAI:
        return super().openai(key)

    async def ask(self, model: str = "chat", **kw: Any) -> Any:
        if self.client is None:
            self.client = self.openai()
        return await self.client.chat.completions.create(model=model, messages=MSG, **kw)

    async def admin(self, method: str, path: str, json: Any = None, key: str | None = MASTER,
                    raw: bool = False) -> tuple[int, Any]:
        session = aiohttp.ClientSession()
        self.sessions.append(session)
        headers = {"authorization": f"Bearer {key}"} if key else {}
        async with session.request(method, f"{self.base}{path}", json=json, headers=headers) as resp:
            body = await resp.read()
            return resp.status, body if raw else (await resp.json(content_type=None))

    def write(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.path.write_text(yaml.safe_dump(_with_base(doc, self.gemini.base_url)))


def _with_base(doc: dict[str, Any], base: str) -> dict[str, Any]:
    out = dict(doc)
    out["model_list"] = [{**e, "litellm_params": {"api_base": base, **e["litellm_params"]}} for e in doc["model_list"]]
    out["general_settings"] = {"master_key": MASTER, **doc.get("general_settings", {})}
    return out


OpsFactory = Callable[..., Awaitable[OpsStack]]


@pytest.fixture
async def ops_stack(tmp_path: Path) -> AsyncIterator[OpsFactory]:
    made: list[OpsStack] = []
    emulators: list[GeminiEmulator] = []

    async def factory(doc: dict[str, Any], keys: dict[str, EmuKey] | None = None,
                      reuse: OpsStack | None = None) -> OpsStack:
        """A fresh gateway; `reuse` restarts on the same config file, database, emulator and clock."""
        if reuse is not None:
            clock, gemini, path = reuse.clock, reuse.gemini, reuse.path
        else:
            clock = FakeClock(T0)
            gemini = GeminiEmulator(keys or {}, clock=clock)
            await gemini.serve()
            emulators.append(gemini)
            path = tmp_path / "keymux.yaml"
        stack = OpsStack(clock, gemini, None, path, doc)  # type: ignore[arg-type]
        stack.write(doc)
        server = TestServer(create_app(load_config(path, env={}), clock=clock))
        await server.start_server()
        stack.server = server
        made.append(stack)
        return stack

    yield factory
    for stack in made:
        for s in stack.sessions:
            await s.close()
        await stack.server.close()
    for emu in emulators:
        await emu.close()
