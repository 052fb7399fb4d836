"""POST /v1/embeddings on a Gemini key (batchEmbedContents, translated) or an OpenAI key (passed through)."""

from __future__ import annotations

from typing import Any

import orjson

from keymux.config.schema import DeploymentConfig
from keymux.exchange.base import Usage
from keymux.exchange.whole import WholeAnswer
from keymux.providers import gemini, openai
from keymux.translate import embeddings as E
from keymux.translate.providers import openai as openai_codec


class GeminiEmbeddings(WholeAnswer):
    provider = "gemini"
    operation = "embeddings"

    def __init__(self, body: dict[str, Any], model: str) -> None:
        E.check_options(body)
        self._body = body
        self._model = model
        self._texts = E.gemini_texts(E.inputs(body))  # refuses token arrays before any quota is spent
        self.estimated_tokens = E.estimate_tokens(self._texts)
        self._encoded: dict[str, bytes] = {}

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        data = self._encoded.get(dep.model)
        if data is None:
            data = self._encoded[dep.model] = E.gemini_request(self._body, dep.model, self._texts)
        return gemini.model_url(dep.api_base, dep.model, "batchEmbedContents"), gemini.auth_headers(dep.api_key), data

    def answered(self, raw: bytes) -> bool:
        return E.gemini_answered(raw)

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        return E.from_gemini(raw, self._body, self._model, self.estimated_tokens, len(self._texts))


class OpenAIEmbeddings(WholeAnswer):
    provider = "openai"
    operation = "embeddings"

    def __init__(self, body: dict[str, Any]) -> None:
        E.check_options(body)
        self._body = body
        self.estimated_tokens = E.estimate_tokens(E.inputs(body))
        self._encoded: dict[str, bytes] = {}

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        data = self._encoded.get(dep.model)
        if data is None:
            data = self._encoded[dep.model] = orjson.dumps({**self._body, "model": dep.model})
        return openai.endpoint_url(dep.api_base, "embeddings"), openai.auth_headers(dep.api_key), data

    def answered(self, raw: bytes) -> bool:
        return raw.find(b'"data"') >= 0

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        doc = orjson.loads(raw)
        usage = doc.get("usage") if isinstance(doc, dict) else None
        return raw, openai_codec.usage(usage) if usage else None
