"""Pivot <-> Gemini on Vertex AI: Gemini's bodies (translate/providers/gemini.py) at Vertex's addresses.

A Vertex deployment's api_base is its model prefix (`.../v1/projects/P/locations/L/publishers/google`), and
the key `address` is handed is the access token minted for the call (keymux/attempt.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from keymux.providers import vertex as wire
from keymux.providers.base import Addressed, Verdict
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


def address(dep: Addressed, stream: bool) -> tuple[str, dict[str, str]]:
    method = "streamGenerateContent" if stream else "generateContent"
    return wire.model_url(dep.api_base, dep.model, method, stream), wire.auth_headers(dep.api_key)


def classify(status: int, response_headers: Mapping[str, str], raw: bytes, now: float) -> Verdict:
    return wire.classify(status, raw, now)


__all__ = ["StreamDecoder", "address", "classify", "decode_response", "encode_request", "error_details", "label",
           "name", "takes_inline", "takes_url"]
