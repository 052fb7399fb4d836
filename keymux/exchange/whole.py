"""What the exchanges of whole-answer operations (embeddings, images, audio) share: no streaming, and upstream
errors rendered in OpenAI's shape whichever provider answered."""

from __future__ import annotations

from collections.abc import Mapping

from keymux.errors import BadRequest
from keymux.exchange.base import StreamTranslator
from keymux.exchange.shapes import openai_error
from keymux.providers import gemini, openai
from keymux.providers.base import Verdict


class WholeAnswer:
    """Base of an operation's exchange: `provider` says which provider module classifies the answer."""

    provider = "gemini"
    estimated_tokens = 0
    operation = "this endpoint"

    def stream(self) -> StreamTranslator:
        raise BadRequest(f"streaming is not available for {self.operation}", param="stream")

    def error(self, status: int, raw: bytes, verdict: Verdict) -> bytes:
        if self.provider == "openai":
            err = openai.error_object(raw)
            if err:
                return openai_error(status, str(err.get("message") or verdict.reason), kind=err.get("type"),
                                    code=err.get("code"), param=err.get("param"))
        else:
            err = gemini.error_object(raw)
            if err.get("message"):
                return openai_error(status, str(err["message"]), code=err.get("status") or None)
        return openai_error(status, verdict.reason or f"upstream answered {status}")

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes, now: float) -> Verdict:
        if self.provider == "openai":
            return openai.classify(status, headers, raw, now)
        return gemini.classify(status, raw, now)
