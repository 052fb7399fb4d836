"""Gemini client -> OpenAI(-compatible) key: translate both ways through the OpenAI shape."""

from __future__ import annotations

from typing import Any, Mapping

import orjson

from keymux.config.schema import DeploymentConfig
from keymux.exchange.base import Usage
from keymux.exchange.openai_gemini import StreamBroken
from keymux.exchange.shapes import gemini_error
from keymux.providers import openai
from keymux.providers.base import Verdict
from keymux.translate.gemini_openai import StreamToGemini, request_to_openai, response_to_gemini
from keymux.translate.openai_gemini import estimate_gemini_prompt_tokens
from keymux.translate.sse import sse_event


class _GeminiStream:
    def __init__(self) -> None:
        self._t = StreamToGemini()

    @property
    def usage(self) -> Usage | None:
        return Usage.from_openai(self._t.usage)  # the translator keeps the upstream's last usage

    def feed(self, payload: bytes) -> list[bytes]:
        if payload == b"[DONE]":
            return []
        chunk = orjson.loads(payload)
        if isinstance(chunk, dict) and isinstance(chunk.get("error"), dict):
            raise StreamBroken(502, str(chunk["error"].get("message") or "upstream error"))
        return [sse_event(orjson.dumps(c)) for c in self._t.feed(chunk)]

    def finish(self) -> list[bytes]:
        return [sse_event(orjson.dumps(c)) for c in self._t.finish()]

    def error(self, status: int, message: str) -> bytes:
        return sse_event(gemini_error(status, message))


class GeminiToOpenAI:
    provider = "openai"

    def __init__(self, body: dict[str, Any], *, model: str) -> None:
        self._body = body
        self._by_model: dict[tuple[str, bool], bytes] = {}
        self.estimated_tokens = estimate_gemini_prompt_tokens(body)

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        data = self._by_model.get((dep.model, stream))
        if data is None:
            req = request_to_openai(self._body, model=dep.model)
            if stream:
                req["stream"] = True
                req["stream_options"] = {"include_usage": True}
            data = self._by_model[(dep.model, stream)] = orjson.dumps(req)
        return openai.chat_url(dep.api_base), openai.auth_headers(dep.api_key), data

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        doc = orjson.loads(raw)
        return orjson.dumps(response_to_gemini(doc)), Usage.from_openai(doc.get("usage"))

    def stream(self) -> _GeminiStream:
        return _GeminiStream()

    def error(self, status: int, raw: bytes, verdict: Verdict) -> bytes:
        err = openai.error_object(raw)
        return gemini_error(status, str(err.get("message") or verdict.reason or f"upstream answered {status}"))

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes, now: float) -> Verdict:
        return openai.classify(status, headers, raw, now)
