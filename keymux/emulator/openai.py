"""A local emulator of the OpenAI API (chat completions, responses, models, embeddings, files).

    emu = OpenAIEmulator({"sk-a": EmuKey(rpm=3)}, clock=FakeClock())
    base = await emu.serve()   # use base + "/v1" as the SDK's base_url

Order of checks for POSTs: key -> JSON body -> model -> injected fault -> quota (rpd -> 429
insufficient_quota, rpm, tpm -> 429 rate_limit_exceeded with retry-after / retry-after-ms) ->
answer. Every answer after the key check carries x-ratelimit-* headers.
Key statuses: "ok"; anything else answers 401 invalid_api_key, like "invalid".
Faults: "503" / "500" -> OpenAI-shaped 5xx; "bare429" -> a 429 rate_limit_exceeded without
retry headers; "array429" -> the normal per-minute 429; "timeout"; "midstream".
"""

from __future__ import annotations

import base64
import functools
import struct
from typing import Any

import orjson
from aiohttp import web

from keymux.emulator import openai_responses as R
from keymux.emulator import openai_wire as O
from keymux.emulator.base import EmulatorBase
from keymux.emulator.gemini_wire import PNG_B64, embedding_values, speech_pcm, wav_bytes
from keymux.emulator.openai_files import OpenAIFiles
from keymux.emulator.quota import QuotaHit, go_duration

JSON_CT = "application/json"
SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
DEFAULT_MODELS = [
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "o4-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "gpt-image-1",
    "dall-e-3",
    "tts-1",
    "gpt-4o-mini-tts",
    "whisper-1",
    "gpt-4o-transcribe",
]
DEFAULT_RPM = 10_000
DEFAULT_TPM = 10_000_000
CREATED = 1_700_000_000


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    h = {"Content-Type": JSON_CT}
    if headers:
        h.update(headers)
    return web.Response(body=orjson.dumps(obj), status=status, headers=h)


class OpenAIEmulator(EmulatorBase):
    organization = "org-emulator"

    @staticmethod
    def default_models() -> list[str]:
        return list(DEFAULT_MODELS)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_post("/v1/images/generations", self._images)
        app.router.add_post("/v1/images/edits", self._image_edits)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        app.router.add_get("/_emulator/stats", self._stats_handler)
        self.files_api.add_routes(app)
        return app

    @functools.cached_property
    def files_api(self) -> OpenAIFiles:
        return OpenAIFiles(self._auth, self._log, self.clock.time)

    # ------------------------------------------------------------ helpers

    def _auth(self, request: web.Request) -> tuple[str, tuple[int, dict[str, Any], str] | None]:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return "", (401, O.error_body(O.MSG_MISSING_KEY, "invalid_request_error"), "missing_key")
        ek = self.keys.get(key)
        if ek is None or ek.status != "ok":
            return key, (401, O.invalid_key_body(key), "invalid_key")
        return key, None

    def _limit_headers(self, key: str, model: str) -> dict[str, str]:
        ek = self.keys[key]
        scope = self.quota.scope(key, ek)
        reqs, toks, r_reset, t_reset = self.quota.usage(scope, model, self.clock.time())
        rpm = ek.rpm if ek.rpm is not None else DEFAULT_RPM
        tpm = ek.tpm if ek.tpm is not None else DEFAULT_TPM
        return {
            "x-ratelimit-limit-requests": str(rpm),
            "x-ratelimit-limit-tokens": str(tpm),
            "x-ratelimit-remaining-requests": str(max(0, rpm - reqs)),
            "x-ratelimit-remaining-tokens": str(max(0, tpm - toks)),
            "x-ratelimit-reset-requests": go_duration(r_reset),
            "x-ratelimit-reset-tokens": go_duration(t_reset),
            "x-request-id": f"req_emu{self._seq:08x}",
            "openai-organization": self.organization,
        }

    async def _admit(
        self, request: web.Request, endpoint: str
    ) -> tuple[str, str, Any, bool, web.Response | None]:
        """Auth, JSON, model. Returns (key, model, body, stream, refusal-or-None)."""
        key, denied = self._auth(request)
        raw = await request.read()
        await self._delay()
        if denied:
            self._log(key, "", denied[0], denied[2], False, endpoint)
            return key, "", None, False, _json(denied[1], denied[0])
        try:
            req = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._log(key, "", 400, "bad_request", False, endpoint)
            return key, "", None, False, _json(O.error_body(O.MSG_BAD_JSON, "invalid_request_error"), 400)
        model = req.get("model", "") if isinstance(req, dict) else ""
        model = model if isinstance(model, str) else ""
        stream = bool(req.get("stream")) if isinstance(req, dict) else False
        if model and model not in self.models:
            body = O.error_body(f"The model `{model}` does not exist or you do not have access to it.",
                                "invalid_request_error", None, "model_not_found")
            self._log(key, model, 404, "not_found", stream, endpoint)
            return key, model, None, stream, _json(body, 404)
        return key, model, req, stream, None

    def _quota(self, key: str, model: str, tokens: int, stream: bool, endpoint: str,
               popped: tuple[str | None, str] | None) -> web.Response | None:
        ek = self.keys[key]
        scope = self.quota.scope(key, ek)
        now = self.clock.time()
        hit = self.quota.check(scope, model, ek, tokens, now)
        if hit is None:
            self.quota.record(scope, model, tokens, now)
            return None
        if popped is not None:
            self.faults.unpop(popped)
        headers = self._limit_headers(key, model)
        if hit.kind in ("rpd", "zero"):
            self._log(key, model, 429, "daily_exhausted", stream, endpoint)
            return _json(O.error_body(O.MSG_INSUFFICIENT, "insufficient_quota", None, "insufficient_quota"),
                         429, headers)
        headers.update(O.retry_headers(hit.retry_after))
        self._log(key, model, 429, "rate_limited", stream, endpoint)
        return _json(O.rate_limit_body(hit, model, self.organization, tokens), 429, headers)

    async def _fault(self, fault: str, key: str, model: str, stream: bool, endpoint: str) -> web.Response:
        if fault == "timeout":
            self._log(key, model, 0, "timeout", stream, endpoint)
            await self._hang()
            return _json(O.error_body("Request timed out.", "server_error"), 504)
        headers = self._limit_headers(key, model)
        if fault == "content_policy":  # a safety refusal: the request's fault, not the key's
            self._log(key, model, 400, "content_policy", stream, endpoint)
            return _json(O.error_body(O.MSG_CONTENT_POLICY, "invalid_request_error", None, "content_policy_violation"),
                         400, headers)
        if fault in ("503", "500"):
            status = int(fault)
            self._log(key, model, status, "overloaded" if status == 503 else "internal", stream, endpoint)
            return _json(O.server_error_body(), status, headers)
        ek = self.keys[key]
        limit = ek.rpm if ek.rpm is not None else DEFAULT_RPM
        body = O.rate_limit_body(QuotaHit("rpm", limit, limit, 20.0), model, self.organization, 1)
        if fault == "bare429":
            self._log(key, model, 429, "bare429", stream, endpoint)
            return _json(body, 429)
        headers.update(O.retry_headers(20.0))
        self._log(key, model, 429, "array429", stream, endpoint)
        return _json(body, 429, headers)

    # ------------------------------------------------------------ routes

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        endpoint = "chat.completions"
        key, model, req, stream, refused = await self._admit(request, endpoint)
        if refused is not None:
            return refused
        bad = O.validate_chat(req)
        if bad is not None:
            self._log(key, model, bad[0], "bad_request", stream, endpoint)
            return _json(bad[1], bad[0])
        if b"file_id" in await request.read():
            not_mine = self.files_api.refused(req, key)
            if not_mine is not None:
                self._log(key, model, 400, "bad_request", stream, endpoint)
                return not_mine
        if "embedding" in model:
            body = O.error_body("This is not a chat model and thus not supported in the v1/chat/completions "
                                "endpoint. Did you mean to use v1/completions?", "invalid_request_error",
                                "model", None)
            self._log(key, model, 404, "not_found", stream, endpoint)
            return _json(body, 404)
        popped = self.faults.pop(key)
        fault = popped[1] if popped else None
        if fault is not None and fault != "midstream":
            return await self._fault(fault, key, model, stream, endpoint)
        answer = O.ChatAnswer(req)
        refused = self._quota(key, model, answer.prompt, stream, endpoint, popped)
        if refused is not None:
            return refused
        headers = self._limit_headers(key, model)
        seq = self._next_id()
        cid, call_id = f"chatcmpl-emu{seq:08x}", f"call_emu{seq:016x}"
        created = int(self.clock.time())
        if not stream:
            if fault == "midstream":
                self._log(key, model, 500, "internal", False, endpoint)
                return _json(O.server_error_body(), 500, headers)
            self._log(key, model, 200, "ok", False, endpoint)
            return _json(answer.completion_obj(cid, created, model, call_id), 200, headers)
        opts = req.get("stream_options")
        include_usage = bool(isinstance(opts, dict) and opts.get("include_usage"))
        chunks = answer.chunks(cid, created, model, call_id, include_usage)
        self._log(key, model, 200, "midstream" if fault else "ok", True, endpoint)
        resp = web.StreamResponse(status=200, headers={**SSE_HEADERS, **headers})
        if fault == "midstream":
            resp.force_close()
            chunks = chunks[:1] + [O.server_error_body()]
        await resp.prepare(request)
        for c in chunks:
            await resp.write(b"data: " + orjson.dumps(c) + b"\n\n")
        if fault != "midstream":
            await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        endpoint = "responses"
        key, model, req, stream, refused = await self._admit(request, endpoint)
        if refused is not None:
            return refused
        bad = R.validate(req)
        if bad is not None:
            self._log(key, model, bad[0], "bad_request", stream, endpoint)
            return _json(bad[1], bad[0])
        popped = self.faults.pop(key)
        fault = popped[1] if popped else None
        if fault is not None and fault != "midstream":
            return await self._fault(fault, key, model, stream, endpoint)
        answer = R.ResponsesAnswer(req)
        refused = self._quota(key, model, answer.prompt, stream, endpoint, popped)
        if refused is not None:
            return refused
        headers = self._limit_headers(key, model)
        seq = self._next_id()
        rid, created = f"resp_emu{seq:016x}", int(self.clock.time())
        if not stream:
            if fault == "midstream":
                self._log(key, model, 500, "internal", False, endpoint)
                return _json(O.server_error_body(), 500, headers)
            self._log(key, model, 200, "ok", False, endpoint)
            return _json(answer.response(req, rid, created, model, seq), 200, headers)
        events = answer.events(req, rid, created, model, seq)
        self._log(key, model, 200, "midstream" if fault else "ok", True, endpoint)
        resp = web.StreamResponse(status=200, headers={**SSE_HEADERS, **headers})
        if fault == "midstream":
            resp.force_close()
            events = events[:3] + [{"type": "error", "sequence_number": 3, "code": "server_error",
                                    "message": "The server had an error while processing your request.",
                                    "param": None}]
        await resp.prepare(request)
        for event in events:
            await resp.write(R.frame(event))
        await resp.write_eof()
        return resp

    async def _embeddings(self, request: web.Request) -> web.Response:
        endpoint = "embeddings"
        key, model, req, stream, refused = await self._admit(request, endpoint)
        if refused is not None:
            return refused
        inp = req.get("input") if isinstance(req, dict) else None
        if not model or inp is None or inp == "" or inp == []:
            param = "model" if not model else "input"
            body = O.error_body(f"Missing required parameter: '{param}'.", "invalid_request_error", param,
                                "missing_required_parameter")
            self._log(key, model, 400, "bad_request", False, endpoint)
            return _json(body, 400)
        texts = [inp] if isinstance(inp, str) else [t if isinstance(t, str) else orjson.dumps(t).decode() for t in inp]
        popped = self.faults.pop(key)
        fault = popped[1] if popped else None
        if fault is not None and fault != "midstream":
            return await self._fault(fault, key, model, False, endpoint)
        tokens = max(1, sum(len(t) for t in texts) // 4)
        refused = self._quota(key, model, tokens, False, endpoint, popped)
        if refused is not None:
            return refused
        headers = self._limit_headers(key, model)
        if fault == "midstream":
            self._log(key, model, 500, "internal", False, endpoint)
            return _json(O.server_error_body(), 500, headers)
        dims = req.get("dimensions")
        dims = dims if isinstance(dims, int) and 1 <= dims <= 3072 else 8
        b64 = req.get("encoding_format") == "base64"
        data = []
        for i, t in enumerate(texts):
            vals = embedding_values(t, dims)
            emb: Any = base64.b64encode(struct.pack(f"<{dims}f", *vals)).decode() if b64 else vals
            data.append({"object": "embedding", "index": i, "embedding": emb})
        self._log(key, model, 200, "ok", False, endpoint)
        body = {"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        return _json(body, 200, headers)

    async def _images(self, request: web.Request) -> web.Response:
        """gpt-image-1: always b64_json, with token usage; dall-e-*: `url` unless b64_json is asked."""
        endpoint = "images.generations"
        key, model, req, _, refused = await self._admit(request, endpoint)
        if refused is not None:
            return refused
        prompt = req.get("prompt") if isinstance(req, dict) else None
        if not isinstance(prompt, str) or not prompt:
            body = O.error_body("Missing required parameter: 'prompt'.", "invalid_request_error", "prompt",
                                "missing_required_parameter")
            self._log(key, model, 400, "bad_request", False, endpoint)
            return _json(body, 400)
        n = req.get("n") or 1
        popped = self.faults.pop(key)
        fault = popped[1] if popped else None
        if fault is not None and fault != "midstream":
            return await self._fault(fault, key, model, False, endpoint)
        tokens = max(1, len(prompt) // 4)
        refused = self._quota(key, model, tokens, False, endpoint, popped)
        if refused is not None:
            return refused
        headers = self._limit_headers(key, model)
        self._log(key, model, 200, "ok", False, endpoint)
        png = PNG_B64
        if model.startswith("dall-e"):
            if req.get("response_format") == "b64_json":
                items: list[dict[str, Any]] = [{"b64_json": png, "revised_prompt": prompt} for _ in range(n)]
            else:
                items = [{"url": f"https://oaidalleapiprodscus.blob.core.windows.net/emu/{i}.png",
                          "revised_prompt": prompt} for i in range(n)]
            return _json({"created": int(self.clock.time()), "data": items}, 200, headers)
        out = 1056 * n  # a 1024x1024 image at medium quality
        return _json({"created": int(self.clock.time()), "background": "opaque",
                      "data": [{"b64_json": png} for _ in range(n)], "output_format": "png", "quality": "medium",
                      "size": req.get("size") or "1024x1024",
                      "usage": {"input_tokens": tokens, "input_tokens_details": {"image_tokens": 0,
                                                                                 "text_tokens": tokens},
                                "output_tokens": out, "total_tokens": tokens + out}}, 200, headers)

    async def _image_edits(self, request: web.Request) -> web.Response:
        """multipart `image` / `image[]` (PNG, JPEG, WebP), `prompt`, `model`, `n`: gpt-image-1's answer shape."""
        endpoint = "images.edits"
        key, denied = self._auth(request)
        if denied:
            self._log(key, "", denied[0], denied[2], False, endpoint)
            return _json(denied[1], denied[0])
        form = await request.post()
        model, prompt = str(form.get("model") or ""), str(form.get("prompt") or "")
        images = [v for k, v in form.items() if k in ("image", "image[]") and isinstance(v, web.FileField)]
        if model not in self.models or not prompt or not images:
            param = "model" if model not in self.models else "prompt" if not prompt else "image"
            body = O.error_body(f"Missing required parameter: '{param}'.", "invalid_request_error", param,
                                "missing_required_parameter")
            self._log(key, model, 400, "bad_request", False, endpoint)
            return _json(body, 400)
        n = int(str(form.get("n") or 1))
        tokens = max(1, len(prompt) // 4) + 323 * len(images)
        refused = self._quota(key, model, tokens, False, endpoint, None)
        if refused is not None:
            return refused
        self._log(key, model, 200, "ok", False, endpoint)
        out = 1056 * n
        return _json({"created": int(self.clock.time()), "data": [{"b64_json": PNG_B64} for _ in range(n)],
                      "usage": {"input_tokens": tokens, "input_tokens_details": {"image_tokens": 323 * len(images),
                                                                                 "text_tokens": tokens - 323 * len(images)},
                                "output_tokens": out, "total_tokens": tokens + out}}, 200,
                     self._limit_headers(key, model))

    async def _speech(self, request: web.Request) -> web.Response:
        """Audio bytes: pcm (24 kHz 16-bit mono, 10 ms per character), wav around it, else a stand-in frame."""
        endpoint = "audio.speech"
        key, model, req, _, refused = await self._admit(request, endpoint)
        if refused is not None:
            return refused
        text = req.get("input") if isinstance(req, dict) else None
        if not isinstance(text, str) or not text or not req.get("voice"):
            param = "voice" if isinstance(text, str) and text else "input"
            body = O.error_body(f"Missing required parameter: '{param}'.", "invalid_request_error", param,
                                "missing_required_parameter")
            self._log(key, model, 400, "bad_request", False, endpoint)
            return _json(body, 400)
        refused = self._quota(key, model, max(1, len(text) // 4), False, endpoint, None)
        if refused is not None:
            return refused
        fmt = req.get("response_format") or "mp3"
        pcm = speech_pcm(text)
        audio = {"pcm": pcm, "wav": wav_bytes(pcm)}.get(fmt, b"\xff\xf3\x84\xc4" + bytes(100))
        types = {"pcm": "audio/pcm", "wav": "audio/wav", "mp3": "audio/mpeg", "opus": "audio/opus",
                 "aac": "audio/aac", "flac": "audio/flac"}
        self._log(key, model, 200, "ok", False, endpoint)
        return web.Response(body=audio, headers={"Content-Type": types.get(fmt, "audio/mpeg"),
                                                 **self._limit_headers(key, model)})

    async def _transcriptions(self, request: web.Request) -> web.Response:
        endpoint = "audio.transcriptions"
        key, denied = self._auth(request)
        if denied:
            self._log(key, "", denied[0], denied[2], False, endpoint)
            return _json(denied[1], denied[0])
        form = await request.post()
        model = str(form.get("model") or "")
        upload = form.get("file")
        if model not in self.models or not isinstance(upload, web.FileField):
            param = "file" if model in self.models else "model"
            body = O.error_body(f"Missing required parameter: '{param}'.", "invalid_request_error", param,
                                "missing_required_parameter")
            self._log(key, model, 400, "bad_request", False, endpoint)
            return _json(body, 400)
        data = upload.file.read()
        refused = self._quota(key, model, max(1, len(data) // 500), False, endpoint, None)
        if refused is not None:
            return refused
        text = f"Heard {len(data)} bytes of {upload.content_type}"
        self._log(key, model, 200, "ok", False, endpoint)
        if form.get("response_format") == "text":
            return web.Response(text=text + "\n", content_type="text/plain")
        tokens_in, tokens_out = max(1, len(data) // 500), max(1, len(text) // 4)
        return _json({"text": text, "usage": {"type": "tokens", "input_tokens": tokens_in,
                                              "output_tokens": tokens_out, "total_tokens": tokens_in + tokens_out}},
                     200, self._limit_headers(key, model))

    async def _list_models(self, request: web.Request) -> web.Response:
        key, denied = self._auth(request)
        await self._delay()
        if denied:
            self._log(key, "", denied[0], denied[2], False, "models.list")
            return _json(denied[1], denied[0])
        self._log(key, "", 200, "ok", False, "models.list")
        return _json({"object": "list", "data": [self._model_obj(m) for m in self.models]})

    async def _get_model(self, request: web.Request) -> web.Response:
        key, denied = self._auth(request)
        model = request.match_info["model"]
        await self._delay()
        if denied:
            self._log(key, model, denied[0], denied[2], False, "models.get")
            return _json(denied[1], denied[0])
        if model not in self.models:
            body = O.error_body(f"The model '{model}' does not exist", "invalid_request_error", "model",
                                "model_not_found")
            self._log(key, model, 404, "not_found", False, "models.get")
            return _json(body, 404)
        self._log(key, model, 200, "ok", False, "models.get")
        return _json(self._model_obj(model))

    @staticmethod
    def _model_obj(model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": CREATED, "owned_by": "system"}
