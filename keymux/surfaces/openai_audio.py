"""POST /v1/audio/speech (JSON in, audio bytes out) and POST /v1/audio/transcriptions (a multipart upload),
also without /v1."""

from __future__ import annotations

import base64
import mimetypes
from typing import Any

from aiohttp import web

from keymux.errors import BadRequest
from keymux.surfaces.common import CLIENT_API, check_auth, read_json
from keymux.surfaces.multipart_form import read_form
from keymux.surfaces.openai_ops import call, group_of, respond

SPEECH_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm", "opus": "audio/opus",
                "aac": "audio/aac", "flac": "audio/flac"}
AUDIO_BY_EXTENSION = {"wav": "audio/wav", "mp3": "audio/mp3", "mpga": "audio/mp3", "mpeg": "audio/mp3",
                      "aiff": "audio/aiff", "aac": "audio/aac", "ogg": "audio/ogg", "oga": "audio/ogg",
                      "opus": "audio/ogg", "flac": "audio/flac", "m4a": "audio/mp4", "mp4": "audio/mp4",
                      "webm": "audio/webm"}


async def speech(request: web.Request) -> web.StreamResponse:
    snapshot = request.app[CLIENT_API].live.snapshot
    client = check_auth(request, snapshot.config.master_key)
    body, raw = await read_json(request, snapshot.config.max_request_bytes)
    model, group = group_of(snapshot, body)
    fmt = body.get("response_format") or "mp3"
    result = await call(request, client, "speech", body, raw, model, group)
    return respond(result, SPEECH_TYPES.get(str(fmt), "application/octet-stream"))


_GEMINI_NAMES = {"audio/x-wav": "audio/wav", "audio/wave": "audio/wav", "audio/vnd.wave": "audio/wav",
                 "audio/mpeg": "audio/mp3", "audio/x-flac": "audio/flac", "audio/x-aiff": "audio/aiff"}


def audio_mime(filename: str, labelled: str) -> str:
    """The upload's audio type, by the names Gemini lists (audio/wav, audio/mp3, ...)."""
    if labelled.startswith(("audio/", "video/")):
        return _GEMINI_NAMES.get(labelled, labelled)
    ext = filename.rpartition(".")[2].lower()
    found = AUDIO_BY_EXTENSION.get(ext) or _GEMINI_NAMES.get(guessed := mimetypes.guess_type(filename)[0] or "",
                                                              guessed)
    if not found.startswith("audio/"):
        raise BadRequest(f"'file' must be audio (wav, mp3, aiff, aac, ogg, flac, m4a, webm); got '{filename}'",
                         param="file")
    return found


async def transcriptions(request: web.Request) -> web.StreamResponse:
    snapshot = request.app[CLIENT_API].live.snapshot
    client = check_auth(request, snapshot.config.master_key)
    fields, files = await read_form(request, snapshot.config.max_request_bytes)
    model, group = group_of(snapshot, dict(fields))
    upload = next((f for f in files if f.field == "file"), None)
    if upload is None or not upload.data:
        raise BadRequest("'file' is required: the audio to transcribe", param="file")
    body: dict[str, Any] = {**fields, "file": {"filename": upload.filename, "mime": audio_mime(upload.filename,
                                                                                             upload.mime),
                                               "data": base64.b64encode(upload.data).decode()}}
    result = await call(request, client, "transcriptions", body, b"", model, group)
    fmt = fields.get("response_format") or "json"
    return respond(result, "application/json" if fmt in ("json", "verbose_json") else "text/plain")


def add_routes(app: web.Application) -> None:
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/audio/speech", speech)
        app.router.add_post(f"{prefix}/audio/transcriptions", transcriptions)
