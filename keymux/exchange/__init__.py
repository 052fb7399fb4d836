"""One adapter per (client API, provider) pair: how a parsed client request becomes an upstream
call, and how the upstream answer comes back in the client's shape.

The relay only talks to the `Exchange` protocol (exchange/base.py); `make_exchange` picks the pair.
"""

from __future__ import annotations

from typing import Any

from keymux.errors import BadRequest
from keymux.exchange.base import Exchange, StreamTranslator, Usage
from keymux.exchange.gemini_gemini import GeminiPassthrough
from keymux.exchange.gemini_openai import GeminiToOpenAI
from keymux.exchange.openai_gemini import OpenAIToGemini, StreamBroken
from keymux.exchange.openai_openai import OpenAIPassthrough

__all__ = ["Exchange", "StreamBroken", "StreamTranslator", "Usage", "make_exchange"]


def make_exchange(surface: str, provider: str, *, body: dict[str, Any], raw: bytes, model: str,
                  drop_params: bool, include_usage: bool = False, method: str = "generateContent") -> Exchange:
    """`model` is the name the client asked for (echoed back in translated responses);
    `method` is the Gemini method a Gemini client called (generateContent, countTokens)."""
    if surface == "openai":
        if provider == "gemini":
            return OpenAIToGemini(body, model=model, drop_params=drop_params, include_usage=include_usage)
        return OpenAIPassthrough(body, raw)
    if provider == "gemini":
        return GeminiPassthrough(body, raw, method)
    if method != "generateContent":
        raise BadRequest(f"{method} is only available for model groups served by Gemini keys")
    return GeminiToOpenAI(body, model=model)
