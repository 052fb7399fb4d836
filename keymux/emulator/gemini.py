"""A local emulator of the Gemini native API (Google AI Studio, /v1beta), faithful on the wire.

    emu = GeminiEmulator({"k1": EmuKey(rpm=2), "k2": EmuKey(status="leaked")}, clock=FakeClock())
    base = await emu.serve()          # "http://127.0.0.1:54321"
    ...
    await emu.close()

Order of checks for POST model methods: key (missing / unknown / status) -> model and method ->
JSON body -> injected fault -> quota (rpd, rpm, tpm) -> answer. countTokens never counts toward
quota. Faults are consumed only by POST model methods (not by model listing).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import orjson
from aiohttp import web

from keymux.emulator import gemini_wire as W
from keymux.emulator.base import EmulatorBase
from keymux.emulator.gemini_answer import (
    RequestError,
    build_answer,
    check_speech,
    check_thought_signatures,
    count_tokens_request,
    full_response,
    g,
    prompt_tokens,
    stream_responses,
    validate_generate,
)
from keymux.emulator.gemini_caches_batches import CachesAndBatches
from keymux.emulator.gemini_files import Files
from keymux.emulator.gemini_interactions import Interactions
from keymux.emulator.gemini_operations import Operations
from keymux.emulator.quota import QuotaHit

JSON_CT = "application/json; charset=UTF-8"
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Content-Disposition": "attachment",
    "Vary": "Origin, X-Origin, Referer",
}
METHODS = frozenset(
    {"generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents", "predict"}
)
DEFAULT_MODELS = [
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
    "gemini-2.0-flash-lite",
    "gemini-2.5-flash-image",
    "gemini-3-pro-preview",
    "gemini-3-flash-preview",
    "gemini-3-pro-image-preview",
    "gemini-3.5-flash",
    "gemini-3.5-flash-lite",
    "gemini-3.6-flash",
    "gemini-pro-latest",
    "gemini-flash-latest",
    "gemini-flash-lite-latest",
    "gemini-embedding-001",
    "text-embedding-004",
    "gemini-2.5-flash-preview-tts",
    "gemini-2.5-pro-preview-tts",
    "imagen-4.0-generate-001",
    "imagen-4.0-fast-generate-001",
    "imagen-4.0-ultra-generate-001",
    "veo-3.1-generate-preview",
]
EMBED_DIMS = 8
BATCH_EMBED_LIMIT = 100  # batchEmbedContents refuses larger batches


MIDSTREAM_PAUSE = 0.05  # real seconds between the good event and the error of a "midstream" fault


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, headers={"Content-Type": JSON_CT})


class GeminiEmulator(EmulatorBase):
    """Emulates generativelanguage.googleapis.com for the keys given (unknown keys are invalid)."""

    # Switches a test may flip on an instance:
    strict_fields = True  # unknown JSON field names -> 400, as Google does
    require_thought_signatures = True  # gemini-3*: functionCall history needs signatures
    # Answers to give instead of the echo, in order: each a list of Gemini parts (text, functionCall).
    scripted: list[list[dict[str, Any]]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scripted = []
    whole_second_retry = False  # True: RetryInfo "26s" (Google often truncates)

    @staticmethod
    def default_models() -> list[str]:
        return list(DEFAULT_MODELS)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for ver in ("v1beta", "v1"):
            app.router.add_get(f"/{ver}/models", self._list_models)
            app.router.add_get(f"/{ver}/models/{{spec}}", self._get_model)
            app.router.add_post(f"/{ver}/models/{{spec}}", self._post)
        app.router.add_get("/_emulator/stats", self._stats_handler)
        self.interactions.add_routes(app)
        self.files_api.add_routes(app)
        self.stateful.add_routes(app)
        self.operations.add_routes(app)
        return app

    @functools.cached_property
    def stateful(self) -> CachesAndBatches:
        return CachesAndBatches(self._owner_of, self._log, self.clock.time)

    @functools.cached_property
    def files_api(self) -> Files:
        return Files(self._owner_of, self._log, self.clock.time, lambda: self.base_url or "")

    @functools.cached_property
    def operations(self) -> Operations:
        return Operations(self._owner_of, self._log, self.clock.time, lambda: self.base_url or "")

    @functools.cached_property
    def interactions(self) -> Interactions:
        return Interactions(self._owner_of, self._log, self.clock.time)

    def _owner_of(self, request: web.Request) -> tuple[str, str] | web.Response:
        """(key, the project that owns what it creates), or the error a bad key gets."""
        key = self._key_of(request)
        denied = self._auth(key)
        if denied:
            status, body, kind = denied
            self._log(key, "", status, kind, False, request.path)
            return _json(body, status)
        return key, self.keys[key].project or key

    # ------------------------------------------------------------ auth

    def _auth(self, key: str) -> tuple[int, dict[str, Any], str] | None:
        """(status, body, kind) when the key cannot be used."""
        if not key:
            return 403, W.status_body(403, "PERMISSION_DENIED", W.MSG_MISSING_KEY), "missing_key"
        ek = self.keys.get(key)
        if ek is None:
            status, body = W.key_error("invalid", key, key)
            return status, body, "invalid_key"
        if ek.status == "ok":
            return None
        status, body = W.key_error(ek.status, key, ek.project or key)
        kind = "invalid_key" if ek.status in ("invalid", "not_found") else ek.status
        return status, body, kind

    @staticmethod
    def _key_of(request: web.Request) -> str:
        return request.headers.get("x-goog-api-key") or request.query.get("key") or ""

    # ------------------------------------------------------------ models

    async def _list_models(self, request: web.Request) -> web.Response:
        key = self._key_of(request)
        await self._delay()
        denied = self._auth(key)
        if denied:
            self._log(key, "", denied[0], denied[2], False, "models.list")
            return _json(denied[1], denied[0])
        try:
            size = int(request.query.get("pageSize") or 50)
            start = int(request.query.get("pageToken") or 0)
        except ValueError:
            body = W.bad_request("Invalid value at 'page_size' or 'page_token'.", violation=False)
            self._log(key, "", 400, "bad_request", False, "models.list")
            return _json(body, 400)
        size = max(1, min(size, 1000))
        page = self.models[start : start + size]
        out: dict[str, Any] = {"models": [W.model_object(m) for m in page]}
        if start + size < len(self.models):
            out["nextPageToken"] = str(start + size)
        self._log(key, "", 200, "ok", False, "models.list")
        return _json(out)

    async def _get_model(self, request: web.Request) -> web.Response:
        key = self._key_of(request)
        model = request.match_info["spec"]
        await self._delay()
        denied = self._auth(key)
        if denied:
            self._log(key, model, denied[0], denied[2], False, "models.get")
            return _json(denied[1], denied[0])
        if model not in self.models:
            self._log(key, model, 404, "not_found", False, "models.get")
            return _json(W.status_body(404, "NOT_FOUND", f"models/{model} is not found for API version "
                                       f"{request.path.split('/')[1]}"), 404)
        self._log(key, model, 200, "ok", False, "models.get")
        return _json(W.model_object(model))

    # ------------------------------------------------------------ model methods

    async def _post(self, request: web.Request) -> web.StreamResponse:
        version = request.path.split("/")[1]
        model, sep, method = request.match_info["spec"].rpartition(":")
        key = self._key_of(request)
        stream = method == "streamGenerateContent"
        raw = await request.read()
        await self._delay()
        if not sep or method not in METHODS | {"batchGenerateContent", "predictLongRunning"}:
            body = W.status_body(404, "NOT_FOUND", "Method not found.")
            self._log(key, model, 404, "not_found", stream, method)
            return _json(body, 404)

        def fail(status: int, body: Any, kind: str) -> web.Response:
            self._log(key, model, status, kind, stream, method)
            return _json(body, status)

        denied = self._auth(key)
        if denied:
            return fail(*denied)
        if method == "batchGenerateContent" and model in self.models:
            try:
                batch = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return fail(400, W.bad_request(W.MSG_BAD_JSON), "bad_request")
            return self.stateful.create_batch(key, self.keys[key].project or key, model, batch)
        if method == "predictLongRunning" and model in self.models and W.supports(model, method):
            try:
                started = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return fail(400, W.bad_request(W.MSG_BAD_JSON), "bad_request")
            return self.operations.start(key, self.keys[key].project or key, model, started)
        if model not in self.models or not W.supports(model, method):
            shown = "generateContent" if stream else method
            return fail(404, W.not_found_model(model, shown, version), "not_found")
        try:
            req = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return fail(400, W.bad_request(W.MSG_BAD_JSON), "bad_request")
        ek = self.keys[key]
        try:
            if method in ("generateContent", "streamGenerateContent"):
                validate_generate(req, self.strict_fields)
                owner = self.keys[key].project or key
                refused = self.files_api.refused(req, owner) or self.stateful.refused(req, owner, model)
                if refused is not None:
                    self._log(key, model, 403, "denied", stream, method)
                    return refused
                if self.require_thought_signatures and model.startswith("gemini-3"):
                    msg = check_thought_signatures(req)
                    if msg:
                        raise RequestError(msg, violation=False)
                msg = check_speech(req, model)
                if msg:
                    raise RequestError(msg, violation=False)
                tokens = 0  # computed with the answer below
            elif method == "countTokens":
                inner = count_tokens_request(req)
                total, details = prompt_tokens(inner)
                self._log(key, model, 200, "ok", False, method)
                return _json({"totalTokens": total, "promptTokensDetails": details})
            elif method == "predict":
                texts = [self._imagen_prompt(req)]
                tokens = max(1, len(texts[0]) // 4)
            else:
                texts = self._embed_texts(req, method, model)
                tokens = max(1, sum(len(t) for t in texts) // 4)
        except RequestError as e:
            return fail(400, W.bad_request(e.message, e.field, e.violation), "bad_request")

        popped = self.faults.pop(key)
        fault = popped[1] if popped else None
        if fault is not None and fault != "midstream":
            return await self._fault(fault, key, model, stream, method)

        answer = None
        if method in ("generateContent", "streamGenerateContent"):
            answer = build_answer(req, model)
            if self.scripted:  # a test's scripted answer replaces the echo (tools a real client runs)
                parts = self.scripted.pop(0)
                calls = any("functionCall" in part for part in parts)
                answer.parts, answer.stream_parts, answer.finish = parts, list(parts), "STOP"
                answer.cand_tokens = max(1, len(orjson.dumps(parts)) // 4) if calls else answer.cand_tokens
            tokens = answer.prompt_tokens
        now = self.clock.time()
        scope = self.quota.scope(key, ek)
        hit = self.quota.check(scope, model, ek, tokens, now)
        if hit is not None:
            if popped is not None:  # "midstream" stays queued: this request never started
                self.faults.unpop(popped)
            kind = "daily_exhausted" if hit.kind in ("rpd", "zero") else "rate_limited"
            return fail(429, self._quota_error(hit, model), kind)
        self.quota.record(scope, model, tokens, now)

        if method == "predict":
            self._log(key, model, 200, "ok", False, method)
            n = g(g(req, "parameters"), "sampleCount") or 1
            return _json({"predictions": [{"bytesBase64Encoded": W.PNG_B64, "mimeType": "image/png"}
                                          for _ in range(n)]})
        if answer is None:
            return self._embed_answer(texts, req, method, key, model)
        rid = f"emu-{self._next_id():08x}"
        if not stream:
            if fault == "midstream":
                return fail(500, W.status_body(500, "INTERNAL", W.MSG_INTERNAL), "internal")
            self._log(key, model, 200, "ok", False, method)
            resp = _json(full_response(answer, model, rid))
            if answer.tier:  # Google says which tier served it in a header too (gemini-wire.md)
                resp.headers["x-gemini-service-tier"] = answer.tier
            return resp
        chunks = stream_responses(answer, model, rid)
        sse = request.query.get("alt") == "sse"
        if fault == "midstream":
            chunks = chunks[:1] + [W.status_body(500, "INTERNAL", W.MSG_INTERNAL)]
        self._log(key, model, 200, "midstream" if fault else "ok", True, method)
        return await self._stream(request, chunks, sse, abrupt=fault == "midstream", tier=answer.tier)

    def _quota_error(self, hit: QuotaHit, model: str) -> Any:
        """The 429 body of a quota hit (the Vertex mode words it its own way)."""
        return W.quota_body(hit, model, self.whole_second_retry)

    async def _stream(
        self, request: web.Request, chunks: list[Any], sse: bool, abrupt: bool, tier: str | None = None
    ) -> web.StreamResponse:
        headers = dict(SSE_HEADERS) if sse else {"Content-Type": JSON_CT}
        if tier:
            headers["x-gemini-service-tier"] = tier
        resp = web.StreamResponse(status=200, headers=headers)
        if abrupt:
            resp.force_close()
        await resp.prepare(request)
        if sse:
            for i, c in enumerate(chunks):
                if abrupt and i == len(chunks) - 1:
                    await asyncio.sleep(MIDSTREAM_PAUSE)  # the break comes after the first event has been delivered
                await resp.write(b"data: " + orjson.dumps(c) + b"\r\n\r\n")
        else:
            for i, c in enumerate(chunks):
                await resp.write((b"[" if i == 0 else b",\r\n") + orjson.dumps(c))
            await resp.write(b"]")
        await resp.write_eof()
        return resp

    async def _fault(self, fault: str, key: str, model: str, stream: bool, method: str) -> web.Response:
        if fault == "timeout":
            self._log(key, model, 0, "timeout", stream, method)
            await self._hang()
            return _json(W.status_body(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."), 504)
        body: dict[str, Any] | list[dict[str, Any]]
        if fault == "503":
            status, body, kind = 503, W.status_body(503, "UNAVAILABLE", W.MSG_OVERLOADED), "overloaded"
        elif fault == "500":
            status, body, kind = 500, W.status_body(500, "INTERNAL", W.MSG_INTERNAL), "internal"
        elif fault == "bare429":
            status, body, kind = 429, W.status_body(429, "RESOURCE_EXHAUSTED", W.MSG_BARE_429), "bare429"
        elif fault in ("spendcap", "prepay", "tierdrop"):
            delay = W.SPEND_WINDOW_S if fault == "spendcap" else None
            status, body, kind = 429, W.cause_body(fault, delay), fault
        elif fault == "array429":
            ek = self.keys[key]
            limit = ek.rpm if ek.rpm is not None else 15
            hit = QuotaHit("rpm", limit, limit, 30.0)
            status, body, kind = 429, [W.quota_body(hit, model, self.whole_second_retry)], "array429"
        else:  # FaultQueue validates names; content_policy is the OpenAI emulator's (Gemini blocks inside a 200)
            raise ValueError(f"fault {fault!r} is not one the Gemini emulator answers")
        self._log(key, model, status, kind, stream, method)
        return _json(body, status)

    # ------------------------------------------------------------ Imagen

    @staticmethod
    def _imagen_prompt(req: Any) -> str:
        """Imagen's :predict: `{instances: [{prompt}], parameters: {sampleCount 1-4, aspectRatio, ...}}`."""
        instances = req.get("instances") if isinstance(req, dict) else None
        if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
            raise RequestError("Only one instance is supported per request.", violation=False)
        prompt = instances[0].get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise RequestError("The prompt is empty. Please provide a prompt.", violation=False)
        params = req.get("parameters") or {}
        n = g(params, "sampleCount", 1)
        if not isinstance(n, int) or not 1 <= n <= 4:
            raise RequestError(f"sampleCount must be between 1 and 4, got {n}.", violation=False)
        ratio = g(params, "aspectRatio")
        if ratio is not None and ratio not in W.IMAGEN_RATIOS:
            raise RequestError(f"Unsupported aspect ratio: {ratio}. Supported: {', '.join(W.IMAGEN_RATIOS)}.",
                               violation=False)
        return prompt

    # ------------------------------------------------------------ embeddings

    @staticmethod
    def _embed_texts(req: Any, method: str, model: str) -> list[str]:
        def texts_of(r: Any, where: str) -> str:
            content = r.get("content") if isinstance(r, dict) else None
            if not isinstance(content, dict) or not content.get("parts"):
                raise RequestError(f"* {where}.content: content is not specified\n", violation=False)
            return " ".join(p.get("text", "") for p in content["parts"] if isinstance(p, dict))

        if not isinstance(req, dict):
            raise RequestError('Invalid JSON payload received. Unknown name "": Root element must be a message.')
        if method == "embedContent":
            return [texts_of(req, "EmbedContentRequest")]
        reqs = req.get("requests")
        if not reqs or not isinstance(reqs, list):
            raise RequestError("* BatchEmbedContentsRequest.requests: requests is not specified\n", violation=False)
        if len(reqs) > BATCH_EMBED_LIMIT:
            raise RequestError(f"* BatchEmbedContentsRequest.requests: at most {BATCH_EMBED_LIMIT} requests can be "
                               "in one batch\n", violation=False)
        for i, r in enumerate(reqs):
            if isinstance(r, dict) and r.get("model") != f"models/{model}":
                raise RequestError(f"Model names should match for all batched requests. Found {r.get('model')} "
                                   f"in requests[{i}] and models/{model} in the batch request.", violation=False)
        return [texts_of(r, f"BatchEmbedContentsRequest.requests[{i}]") for i, r in enumerate(reqs)]

    def _embed_answer(self, texts: list[str], req: Any, method: str, key: str, model: str) -> web.Response:
        def dims(r: Any) -> int:
            d = g(r, "outputDimensionality")
            return d if isinstance(d, int) and 1 <= d <= 3072 else EMBED_DIMS

        self._log(key, model, 200, "ok", False, method)
        if method == "embedContent":
            return _json({"embedding": {"values": W.embedding_values(texts[0], dims(req))}})
        return _json({"embeddings": [
            {"values": W.embedding_values(t, dims(r))} for t, r in zip(texts, req["requests"])
        ]})
