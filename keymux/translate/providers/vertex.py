"""Pivot <-> Gemini on Vertex AI: Gemini's bodies (translate/providers/gemini.py) at Vertex's addresses.

A Vertex deployment's api_base is its model prefix (`.../v1/projects/P/locations/L/publishers/google`), and
the key handed to `headers` is the access token minted for the call (keymux/attempt.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from keymux.providers import vertex as wire
from keymux.providers.base import Verdict
from keymux.translate.providers.gemini import (
    StreamDecoder,
    decode_response,
    encode_request,
    error_details,
    takes_inline,
    takes_url,
)

name = "vertex_ai"
label = "Gemini models on Vertex AI"


def url(api_base: str | None, model: str, stream: bool) -> str:
    return wire.model_url(api_base, model, "streamGenerateContent" if stream else "generateContent", stream)


headers = wire.auth_headers


def classify(status: int, response_headers: Mapping[str, str], raw: bytes, now: float) -> Verdict:
    return wire.classify(status, raw, now)


__all__ = ["StreamDecoder", "classify", "decode_response", "encode_request", "error_details", "headers", "label",
           "name", "takes_inline", "takes_url", "url"]
