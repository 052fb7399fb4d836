"""What every test fixture holding a running gateway offers: its URL, its Gateway, an openai client."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from aiohttp.test_utils import TestServer
from anthropic import AsyncAnthropic
from openai import AsyncOpenAI

from keymux.app import GATEWAY


class Served:
    server: TestServer

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def gateway(self) -> Any:
        return self.server.app[GATEWAY]

    def openai(self, key: str = "sk-master") -> AsyncOpenAI:
        return AsyncOpenAI(base_url=f"{self.base}/v1", api_key=key, max_retries=0, timeout=20)

    def anthropic(self, key: str = "sk-master") -> AsyncAnthropic:
        return AsyncAnthropic(base_url=self.base, api_key=key, max_retries=0, timeout=20)

    async def admin_json(self, path: str, key: str = "sk-master") -> Any:
        """GET an admin API path with the master key; its JSON answer (asserting a 200)."""
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{self.base}{path}", headers={"Authorization": f"Bearer {key}"}) as resp:
                assert resp.status == 200, await resp.text()
                return orjson.loads(await resp.read())
