"""A local emulator of the Anthropic Messages API (POST /v1/messages, GET /v1/models).

    emu = AnthropicEmulator({"sk-ant-a": EmuKey(rpm=3)}, clock=FakeClock())
    base = await emu.serve()   # the SDK's base_url

Order of checks: x-api-key -> JSON body -> request (model, max_tokens, tool_result pairing) -> injected
fault -> quota (rpm / tpm / rpd -> 429 rate_limit_error with retry-after) -> answer. Every answer after
the key check carries anthropic-ratelimit-* headers (RFC 3339 resets) and a request-id.
Key statuses: "ok"; "leaked" / "suspended" / "service_disabled" -> 403 permission_error; others 401.
Faults: "503" -> 529 overloaded_error; "500" -> 500 api_error; "prepay" -> 400 credit balance too low;
"bare429" -> 429 without retry-after; "array429" -> the per-minute 429; "timeout"; "midstream".
Prompt caching: the first request whose prompt prefix (up to its last cache_control) is new reports it
as cache_creation_input_tokens, later ones as cache_read_input_tokens.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from aiohttp import web

from keymux.emulator import anthropic_wire as A
from keymux.emulator.base import EmulatorBase
from keymux.emulator.quota import QuotaHit

JSON_CT = "application/json"
SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
DEFAULT_MODELS = [
    "claude-opus-4-5-20251101",
    "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5-20251001",
    "claude-opus-4-1-20250805",
    "claude-sonnet-4-20250514",
]
DEFAULT_RPM = 4_000
DEFAULT_TPM = 2_000_000
_FORBIDDEN = ("leaked", "suspended", "service_disabled")


class AnthropicEmulator(EmulatorBase):
    @staticmethod
    def default_models() -> list[str]:
        return list(DEFAULT_MODELS)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/_emulator/stats", self._stats_handler)
        self._cached: set[bytes] = set()
        return app

    def _rid(self) -> str:
        return f"req_emu{self._seq:016x}"

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(body=orjson.dumps(obj), status=status,
                            headers={"Content-Type": JSON_CT, "request-id": self._rid(), **(headers or {})})

    def _error(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
        return self._json(A.error_body(kind, message, self._rid()), status, headers)

    def _limit_headers(self, key: str, model: str) -> dict[str, str]:
        ek = self.keys[key]
        reqs, toks, r_reset, t_reset = self.quota.usage(self.quota.scope(key, ek), model, self.clock.time())
        now = self.clock.time()
        rpm = ek.rpm if ek.rpm is not None else DEFAULT_RPM
        tpm = ek.tpm if ek.tpm is not None else DEFAULT_TPM
        return {
            "anthropic-ratelimit-requests-limit": str(rpm),
            "anthropic-ratelimit-requests-remaining": str(max(0, rpm - reqs)),
            "anthropic-ratelimit-requests-reset": A.rfc3339(now + r_reset),
            "anthropic-ratelimit-input-tokens-limit": str(tpm),
            "anthropic-ratelimit-input-tokens-remaining": str(max(0, tpm - toks)),
            "anthropic-ratelimit-input-tokens-reset": A.rfc3339(now + t_reset),
            "anthropic-ratelimit-tokens-limit": str(tpm),
            "anthropic-ratelimit-tokens-remaining": str(max(0, tpm - toks)),
            "anthropic-ratelimit-tokens-reset": A.rfc3339(now + t_reset),
        }

    async def _list_models(self, request: web.Request) -> web.Response:
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-05-14T00:00:00Z"}
                for m in self.models]
        return self._json({"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        endpoint = "messages"
        key = request.headers.get("x-api-key", "")
        raw = await request.read()
        await self._delay()
        self._next_id()

        def fail(status: int, kind: str, message: str, logged: str, model: str = "", stream: bool = False,
                 headers: dict[str, str] | None = None) -> web.Response:
            self._log(key, model, status, logged, stream, endpoint)
            return self._error(status, kind, message, headers)

        if not key:
            return fail(401, "authentication_error", A.MSG_MISSING_KEY, "missing_key")
        ek = self.keys.get(key)
        if ek is None or ek.status != "ok":
            if ek is not None and ek.status in _FORBIDDEN:
                return fail(403, "permission_error", A.MSG_PERMISSION, "invalid_key")
            return fail(401, "authentication_error", A.MSG_INVALID_KEY, "invalid_key")
        try:
            req = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return fail(400, "invalid_request_error", "There was an issue with your request body: invalid JSON",
                        "bad_request")
        bad = A.validate(req, self.models)
        model = str(req.get("model", "")) if isinstance(req, dict) else ""
        stream = isinstance(req, dict) and req.get("stream") is True
        if bad is not None:
            return fail(bad[0], bad[1], bad[2], "not_found" if bad[0] == 404 else "bad_request", model, stream)
        popped = self.faults.pop(key)
        fault = popped[1] if popped else None
        if fault is not None and fault != "midstream":
            return await self._fault(fault, key, model, stream, endpoint)
        answer = A.Answer(req, f"toolu_emu{self._seq:016x}")
        now = self.clock.time()
        scope = self.quota.scope(key, ek)
        hit = self.quota.check(scope, model, ek, answer.input, now)
        if hit is not None:
            if popped is not None:
                self.faults.unpop(popped)
            kind = "daily_exhausted" if hit.kind in ("rpd", "zero") else "rate_limited"
            headers = self._limit_headers(key, model)
            headers["retry-after"] = str(max(1, math.ceil(hit.retry_after - 1e-9)))
            return fail(429, "rate_limit_error", A.rate_limit_message(hit.kind, hit.limit, model), kind, model,
                        stream, headers)
        self.quota.record(scope, model, answer.input, now)
        headers = self._limit_headers(key, model)
        cache = self._cache(req, answer.input)
        mid = f"msg_emu{self._seq:016x}"
        if not stream:
            if fault == "midstream":
                return fail(500, "api_error", A.MSG_INTERNAL, "internal", model, False, headers)
            self._log(key, model, 200, "ok", False, endpoint)
            return self._json(answer.message(mid, model, cache), 200, headers)
        events = answer.events(mid, model, cache)
        if fault == "midstream":
            events = events[:2] + [("error", A.error_body("overloaded_error", A.MSG_OVERLOADED, self._rid()))]
        self._log(key, model, 200, "midstream" if fault else "ok", True, endpoint)
        resp = web.StreamResponse(status=200, headers={**SSE_HEADERS, "request-id": self._rid(), **headers})
        await resp.prepare(request)
        for name, doc in events:
            await resp.write(b"event: " + name.encode() + b"\ndata: " + orjson.dumps(doc) + b"\n\n")
        await resp.write_eof()
        return resp

    def _cache(self, req: dict[str, Any], tokens: int) -> tuple[int, int]:
        prefix = A.cache_prefix(req)
        if prefix is None:
            return 0, 0
        share = max(0, tokens - 1)  # the prefix is (nearly) the whole prompt in the emulator's answers
        if prefix in self._cached:
            return 0, share
        self._cached.add(prefix)
        return share, 0

    async def _fault(self, fault: str, key: str, model: str, stream: bool, endpoint: str) -> web.Response:
        if fault == "timeout":
            self._log(key, model, 0, "timeout", stream, endpoint)
            await self._hang()
            return self._error(504, "timeout_error", "Request timed out")
        headers = self._limit_headers(key, model)
        if fault == "503":
            self._log(key, model, 529, "overloaded", stream, endpoint)
            return self._error(529, "overloaded_error", A.MSG_OVERLOADED, headers)
        if fault == "500":
            self._log(key, model, 500, "internal", stream, endpoint)
            return self._error(500, "api_error", A.MSG_INTERNAL, headers)
        if fault == "prepay":
            self._log(key, model, 400, "credit_balance", stream, endpoint)
            return self._error(400, "invalid_request_error", A.MSG_CREDIT)
        ek = self.keys[key]
        limit = ek.rpm if ek.rpm is not None else DEFAULT_RPM
        hit = QuotaHit("rpm", limit, limit, 20.0)
        if fault != "bare429":
            headers["retry-after"] = "20"
            headers["anthropic-ratelimit-requests-remaining"] = "0"
        self._log(key, model, 429, fault, stream, endpoint)
        return self._error(429, "rate_limit_error", A.rate_limit_message(hit.kind, hit.limit, model),
                           headers if fault != "bare429" else None)
