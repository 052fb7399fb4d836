"""multipart/form-data bodies for upstream calls (an OpenAI key's image edits and transcriptions)."""

from __future__ import annotations

import os


def encode(fields: dict[str, str], files: list[tuple[str, str, str, bytes]]) -> tuple[str, bytes]:
    """(content type, body) for text `fields` and `files` as (field name, file name, mime type, bytes)."""
    boundary = f"keymux-{os.urandom(12).hex()}"
    out: list[bytes] = []
    for name, value in fields.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{_q(name)}"\r\n\r\n'.encode())
        out.append(value.encode() + b"\r\n")
    for name, filename, mime, data in files:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{_q(name)}"; filename="{_q(filename)}"'
                   f"\r\nContent-Type: {mime}\r\n\r\n".encode())
        out.append(data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(out)


def _q(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
