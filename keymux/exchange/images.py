"""POST /v1/images/generations and /v1/images/edits on Gemini keys (generateContent for image models, :predict for Imagen, picked per
deployment's model) or OpenAI keys (passed through)."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from keymux.config.schema import DeploymentConfig
from keymux.errors import BadRequest
from keymux.exchange.base import Usage
from keymux.exchange.whole import WholeAnswer
from keymux.providers import gemini, openai
from keymux.translate import images as I
from keymux.translate import multipart
from keymux.translate.estimate import IMAGE_TOKENS as IMAGE_INPUT_TOKENS
from keymux.translate.model_kinds import is_imagen


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
        return raw.find(b'"data"') >= 0

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        doc = orjson.loads(raw)
        u = doc.get("usage") if isinstance(doc, dict) else None
        images = len(doc.get("data") or ()) if isinstance(doc, dict) else 0
        if not isinstance(u, dict):
            return raw, Usage(images=images)
        prompt, completion = int(u.get("input_tokens") or 0), int(u.get("output_tokens") or 0)
        return raw, Usage(prompt=prompt, completion=completion,
                          total=int(u.get("total_tokens") or 0) or prompt + completion, images=images)


def _uploads(body: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((f["mime"], f["data"]) for f in body.get("images") or ())


class GeminiImageEdits(GeminiImages):
    """The uploaded images go in as inlineData before the prompt; Imagen's :predict edits nothing here."""

    operation = "image edits"

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body)
        if body.get("mask"):
            raise BadRequest("'mask' is not available on Gemini image models: say in the prompt what to change",
                             param="mask")
        self.estimated_tokens += IMAGE_INPUT_TOKENS * len(_uploads(body))

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        if is_imagen(dep.model):
            raise BadRequest(f"{dep.model} only generates images; edit with a Gemini image model", param="model")
        found = self._encoded.get(dep.model)
        if found is None:
            found = self._encoded[dep.model] = ("generateContent", I.gemini_request(self._body, _uploads(self._body)))
        return (gemini.model_url(dep.api_base, dep.model, found[0]), gemini.auth_headers(dep.api_key), found[1])


class OpenAIImageEdits(OpenAIImages):
    operation = "image edits"

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        skip = ("images", "mask", "model")
        fields = {k: str(v) for k, v in self._body.items() if k not in skip}
        fields["model"] = dep.model
        images = self._body.get("images") or []
        field = "image[]" if len(images) > 1 else "image"
        files = [(field, f["filename"], f["mime"], base64.b64decode(f["data"])) for f in images]
        mask = self._body.get("mask")
        if mask:
            files.append(("mask", mask["filename"], mask["mime"], base64.b64decode(mask["data"])))
        ctype, data = multipart.encode(fields, files)
        return (openai.endpoint_url(dep.api_base, "images/edits"),
                {**openai.auth_headers(dep.api_key), "content-type": ctype}, data)
