"""Gemini client -> Gemini key: the body passes through untouched, both ways."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from keymux.config.schema import DeploymentConfig
from keymux.exchange.base import Usage
from keymux.exchange.shapes import gemini_error
from keymux.providers import gemini
from keymux.providers.base import Verdict
from keymux.translate import defaults
from keymux.translate.estimate import estimate_gemini_prompt_tokens
from keymux.translate.providers import gemini as codec
from keymux.translate.sse import sse_event


class _PassStream:
    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.complete = False

    def feed(self, payload: bytes) -> list[bytes]:
        if not self.complete:
            self.complete = gemini.ends_stream(payload)
        # Parse only what we must look at: errors, and the usage in the last chunks.
        head = payload[:16]
        if head.find(b"error") >= 0 or payload.find(b"usageMetadata") >= 0:
            chunk = codec.chunk(payload)
            if "usageMetadata" in chunk:
                self.usage = codec.usage(chunk["usageMetadata"] or None)
        return [sse_event(payload, crlf=True)]

    def finish(self) -> list[bytes]:
        return []

    def error(self, status: int, message: str) -> bytes:
        return sse_event(gemini_error(status, message))


class GeminiPassthrough:
    provider = "gemini"

    def __init__(self, body: dict[str, Any], raw: bytes, method: str = "generateContent") -> None:
        self._body = body
        self._raw = raw
        self._with_defaults: dict[str, bytes] = {}
        self.method = method
        self.estimated_tokens = estimate_gemini_prompt_tokens(body)

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        method = "streamGenerateContent" if stream else self.method
        raw = self._raw  # byte-for-byte, unless the deployment has default params to fill in
        if dep.defaults:
            raw = self._with_defaults.get(dep.id) or self._with_defaults.setdefault(
                dep.id, orjson.dumps(defaults.gemini_body(self._body, dep.defaults)))
        return gemini.model_url(dep.api_base, dep.model, method, stream), \
            defaults.headers(dep.defaults, gemini.auth_headers(dep.api_key)), raw

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        usage = None
        if raw.find(b"usageMetadata") >= 0:
            doc = orjson.loads(raw)
            if isinstance(doc, list) and doc:
                doc = doc[-1]
            if isinstance(doc, dict):
                usage = codec.usage(doc.get("usageMetadata") or None)
        return raw, usage

    def answered(self, raw: bytes) -> bool:
        return self.method != "generateContent" or gemini.answered(raw)

    def stream(self) -> _PassStream:
        return _PassStream()

    def error(self, status: int, raw: bytes, verdict: Verdict) -> bytes:
        if gemini.error_object(raw):
            return raw
        return gemini_error(status, verdict.reason or f"upstream answered {status}")

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes, now: float) -> Verdict:
        return gemini.classify(status, raw, now)
