"""The (client API, provider) compositions the golden fixtures describe, built from the codecs exactly as
keymux/exchange/translating.py composes them: client decoder -> pivot -> provider encoder, and back."""

from __future__ import annotations

from typing import Any

from keymux.translate.clients import gemini as gemini_client
from keymux.translate.clients import openai_chat
from keymux.translate.pivot import Usage
from keymux.translate.providers import gemini as gemini_provider
from keymux.translate.providers import openai as openai_provider

Json = dict[str, Any]


def request_to_gemini(body: Any, *, drop_params: bool) -> Json:
    return gemini_provider.request_body(openai_chat.decode_request(body, drop_params=drop_params,
                                                                   target=gemini_provider))


def response_from_gemini(resp: Json, *, model: str, response_id: str, created: int) -> Json:
    return openai_chat.response_doc(gemini_provider.response(resp), model=model, response_id=response_id,
                                    created=created)


def usage_from_gemini(metadata: Any) -> Json | None:
    usage = gemini_provider.usage(metadata)
    return openai_chat.usage_doc(usage) if usage is not None else None


class StreamToOpenAI:
    def __init__(self, *, model: str, response_id: str, created: int, include_usage: bool) -> None:
        self._enc = openai_chat.StreamEncoder(model, include_usage, response_id=response_id, created=created)

    @property
    def usage(self) -> Json | None:
        return openai_chat.usage_doc(self._enc.usage) if self._enc.usage is not None else None

    def feed(self, chunk: Any) -> list[Json]:
        if not isinstance(chunk, dict):
            return []
        return self._enc.chunks(gemini_provider.delta(chunk))

    def finish(self) -> list[Json]:
        return self._enc.final_chunks()


def request_to_openai(body: Any, *, model: str) -> Json:
    return openai_provider.request_body(gemini_client.decode_request(body, drop_params=False,
                                                                     target=openai_provider), model)


def response_to_gemini(resp: Json) -> Json:
    return gemini_client.response_doc(openai_provider.response(resp))


class StreamToGemini:
    def __init__(self, *, model: str | None = None) -> None:
        self._dec = openai_provider.StreamDecoder()
        self._enc = gemini_client.StreamEncoder(model_version=model)

    @property
    def usage(self) -> Usage | None:
        """What the ledger records: the pivot usage of the upstream's last usage chunk."""
        return self._enc.usage

    def feed(self, chunk: Any) -> list[Json]:
        delta = self._dec.feed_doc(chunk)
        return self._enc.chunks(delta) if delta is not None else []

    def finish(self) -> list[Json]:
        leftover = self._dec.finish()
        return (self._enc.chunks(leftover) if leftover is not None else []) + self._enc.final_chunks()
