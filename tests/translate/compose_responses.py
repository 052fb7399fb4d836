"""The Responses <-> Gemini compositions the golden fixtures describe, built from the codecs exactly as
keymux/exchange/translating.py composes them."""

from __future__ import annotations

from typing import Any

from keymux.translate.clients import openai_responses
from keymux.translate.clients.openai_responses_items import response_doc
from keymux.translate.providers import gemini as gemini_provider

Json = dict[str, Any]


def request_to_gemini(body: Any, *, drop_params: bool = False) -> Json:
    return gemini_provider.request_body(openai_responses.decode_request(body, drop_params=drop_params,
                                                                        target=gemini_provider))


def response_from_gemini(resp: Json, *, model: str, response_id: str, created: int) -> Json:
    return response_doc(gemini_provider.response(resp), model=model, response_id=response_id, created=created)


class StreamFromGemini:
    """Gemini stream chunks (objects, or SSE payload bytes) -> Responses event objects."""

    def __init__(self, *, model: str, response_id: str, created: int) -> None:
        self._dec = gemini_provider.StreamDecoder()
        self._enc = openai_responses.StreamEncoder(model, response_id=response_id, created=created)

    def feed(self, payload: bytes) -> list[Json]:
        delta = self._dec.feed(payload)
        return self._enc.events(delta) if delta is not None else []

    def finish(self) -> list[Json]:
        leftover = self._dec.finish()
        return (self._enc.events(leftover) if leftover is not None else []) + self._enc.final_events()

    def error(self, status: int, message: str) -> list[Json]:
        return self._enc.error_events(status, message)
