"""POST /v1/images/generations on Gemini keys (generateContent for image models, :predict for Imagen, picked per
deployment's model) or OpenAI keys (passed through)."""

from __future__ import annotations

from typing import Any

import orjson

from keymux.config.schema import DeploymentConfig
from keymux.exchange.base import Usage
from keymux.exchange.whole import WholeAnswer
from keymux.providers import gemini, openai
from keymux.translate import images as I


def prompt_tokens(body: dict[str, Any]) -> int:
    return max(1, -(-len(str(body.get("prompt") or "")) // 4))


class GeminiImages(WholeAnswer):
    provider = "gemini"
    operation = "image generation"

    def __init__(self, body: dict[str, Any]) -> None:
        I.check(body)
        self._body = body
        self.estimated_tokens = prompt_tokens(body)
        self._encoded: dict[str, tuple[str, bytes]] = {}

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        found = self._encoded.get(dep.model)
        if found is None:
            found = self._encoded[dep.model] = I.request_for(dep.model, self._body)
        method, data = found
        return gemini.model_url(dep.api_base, dep.model, method), gemini.auth_headers(dep.api_key), data

    def answered(self, raw: bytes) -> bool:
        return I.answered(raw)

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        return I.from_gemini(raw, self.estimated_tokens)


class OpenAIImages(WholeAnswer):
    provider = "openai"
    operation = "image generation"

    def __init__(self, body: dict[str, Any]) -> None:
        I.check(body)
        self._body = body
        self.estimated_tokens = prompt_tokens(body)

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        data = orjson.dumps({**self._body, "model": dep.model})
        return openai.endpoint_url(dep.api_base, "images/generations"), openai.auth_headers(dep.api_key), data

    def answered(self, raw: bytes) -> bool:
        return b'"data"' in raw

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        doc = orjson.loads(raw)
        u = doc.get("usage") if isinstance(doc, dict) else None
        images = len(doc.get("data") or ()) if isinstance(doc, dict) else 0
        if not isinstance(u, dict):
            return raw, Usage(images=images)
        prompt, completion = int(u.get("input_tokens") or 0), int(u.get("output_tokens") or 0)
        return raw, Usage(prompt=prompt, completion=completion,
                          total=int(u.get("total_tokens") or 0) or prompt + completion, images=images)
