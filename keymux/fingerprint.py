"""The only form a key takes outside memory and the upstream header."""

from __future__ import annotations

import hashlib

_PREFIX = {"gemini": "gem", "openai": "oai", "anthropic": "ant", "vertex_ai": "vtx"}


def fingerprint(api_key: str, provider: str = "gemini") -> str:
    digest = hashlib.sha256(api_key.encode()).hexdigest()[:8]
    return f"{_PREFIX.get(provider, provider[:3])}:{digest}"
