"""An OpenAI file reference (chat's `file` content part, Responses' `input_file`) as a pivot media part:
one reading for both client codecs."""

from __future__ import annotations

from collections.abc import Callable

from keymux.errors import BadRequest
from keymux.translate import pivot as p
from keymux.translate._json import Json
from keymux.translate.media import guess_mime

Media = Callable[[str, str, str], p.Part]  # (data: URI or URL, where, default MIME type) -> part
Inline = Callable[[str, str, str], p.Part]  # (MIME type, base64, where) -> part


def file_part(fields: Json, where: str, media: Media, inline: Inline) -> p.Part:
    """`file_data` (a data: URI or bare base64), `file_url`, or `file_id` (with `format`, its MIME type,
    when the client or keymux's file store knows it); the type is else guessed from `filename`."""
    given = fields.get("filename")
    filename = given if isinstance(given, str) else ""
    mime = guess_mime(filename, "application/pdf") if filename else "application/pdf"
    data = fields.get("file_data")
    if isinstance(data, str) and data:
        at = f"{where}.file_data"
        found = media(data, at, mime) if data.startswith("data:") else inline(mime, data, at)
        found.name = filename
        return found
    url = fields.get("file_url")
    if isinstance(url, str) and url:
        return media(url, f"{where}.file_url", mime)
    file_id = fields.get("file_id")
    if isinstance(file_id, str) and file_id:
        fmt = fields.get("format")
        return p.Part(p.MEDIA, mime=fmt if isinstance(fmt, str) and fmt else mime, url=file_id, name=filename)
    raise BadRequest(f"{where} needs 'file_data', 'file_url' or 'file_id'", param=where)
