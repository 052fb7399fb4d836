"""OpenAI chat client -> Gemini key: translate the request once, each answer back."""

from __future__ import annotations

import time
from typing import Any, Mapping

import orjson

from keymux.config.schema import DeploymentConfig
from keymux.exchange.base import Usage
from keymux.exchange.shapes import openai_error
from keymux.ids import new_id
from keymux.providers import gemini
from keymux.providers.base import Verdict
from keymux.translate.openai_gemini import (
    StreamToOpenAI,
    estimate_prompt_tokens,
    request_to_gemini,
    response_from_gemini,
)
from keymux.translate.sse import sse_event


class StreamBroken(Exception):
    """The upstream sent an error object inside a 200 stream."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def gemini_chunk(payload: bytes) -> dict[str, Any]:
    chunk = orjson.loads(payload)
    if isinstance(chunk, list) and chunk:
        chunk = chunk[0]
    if not isinstance(chunk, dict):
        raise StreamBroken(502, "upstream sent a malformed stream chunk")
    err = chunk.get("error")
    if isinstance(err, dict):
        raise StreamBroken(int(err.get("code") or 500), str(err.get("message") or "upstream error"))
    return chunk


class _OpenAIStream:
    def __init__(self, model: str, include_usage: bool) -> None:
        self._t = StreamToOpenAI(model=model, response_id=f"chatcmpl-{new_id()}",
                                 created=int(time.time()), include_usage=include_usage)

    @property
    def usage(self) -> Usage | None:
        return Usage.from_openai(self._t.usage)  # the translator keeps the last usage Gemini reported

    def feed(self, payload: bytes) -> list[bytes]:
        return [sse_event(orjson.dumps(c)) for c in self._t.feed(gemini_chunk(payload))]

    def finish(self) -> list[bytes]:
        return [sse_event(orjson.dumps(c)) for c in self._t.finish()] + [b"data: [DONE]\n\n"]

    def error(self, status: int, message: str) -> bytes:
        return sse_event(openai_error(status, message))


class OpenAIToGemini:
    provider = "gemini"

    def __init__(self, body: dict[str, Any], *, model: str, drop_params: bool, include_usage: bool) -> None:
        self._body = orjson.dumps(request_to_gemini(body, drop_params=drop_params))
        self._model = model
        self._include_usage = include_usage
        self.estimated_tokens = estimate_prompt_tokens(body)

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        method = "streamGenerateContent" if stream else "generateContent"
        return gemini.model_url(dep.api_base, dep.model, method, stream), gemini.auth_headers(dep.api_key), self._body

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        resp = orjson.loads(raw)
        if isinstance(resp, list) and resp:
            resp = resp[0]
        out = response_from_gemini(resp, model=self._model, response_id=f"chatcmpl-{new_id()}",
                                   created=int(time.time()))
        return orjson.dumps(out), Usage.from_gemini(resp.get("usageMetadata"))

    def stream(self) -> _OpenAIStream:
        return _OpenAIStream(self._model, self._include_usage)

    def error(self, status: int, raw: bytes, verdict: Verdict) -> bytes:
        err = gemini.error_object(raw)
        message = str(err.get("message") or verdict.reason or f"upstream answered {status}")
        return openai_error(status, message, code=str(err.get("status") or status))

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes, now: float) -> Verdict:
        return gemini.classify(status, raw, now)
