"""A gateway and its upstream emulators in one event loop, sharing one FakeClock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from google import genai
from google.genai import types

from keymux.app import create_app
from keymux.clock import FakeClock
from keymux.config.load import parse_config
from keymux.config.schema import Config
from keymux.emulator import AnthropicEmulator, EmuKey, GeminiEmulator, OpenAIEmulator

from ..served import Served

T0 = 1_795_716_000.0  # 2026-11-26 10:00 Pacific


@dataclass
class Stack(Served):
    clock: FakeClock
    gemini: GeminiEmulator
    openai_emu: OpenAIEmulator
    server: TestServer
    config: Config
    anthropic_emu: AnthropicEmulator

    def genai(self, key: str = "sk-master") -> genai.Client:
        return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=self.base, api_version="v1beta", timeout=20_000))


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def make_stack() -> AsyncIterator[StackFactory]:
    made: list[Stack] = []

    async def factory(doc: dict[str, Any], gemini_keys: dict[str, EmuKey] | None = None,
                      openai_keys: dict[str, EmuKey] | None = None, env: dict[str, str] | None = None,
                      master_key: str | None = "sk-master", anthropic_keys: dict[str, EmuKey] | None = None) -> Stack:
        clock = FakeClock(T0)
        gemini = GeminiEmulator(gemini_keys or {}, clock=clock)
        openai_emu = OpenAIEmulator(openai_keys or {}, clock=clock)
        gemini_url = await gemini.serve()
        openai_url = await openai_emu.serve()
        anthropic_emu = AnthropicEmulator(anthropic_keys or {}, clock=clock)
        anthropic_url = await anthropic_emu.serve()
        # "{openai}" in an env value: the OpenAI emulator's URL (for a vendor's GROQ_API_BASE and the like)
        own = {k: v.replace("{openai}", openai_url) for k, v in (env or {}).items()}
        full_env = {"KEYMUX_GEMINI_API_BASE": gemini_url, "KEYMUX_OPENAI_API_BASE": f"{openai_url}/v1",
                    "KEYMUX_ANTHROPIC_API_BASE": anthropic_url, **own}
        if master_key is not None:
            doc = {**doc, "general_settings": {**doc.get("general_settings", {}), "master_key": master_key}}
        config = parse_config(doc, env=full_env)
        server = TestServer(create_app(config, clock=clock))
        await server.start_server()
        stack = Stack(clock, gemini, openai_emu, server, config, anthropic_emu)
        made.append(stack)
        return stack

    yield factory
    for stack in made:
        await stack.server.close()
        await stack.gemini.close()
        await stack.openai_emu.close()
        await stack.anthropic_emu.close()


def gemini_group(name: str, keys: list[str], model: str = "gemini-2.5-flash", **params: Any) -> list[dict[str, Any]]:
    return [{"model_name": name, "litellm_params": {"model": f"gemini/{model}", "api_key": k, **params}} for k in keys]
