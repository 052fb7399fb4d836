"""The OpenAI operations that are not chat (embeddings, images, audio): one small exchange each per provider,
selected by (operation, provider). A provider an operation has no mapping for is a clear 400."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keymux.errors import BadRequest
from keymux.exchange.audio import GeminiSpeech, GeminiTranscription, OpenAISpeech, OpenAITranscription
from keymux.exchange.base import Exchange
from keymux.exchange.embeddings import GeminiEmbeddings, OpenAIEmbeddings
from keymux.exchange.images import GeminiImageEdits, GeminiImages, OpenAIImageEdits, OpenAIImages

Factory = Callable[[dict[str, Any], str], Exchange]

OPERATIONS: dict[str, dict[str, Factory]] = {
    "embeddings": {"gemini": lambda body, model: GeminiEmbeddings(body, model),
                   "openai": lambda body, model: OpenAIEmbeddings(body)},
    "images": {"gemini": lambda body, model: GeminiImages(body),
               "openai": lambda body, model: OpenAIImages(body)},
    "image_edits": {"gemini": lambda body, model: GeminiImageEdits(body),
                    "openai": lambda body, model: OpenAIImageEdits(body)},
    "speech": {"gemini": lambda body, model: GeminiSpeech(body),
               "openai": lambda body, model: OpenAISpeech(body)},
    "transcriptions": {"gemini": lambda body, model: GeminiTranscription(body),
                       "openai": lambda body, model: OpenAITranscription(body)},
}


def operation_exchange(operation: str, provider: str, *, body: dict[str, Any], model: str) -> Exchange:
    factory = OPERATIONS[operation].get(provider)
    if factory is None:
        raise BadRequest(f"{operation} is not available for model groups served by {provider} keys")
    return factory(body, model)
