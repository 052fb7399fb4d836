"""Server-sent events framing: split a byte stream into `data:` payloads, and frame them back.

The one encoder (`sse_event`) writes data-only events with LF or CRLF line ends (Gemini ends its own
events in CRLF), and named events (`event: name`) for APIs that name them (Anthropic Messages,
OpenAI Responses). Every SSE frame keymux writes goes through it.

Follows the WHATWG event-stream rules that matter for LLM upstreams: lines end in CRLF, LF or CR
(a CRLF split across two chunks is one line end), a blank line dispatches the event, several `data:`
lines join with LF, `:` starts a comment, other fields (`event:`, `id:`, `retry:`) are ignored.
Scanning is linear in the bytes fed, even when one event (a generated image) spans many chunks.
"""

from __future__ import annotations

import re

_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


class SSEDecoder:
    """Incremental decoder: feed raw bytes, get the data payload of every complete event."""

    __slots__ = ("_buf", "_scanned", "_data", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already known to hold no line end
        self._data: list[bytes] = []  # data lines of the event being read
        self._skip_lf = False  # the last line ended in a CR that closed the buffer: a leading LF belongs to it
        self._started = False

    def feed(self, chunk: bytes) -> list[bytes]:
        if not chunk:
            return []
        if self._started and not self._buf and not self._data and not self._skip_lf:
            payload = _one_event(chunk)
            if payload is not None:  # how upstreams send most of a stream: one whole event per read
                return [payload]
        buf = self._buf
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buf += chunk
        if not self._started:
            if len(buf) < len(_BOM) and _BOM.startswith(bytes(buf)):
                return []
            self._started = True
            if buf.startswith(_BOM):
                del buf[: len(_BOM)]
        events: list[bytes] = []
        pos = 0
        search_from = self._scanned
        while True:
            m = _LINE_END.search(buf, search_from)
            if m is None:
                break
            end = m.end()
            if end == len(buf) and end - m.start() == 1 and buf[m.start()] == 0x0D:
                self._skip_lf = True  # a CR at the very end: an LF in the next chunk is part of this line end
            self._line(bytes(buf[pos : m.start()]), events)
            pos = search_from = end
        del buf[:pos]
        self._scanned = len(buf)
        return events

    def flush(self) -> list[bytes]:
        """End of stream: return an event that was not followed by a blank line, if any."""
        events: list[bytes] = []
        if self._buf:
            self._line(bytes(self._buf), events)
        self._buf.clear()
        self._scanned = 0
        self._skip_lf = False
        self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[bytes]) -> None:
        if not line:
            if self._data:
                events.append(b"\n".join(self._data))
                self._data = []
            return
        if line[:1] == b":":
            return
        colon = line.find(b":")
        if colon < 0:
            field, value = line, b""
        else:
            field, value = line[:colon], line[colon + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        if field == b"data":
            self._data.append(value)


def _one_event(chunk: bytes) -> bytes | None:
    """The payload of a chunk that is exactly one single-line `data: ` event, or None (read line by line)."""
    if chunk.__class__ is not bytes or not chunk.startswith(b"data: "):
        return None
    if chunk.endswith(b"\r\n\r\n"):
        end = len(chunk) - 4
    elif chunk.endswith(b"\n\n"):
        end = len(chunk) - 2
    else:
        return None
    if chunk.find(b"\n", 6, end) >= 0 or chunk.find(b"\r", 6, end) >= 0:  # more lines, or more events
        return None
    return chunk[6:end]


DONE = b"data: [DONE]\n\n"  # OpenAI's end-of-stream event


def sse_event(data: bytes, *, crlf: bool = False, event: bytes | None = None) -> bytes:
    """Frame one single-line payload (compact JSON) as an SSE event."""
    if event is not None:
        end = b"\r\n" if crlf else b"\n"
        return b"event: " + event + end + b"data: " + data + end + end
    return b"data: " + data + (b"\r\n\r\n" if crlf else b"\n\n")


def decode_all(events: list[bytes]) -> list[bytes]:
    """Every data payload of a whole recorded stream."""
    decoder = SSEDecoder()
    return [p for chunk in events for p in decoder.feed(chunk)] + decoder.flush()
