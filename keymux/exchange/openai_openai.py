"""OpenAI client -> OpenAI(-compatible) key: pass through, only the model name changes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from keymux.config.schema import DeploymentConfig
from keymux.exchange.base import StreamBroken, Usage
from keymux.exchange.shapes import openai_error
from keymux.providers import openai
from keymux.providers.base import Verdict
from keymux.translate import defaults
from keymux.translate.estimate import estimate_prompt_tokens
from keymux.translate.providers import openai as codec
from keymux.translate.sse import DONE, sse_event


class _PassStream:
    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.complete = False
        self._done = False

    def feed(self, payload: bytes) -> list[bytes]:
        if not self.complete:
            self.complete = openai.ends_stream(payload)
        if payload == b"[DONE]":
            self._done = True
        elif payload.find(b'"usage"') >= 0 or payload.find(b'"error"', 0, 16) >= 0:
            chunk = orjson.loads(payload)
            if isinstance(chunk, dict):
                if isinstance(chunk.get("error"), dict):
                    err = chunk["error"]
                    raise StreamBroken(502, str(err.get("message") or "upstream error"))
                if chunk.get("usage"):
                    self.usage = codec.usage(chunk["usage"])
        return [sse_event(payload)]

    def finish(self) -> list[bytes]:
        return [] if self._done else [DONE]

    def error(self, status: int, message: str) -> bytes:
        return sse_event(openai_error(status, message))


class OpenAIPassthrough:
    provider = "openai"

    def __init__(self, body: dict[str, Any], raw: bytes) -> None:
        self._body = body
        self._by_model: dict[str, bytes] = {}
        self.estimated_tokens = estimate_prompt_tokens(body)

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        key = dep.id if dep.defaults else dep.model  # a deployment with default params gets its own body
        data = self._by_model.get(key)
        if data is None:
            body = defaults.openai_body(self._body, dep.defaults) if dep.defaults else self._body
            data = self._by_model[key] = orjson.dumps({**body, "model": dep.model})
        url, auth = openai.chat_address(dep)
        return url, defaults.headers(dep.defaults, auth), data

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        doc = orjson.loads(raw)
        return raw, codec.usage(doc.get("usage") if isinstance(doc, dict) and doc.get("usage") else None)

    def answered(self, raw: bytes) -> bool:
        return openai.answered(raw)

    def stream(self) -> _PassStream:
        return _PassStream()

    def error(self, status: int, raw: bytes, verdict: Verdict) -> bytes:
        return passed_error(status, raw, verdict)

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes, now: float) -> Verdict:
        return openai.classify(status, headers, raw, now)


def passed_error(status: int, raw: bytes, verdict: Verdict) -> bytes:
    """An OpenAI upstream's error, kept as it said it (type, code, param), for an OpenAI client."""
    err = openai.error_object(raw)
    if err:
        return openai_error(status, str(err.get("message") or verdict.reason), kind=err.get("type"),
                            code=err.get("code"), param=err.get("param"))
    return openai_error(status, verdict.reason or f"upstream answered {status}")
