"""Gemini on Vertex AI, on the wire: the Gemini emulator behind Vertex's addressing, auth and error bodies.

    POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent
         (and :streamGenerateContent?alt=sse, :countTokens)      header Authorization: Bearer <access token>

Tokens are the token emulator's (emulator/google_token.py): a missing, unknown or expired one gets Vertex's
401 UNAUTHENTICATED; an account without a grant on the project gets 403 PERMISSION_DENIED
(IAM_PERMISSION_DENIED). Quota belongs to the project (`projects` maps each to its EmuKey limits); a quota hit
answers Vertex's 429 ("Quota exceeded for aiplatform.googleapis.com/..."), the "bare429" fault Vertex's
shared-capacity 429 ("Resource exhausted. Please try again later..."), array-wrapped as Vertex sends it.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from keymux.emulator import gemini_wire as W
from keymux.emulator.gemini import JSON_CT, GeminiEmulator
from keymux.emulator.google_token import TokenEmulator
from keymux.emulator.quota import EmuKey, QuotaHit

MSG_UNAUTHENTICATED = ("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                       "or other valid authentication credential. See "
                       "https://developers.google.com/identity/sign-in/web/devconsole-project.")
MSG_SHARED_CAPACITY = ("Resource exhausted. Please try again later. Please refer to "
                       "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.")
_METRICS = {"rpm": "generate_content_requests_per_minute_per_project_per_base_model",
            "tpm": "generate_content_input_tokens_per_minute_per_base_model",
            "rpd": "generate_content_requests_per_day_per_project_per_base_model",
            "zero": "generate_content_requests_per_day_per_project_per_base_model"}


class VertexEmulator(GeminiEmulator):
    """`grants`: account email -> the projects it may call (default: an account may call its own project,
    the one in its email)."""

    def __init__(self, tokens: TokenEmulator, projects: dict[str, EmuKey], *args: Any,
                 grants: dict[str, set[str]] | None = None, **kwargs: Any) -> None:
        super().__init__(projects, *args, **kwargs)
        self.tokens = tokens
        self.grants = grants or {}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/projects/{project}/locations/{location}/publishers/google/models/{spec}",
                            self._vertex)
        app.router.add_get("/_emulator/stats", self._stats_handler)
        return app

    def _key_of(self, request: web.Request) -> str:  # type: ignore[override]
        return request.match_info.get("project", "")  # quota and the call log are the project's

    async def _vertex(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        email = self.tokens.holder(token) if token else None
        project, location = request.match_info["project"], request.match_info["location"]
        model = request.match_info["spec"].rpartition(":")[0]
        if email is None:
            self._log("", model, 401, "unauthenticated", False, "vertex")
            return _json(W.status_body(401, "UNAUTHENTICATED", MSG_UNAUTHENTICATED, [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": _unauthenticated(token),
                 "domain": "googleapis.com",
                 "metadata": {"service": "aiplatform.googleapis.com", "method": "google.cloud.aiplatform.v1."
                              "PredictionService.GenerateContent"}}]), 401)
        allowed = self.grants.get(email, {email.partition("@")[2].split(".")[0]})
        if project not in self.keys or project not in allowed:
            resource = f"projects/{project}/locations/{location}/publishers/google/models/{model}"
            self._log(project, model, 403, "denied", False, "vertex")
            return _json(W.status_body(403, "PERMISSION_DENIED",
                                       f"Permission 'aiplatform.endpoints.predict' denied on resource "
                                       f"'//aiplatform.googleapis.com/{resource}' (or it may not exist).", [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
                 "domain": "aiplatform.googleapis.com",
                 "metadata": {"permission": "aiplatform.endpoints.predict", "resource": resource}}]), 403)
        return await self._post(request)

    def _quota_error(self, hit: QuotaHit, model: str) -> Any:
        metric = _METRICS.get(hit.kind, _METRICS["rpm"])
        return W.status_body(429, "RESOURCE_EXHAUSTED",
                             f"Quota exceeded for aiplatform.googleapis.com/{metric} with base model: {model}. "
                             "Please submit a quota increase request. "
                             "https://cloud.google.com/vertex-ai/docs/generative-ai/quotas-genai.")

    async def _fault(self, fault: str, key: str, model: str, stream: bool, method: str) -> web.Response:
        if fault == "bare429":  # Vertex's 429 without details: the region's shared capacity is taken
            self._log(key, model, 429, "bare429", stream, method)
            return _json([W.status_body(429, "RESOURCE_EXHAUSTED", MSG_SHARED_CAPACITY)], 429)
        return await super()._fault(fault, key, model, stream, method)


def _unauthenticated(token: str) -> str:
    if not token:
        return "CREDENTIALS_MISSING"
    return "ACCESS_TOKEN_EXPIRED" if token.startswith("ya29.") else "ACCESS_TOKEN_TYPE_UNSUPPORTED"


def _json(obj: Any, status: int) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, headers={"Content-Type": JSON_CT})


__all__ = ["VertexEmulator"]
