"""OpenAI Responses client -> OpenAI key: pass through, only the model name changes. Stream events keep
their names (the `event:` line is the event's own `type`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from keymux.config.schema import DeploymentConfig
from keymux.exchange.base import StreamBroken, Usage
from keymux.exchange.openai_openai import passed_error
from keymux.providers import openai
from keymux.providers import openai_responses as wire
from keymux.providers.base import Verdict
from keymux.translate import defaults
from keymux.translate.clients import openai_responses as client
from keymux.translate.sse import sse_event


def usage(doc: Any) -> Usage | None:
    if not isinstance(doc, dict):
        return None
    details = doc.get("output_tokens_details") or {}
    cached = doc.get("input_tokens_details") or {}
    return Usage(prompt=doc.get("input_tokens") or 0, completion=doc.get("output_tokens") or 0,
                 reasoning=details.get("reasoning_tokens") or 0, total=doc.get("total_tokens") or 0,
                 cached=cached.get("cached_tokens") or 0)


class _PassStream:
    __slots__ = ("usage", "complete")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.complete = False

    def feed(self, payload: bytes) -> list[bytes]:
        kind = wire.event_type(payload)
        if kind in wire.FINAL:
            self.complete = True
            event = orjson.loads(payload)
            self.usage = usage((event.get("response") or {}).get("usage"))
        elif kind in wire.FAILED:
            event = orjson.loads(payload)
            err = event if kind == b"error" else (event.get("response") or {}).get("error") or {}
            raise StreamBroken(502, str(err.get("message") or "upstream error"))
        return [sse_event(payload, event=kind or None)]

    def finish(self) -> list[bytes]:
        return []

    def error(self, status: int, message: str) -> bytes:
        return client.StreamEncoder("").error(status, message)


class OpenAIResponsesPassthrough:
    provider = "openai"

    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body
        self._by_model: dict[str, bytes] = {}
        self.estimated_tokens = client.estimate_tokens(body)

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        data = self._by_model.get(dep.model)
        if data is None:
            data = self._by_model[dep.model] = orjson.dumps({**self._body, "model": dep.model})
        auth = openai.auth_headers(dep.api_key)
        return wire.url(dep.api_base), defaults.headers(dep.defaults, auth) if dep.defaults else auth, data

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        doc = orjson.loads(raw)
        return raw, usage(doc.get("usage")) if isinstance(doc, dict) else None

    def answered(self, raw: bytes) -> bool:
        return wire.answered(raw)

    def stream(self) -> _PassStream:
        return _PassStream()

    def error(self, status: int, raw: bytes, verdict: Verdict) -> bytes:
        return passed_error(status, raw, verdict)

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes, now: float) -> Verdict:
        return openai.classify(status, headers, raw, now)
