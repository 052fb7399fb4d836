"""How a parsed client request becomes an upstream call, and the upstream answer comes back in the
client's shape.

Where the client's API is the provider's, the body passes through untouched (gemini_gemini.py,
openai_openai.py). Every other pair is one `TranslatingExchange` of the client's codec and the
provider's codec, meeting at the pivot (keymux/translate/registry.py lists them).
The relay only talks to the `Exchange` protocol (exchange/base.py).
"""

from __future__ import annotations

from typing import Any

from keymux.errors import BadRequest
from keymux.exchange.anthropic_anthropic import AnthropicPassthrough
from keymux.exchange.base import Exchange, StreamBroken, StreamTranslator, Usage
from keymux.exchange.gemini_gemini import GeminiPassthrough
from keymux.exchange.gemini_resources import GeminiResource
from keymux.exchange.openai_openai import OpenAIPassthrough
from keymux.exchange.openai_responses import OpenAIResponsesPassthrough
from keymux.exchange.operations import OPERATIONS, operation_exchange
from keymux.exchange.translating import TranslatingExchange
from keymux.exchange.vertex_gemini import VertexPassthrough
from keymux.translate.registry import CLIENTS, PROVIDERS

__all__ = ["Exchange", "StreamBroken", "StreamTranslator", "Usage", "make_exchange"]


def make_exchange(surface: str, provider: str, *, body: dict[str, Any], raw: bytes, model: str,
                  drop_params: bool, include_usage: bool = False, method: str = "generateContent",
                  path: str = "", http_method: str = "POST") -> Exchange:
    """`model` is the name the client asked for (echoed back in translated responses);
    `method` is the request's operation: "chat" for OpenAI chat, the Gemini method a Gemini client called
    (generateContent, countTokens, ...). `path`: a Gemini resource call (interactions, files, ...)."""
    if path:
        if provider != "gemini":
            raise BadRequest(f"{method} is only available for model groups served by Gemini keys")
        return GeminiResource(body, raw, path, http_method)
    if surface == "openai_responses" and provider == "openai":
        return OpenAIResponsesPassthrough(body)
    if surface == "openai" and method in OPERATIONS:  # embeddings, images, audio: not chat, not the pivot
        return operation_exchange(method, provider, body=body, model=model)
    if surface == provider:
        if surface == "gemini":
            return GeminiPassthrough(body, raw, method)
        if surface == "openai":
            return OpenAIPassthrough(body, raw)
        if surface == "anthropic":
            return AnthropicPassthrough(body, raw)
    if surface == "gemini" and provider == "vertex_ai" and method in ("generateContent", "countTokens"):
        return VertexPassthrough(body, raw, method)  # the same wire format at Vertex's address
    if surface == "gemini" and method != "generateContent":
        raise BadRequest(f"{method} is only available for model groups served by Gemini keys")
    return TranslatingExchange(CLIENTS[surface], PROVIDERS[provider], body, model=model, drop_params=drop_params,
                               include_usage=include_usage)
