"""Azure OpenAI on the wire: the OpenAI emulator behind Azure's addressing and error shapes.

    POST /openai/deployments/{deployment}/chat/completions?api-version=2024-10-21     header api-key: KEY

A deployment name is what the body's model would be (keymux sends it as the model too). No api-version:
404 "Resource not found"; a wrong key: 401 with Azure's text; a 429 carries Azure's message ("Please retry
after N seconds") with retry-after and retry-after-ms. Everything else (quota, faults, streams) is the
OpenAI emulator's.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from keymux.emulator.openai import OpenAIEmulator

MSG_ACCESS_DENIED = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
                     "valid key for an active subscription and use a correct regional API endpoint for your resource.")
MSG_DEPLOYMENT = ("The API deployment for this resource does not exist. If you created the deployment within the "
                  "last 5 minutes, please wait a moment and try again.")


def _azure_error(code: str, message: str, status: int, headers: dict[str, str] | None = None) -> web.Response:
    h = {"content-type": "application/json", "apim-request-id": "emu-apim"}
    h.update(headers or {})
    return web.Response(body=orjson.dumps({"error": {"code": code, "message": message}}), status=status, headers=h)


class AzureOpenAIEmulator(OpenAIEmulator):
    api_versions = frozenset({"2023-05-15", "2024-02-01", "2024-06-01", "2024-10-21", "2025-01-01-preview"})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._azure_chat)
        app.router.add_get("/_emulator/stats", self._stats_handler)
        return app

    async def _azure_chat(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("api-version") not in self.api_versions:
            return _azure_error("404", "Resource not found", 404)
        if request.match_info["deployment"] not in self.models:
            return _azure_error("DeploymentNotFound", MSG_DEPLOYMENT, 404)
        answer = await self._chat(request)
        if answer.status == 429 and isinstance(answer, web.Response):
            seconds = answer.headers.get("retry-after", "1")
            version = request.query["api-version"]
            return _azure_error("429", f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
                                f"version {version} have exceeded token rate limit of your current OpenAI S0 "
                                f"pricing tier. Please retry after {seconds} seconds. Please go here: "
                                "https://aka.ms/oai/quotaincrease if you would like to further increase the "
                                "default rate limit.", 429,
                                {k: v for k, v in answer.headers.items() if k.lower().startswith(("retry-", "x-"))})
        return answer

    def _auth(self, request: web.Request) -> tuple[str, tuple[int, dict[str, Any], str] | None]:
        key = request.headers.get("api-key", "").strip()
        ek = self.keys.get(key)
        if ek is None or ek.status != "ok":
            return key, (401, {"error": {"code": "401", "message": MSG_ACCESS_DENIED}}, "invalid_key")
        return key, None


__all__ = ["AzureOpenAIEmulator"]
