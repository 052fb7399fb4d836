"""OpenAI's Responses endpoint: addressing and the well-formed check of its answers (rate-limit signals and
error bodies are chat's: keymux.providers.openai)."""

from __future__ import annotations

import re

from keymux.providers.openai import DEFAULT_BASE

_TYPE = re.compile(rb'"type"\s*:\s*"([^"]+)"')
FINAL = (b"response.completed", b"response.incomplete")  # the events that end an answer
FAILED = (b"error", b"response.failed")


def url(api_base: str | None) -> str:
    return f"{(api_base or DEFAULT_BASE).rstrip('/')}/responses"


def answered(raw: bytes) -> bool:
    """A response object holds its output."""
    return raw.find(b'"output"') >= 0 and raw.find(b'"object"') >= 0


def event_type(payload: bytes) -> bytes:
    """The `type` of a stream event: its first key in OpenAI's events, so the first match is the top-level one."""
    found = _TYPE.search(payload, 0, 200)
    return found.group(1) if found else b""


def ends_stream(payload: bytes) -> bool:
    return event_type(payload) in FINAL
