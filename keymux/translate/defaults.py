"""Per-deployment default params from a LiteLLM config (`litellm_params.max_tokens`, `temperature`, ...):
put into a request only where the client did not set them, so the client always overrides.

`defaults` is the deployment's `(name, value)` pairs, as config/litellm.py read them. Passthrough bodies
get them in their own API's field names; a translated request gets them on the pivot. `extra_headers` and
`organization` become upstream request headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from keymux.translate import pivot as p

Defaults = Sequence[tuple[str, Any]]
BODY = ("max_tokens", "temperature", "top_p", "seed", "reasoning_effort")  # the same name in pivot and OpenAI
NAMES = (*BODY, "safety_settings", "thinking_level", "extra_headers", "organization")
_GEMINI_CONFIG = {"max_tokens": "maxOutputTokens", "temperature": "temperature", "top_p": "topP", "seed": "seed"}


def headers(defaults: Defaults, base: dict[str, str]) -> dict[str, str]:
    """`base` (never changed: it may be a cached dict) with the deployment's extra headers."""
    extra: dict[str, str] = {}
    for name, value in defaults:
        if name == "organization":
            extra["openai-organization"] = value
        elif name == "extra_headers":
            extra.update({k.lower(): v for k, v in value.items()})
    if not extra:
        return base
    extra.update(base)  # keymux's own auth and content-type headers win over configured ones
    return extra


def openai_body(body: dict[str, Any], defaults: Defaults) -> dict[str, Any]:
    out = body
    for name, value in defaults:
        if name not in BODY or name in body:
            continue
        if name == "max_tokens" and "max_completion_tokens" in body:
            continue
        out = out if out is not body else dict(body)
        out[name] = value
    return out


def gemini_body(body: dict[str, Any], defaults: Defaults) -> dict[str, Any]:
    config = dict(body.get("generationConfig") or body.get("generation_config") or {})
    out = dict(body)
    for name, value in defaults:
        if name in _GEMINI_CONFIG:
            config.setdefault(_GEMINI_CONFIG[name], value)
        elif name == "thinking_level":
            thinking = dict(config.get("thinkingConfig") or {})
            thinking.setdefault("thinkingLevel", value)
            config["thinkingConfig"] = thinking
        elif name == "safety_settings" and "safetySettings" not in body and "safety_settings" not in body:
            out["safetySettings"] = value
    out.pop("generation_config", None)
    if config:
        out["generationConfig"] = config
    return out


def pivot_request(req: p.Request, defaults: Defaults) -> p.Request:
    changes = {name: value for name, value in defaults if name in BODY and getattr(req, name) is None}
    if "reasoning_effort" not in changes and req.reasoning_effort is None:
        level = next((v for n, v in defaults if n == "thinking_level"), None)
        if level is not None:
            changes["reasoning_effort"] = level  # the pivot carries a Gemini level in reasoning_effort
    return replace(req, **changes) if changes else req


__all__ = ["BODY", "NAMES", "gemini_body", "headers", "openai_body", "pivot_request"]
