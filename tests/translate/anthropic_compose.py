"""The Anthropic compositions the golden fixtures in fixtures/anthropic/ describe, built from the codecs as
keymux/exchange/translating.py composes them (client decoder -> pivot -> provider encoder, and back)."""

from __future__ import annotations

from typing import Any

import orjson

from keymux.translate.clients import anthropic as anthropic_client
from keymux.translate.clients import openai_chat
from keymux.translate.providers import anthropic as anthropic_provider
from keymux.translate.providers import gemini as gemini_provider
from keymux.translate.providers import openai as openai_provider
from keymux.translate.sse import SSEDecoder

Json = dict[str, Any]
PROVIDERS = {"gemini": gemini_provider, "openai": openai_provider}


def request_to(provider: str, body: Json, drop_params: bool = False) -> Json:
    codec = PROVIDERS[provider]
    req = anthropic_client.decode_request(body, drop_params=drop_params, target=codec)
    return orjson.loads(codec.encode_request(req, "upstream-model", False))


def response_from_gemini(doc: Json) -> Json:
    return anthropic_client.response_doc(gemini_provider.response(doc), model="claude", message_id="msg_1")


def stream_from_gemini(payloads: list[bytes]) -> list[list[Any]]:
    enc = anthropic_client.StreamEncoder("claude", message_id="msg_1")
    dec = gemini_provider.StreamDecoder()
    frames: list[bytes] = []
    for payload in payloads:
        delta = dec.feed(payload)
        if delta is not None:
            frames += enc.feed(delta)
    frames += enc.finish()
    return named_events(frames)


def named_events(frames: list[bytes]) -> list[list[Any]]:
    """[[event name, data], ...] of SSE frames (each frame is one named event)."""
    out = []
    for frame in frames:
        head, data = frame.split(b"\n", 1)
        assert head.startswith(b"event: ") and data.startswith(b"data: ") and frame.endswith(b"\n\n")
        out.append([head[7:].decode(), orjson.loads(data[6:])])
    return out


def request_to_anthropic(openai_body: Json) -> Json:
    req = openai_chat.decode_request(openai_body, drop_params=False, target=anthropic_provider)
    return orjson.loads(anthropic_provider.encode_request(req, "claude-sonnet-4-5", False))


def response_to_openai(message: Json) -> Json:
    resp = anthropic_provider.decode_response(orjson.dumps(message))
    return openai_chat.response_doc(resp, model="claude", response_id="chatcmpl-1", created=1)


def stream_to_openai(sse: bytes, split: int | None = None) -> list[Json]:
    """Anthropic SSE bytes (fed whole, or in pieces of `split` bytes) -> OpenAI chunks."""
    sse_dec = SSEDecoder()
    dec = anthropic_provider.StreamDecoder()
    enc = openai_chat.StreamEncoder("claude", True, response_id="chatcmpl-1", created=1)
    pieces = [sse] if split is None else [sse[i:i + split] for i in range(0, len(sse), split)]
    out: list[Json] = []
    for piece in pieces:
        for payload in sse_dec.feed(piece):
            delta = dec.feed(payload)
            if delta is not None:
                out += enc.chunks(delta)
    for payload in sse_dec.flush():
        delta = dec.feed(payload)
        if delta is not None:
            out += enc.chunks(delta)
    return out + enc.final_chunks()
