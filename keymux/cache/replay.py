"""A cached answer is one whole client body: turn it into a stream for a client that asked to stream,
and assemble a streamed answer back into one body so it can be cached. Each client API's codec
(keymux/translate/clients) knows its own format; this only picks the codec."""

from __future__ import annotations

import orjson

from keymux.translate.pivot import Usage
from keymux.translate.registry import CLIENTS


def stream_events(surface: str, body: bytes, include_usage: bool) -> list[bytes]:
    return CLIENTS[surface].stream_from_body(body, include_usage)


def assemble(surface: str, events: list[bytes], usage: Usage | None) -> bytes | None:
    """The whole body a non-streamed request would have got, or None when the stream was not a clean answer."""
    try:
        return CLIENTS[surface].body_from_stream(events, usage)
    except (orjson.JSONDecodeError, AttributeError, TypeError, KeyError):
        return None
