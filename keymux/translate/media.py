"""Media references: data URIs, MIME types guessed from URLs."""

from __future__ import annotations

import base64
from urllib.parse import unquote_to_bytes, urlsplit

_EXT_MIME = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "heic": "image/heic",
    "heif": "image/heif",
    "bmp": "image/bmp",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "mp3": "audio/mp3",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "aac": "audio/aac",
    "m4a": "audio/m4a",
    "mp4": "video/mp4",
    "mov": "video/mov",
    "webm": "video/webm",
}


def parse_data_uri(uri: str) -> tuple[str, str] | None:
    """`data:<mime>[;...][;base64],<payload>` -> (mime or "", base64 payload); None if malformed."""
    if not uri.startswith("data:"):
        return None
    header, comma, payload = uri[5:].partition(",")
    if not comma:
        return None
    params = header.split(";")
    mime = params[0].strip().lower()
    if "base64" in (p.strip().lower() for p in params[1:]):
        return mime, payload.strip()
    try:
        raw = unquote_to_bytes(payload)
    except (TypeError, ValueError):
        return None
    return mime, base64.b64encode(raw).decode("ascii")


def data_uri(mime: str, b64: str) -> str:
    return f"data:{mime};base64,{b64}"


def guess_mime(url: str, default: str = "image/jpeg") -> str:
    path = urlsplit(url).path
    dot = path.rfind(".")
    if dot < 0 or "/" in path[dot:]:
        return default
    return _EXT_MIME.get(path[dot + 1 :].lower(), default)


def base64_size(b64: str) -> int:
    """Decoded byte count of a base64 string, without decoding it."""
    n = len(b64)
    return n * 3 // 4 - (b64.endswith("=") + b64.endswith("=="))

