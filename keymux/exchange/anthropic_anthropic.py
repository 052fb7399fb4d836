"""Anthropic client -> Anthropic key: the body passes through untouched (cache_control, thinking
signatures, server tools and all); only `model` is set when the deployment's upstream model differs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from keymux.config.schema import DeploymentConfig
from keymux.errors import StreamBroken
from keymux.exchange.base import Usage
from keymux.providers import anthropic
from keymux.providers.base import Verdict
from keymux.translate import defaults
from keymux.translate.clients.anthropic import estimate_tokens
from keymux.translate.error_bodies import anthropic_error
from keymux.translate.providers import anthropic as codec
from keymux.translate.sse import sse_event

_TYPE = re.compile(rb'"type"\s*:\s*"([a-z_]+)"')
_STATUS = {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500}


class _PassStream:
    """Events go out as they came, re-framed with their name (the `type` every Anthropic event leads with)."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.complete = False
        self._usage: dict[str, Any] = {}

    def feed(self, payload: bytes) -> list[bytes]:
        m = _TYPE.search(payload)
        name = m.group(1) if m else b"message"
        if name == b"message_stop":
            self.complete = True
        elif name in (b"message_start", b"message_delta"):
            event = orjson.loads(payload)
            found = (event.get("message") or {}).get("usage") if name == b"message_start" else event.get("usage")
            self._usage.update(found or {})
            self.usage = codec.usage(self._usage)
        elif name == b"error":
            err = orjson.loads(payload).get("error") or {}
            raise StreamBroken(_STATUS.get(str(err.get("type")), 500), str(err.get("message") or "upstream error"))
        return [sse_event(payload, event=name)]

    def finish(self) -> list[bytes]:
        return []

    def error(self, status: int, message: str) -> bytes:
        return sse_event(anthropic_error(status, message), event=b"error")


class AnthropicPassthrough:
    provider = "anthropic"

    def __init__(self, body: dict[str, Any], raw: bytes) -> None:
        self._body = body
        self._raw = raw
        self._by_model: dict[str, bytes] = {}
        self.estimated_tokens = estimate_tokens(body)

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        data = self._raw if self._body.get("model") == dep.model else self._by_model.get(dep.model)
        if data is None:
            data = self._by_model[dep.model] = orjson.dumps({**self._body, "model": dep.model})
        auth = anthropic.auth_headers(dep.api_key)
        return anthropic.messages_url(dep.api_base), defaults.headers(dep.defaults, auth) if dep.defaults else auth, data

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        doc = orjson.loads(raw)
        return raw, codec.usage(doc.get("usage")) if isinstance(doc, dict) else None

    def answered(self, raw: bytes) -> bool:
        return anthropic.answered(raw)

    def stream(self) -> _PassStream:
        return _PassStream()

    def error(self, status: int, raw: bytes, verdict: Verdict) -> bytes:
        err = anthropic.error_object(raw)
        if err:
            return anthropic_error(status, str(err.get("message") or verdict.reason), kind=str(err.get("type")))
        return anthropic_error(status, verdict.reason or f"upstream answered {status}")

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes, now: float) -> Verdict:
        return anthropic.classify(status, headers, raw, now)
