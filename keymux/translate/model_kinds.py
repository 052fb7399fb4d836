"""Which OpenAI endpoints an upstream model can serve, from its id (what providers name their models by).

Gemini: `*embedding*` embed; `imagen-*` only generates images (:predict); `*-image*` generates images and
chats; `*-tts` only speaks; every other Gemini model chats and takes audio (transcriptions).
OpenAI: `text-embedding-*`, `dall-e-*` / `gpt-image-*`, `tts-*` / `*-tts`, `whisper-*` / `*-transcribe`,
else chat.
"""

from __future__ import annotations

CHAT = "chat"
EMBEDDINGS = "embeddings"
IMAGES = "images"
IMAGE_EDITS = "image_edits"
SPEECH = "speech"
TRANSCRIPTIONS = "transcriptions"

PATHS = {CHAT: ("/v1/chat/completions", "/v1/responses"), EMBEDDINGS: ("/v1/embeddings",),
         IMAGES: ("/v1/images/generations",), IMAGE_EDITS: ("/v1/images/edits",), SPEECH: ("/v1/audio/speech",),
         TRANSCRIPTIONS: ("/v1/audio/transcriptions",)}


def is_imagen(model: str) -> bool:
    return model.startswith("imagen")


def operations(provider: str, model: str) -> tuple[str, ...]:
    m = model.lower()
    if provider == "gemini":
        if "embedding" in m:
            return (EMBEDDINGS,)
        if is_imagen(m):
            return (IMAGES,)
        if "-image" in m:
            return (CHAT, IMAGES, IMAGE_EDITS)
        if m.endswith("-tts") or "-tts-" in m:
            return (SPEECH,)
        return (CHAT, TRANSCRIPTIONS)
    if "embedding" in m:
        return (EMBEDDINGS,)
    if m.startswith(("dall-e", "gpt-image")):
        return (IMAGES, IMAGE_EDITS)
    if m.startswith("tts") or m.endswith("-tts"):
        return (SPEECH,)
    if m.startswith("whisper") or m.endswith("-transcribe"):
        return (TRANSCRIPTIONS,)
    return (CHAT,)
