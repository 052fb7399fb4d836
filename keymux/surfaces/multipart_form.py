"""Reading a multipart/form-data upload (transcriptions, image edits) within the gateway's body limit.

aiohttp's `client_max_size` bounds only whole-body reads, so the parts are read here against the limit."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import BodyPartReader, web

from keymux.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

_CHUNK = 64 * 1024
_TEXT_FIELD_MAX = 64 * 1024


@dataclass(frozen=True)
class Upload:
    field: str
    filename: str
    mime: str  # as the client labelled it ("" when it did not, or said application/octet-stream)
    data: bytes


async def read_form(request: web.Request, max_bytes: int) -> tuple[dict[str, str], list[Upload]]:
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType(f"expected Content-Type: multipart/form-data, got {request.content_type}")
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"request body is {length} bytes; the limit is {max_bytes}")
    fields: dict[str, str] = {}
    files: list[Upload] = []
    seen = 0
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise BadRequest("nested multipart bodies are not accepted")
            chunks: list[bytes] = []
            while chunk := await part.read_chunk(_CHUNK):
                seen += len(chunk)
                if seen > max_bytes:
                    raise PayloadTooLarge(f"request body is over the limit of {max_bytes} bytes")
                chunks.append(chunk)
            data = b"".join(chunks)
            name = part.name or ""
            if part.filename is not None:
                mime = part.headers.get("Content-Type", "")
                files.append(Upload(name, part.filename, "" if mime == "application/octet-stream" else mime, data))
            else:
                if len(data) > _TEXT_FIELD_MAX:
                    raise BadRequest(f"form field '{name}' is over {_TEXT_FIELD_MAX} bytes", param=name)
                fields[name] = data.decode("utf-8", "replace")
    except ValueError as e:  # aiohttp's word for a malformed multipart body
        raise BadRequest(f"malformed multipart body: {e}") from None
    return fields, files
