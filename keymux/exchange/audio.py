"""POST /v1/audio/speech and /v1/audio/transcriptions on Gemini keys (translated) or OpenAI keys (passed through).

The speech body is audio bytes; the surface sets its Content-Type from `response_format`."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from keymux.config.schema import DeploymentConfig
from keymux.exchange.base import Usage
from keymux.exchange.whole import WholeAnswer
from keymux.providers import gemini, openai
from keymux.translate import audio as A
from keymux.translate import multipart

_AUDIO_BYTES_PER_TOKEN = 500  # the estimate's rule for audio (keymux/translate/estimate.py)


def _text_tokens(text: Any) -> int:
    return max(1, -(-len(text) // 4)) if isinstance(text, str) else 1


def audio_tokens(body: dict[str, Any]) -> int:
    data = (body.get("file") or {}).get("data") or ""
    return max(1, len(data) * 3 // 4 // _AUDIO_BYTES_PER_TOKEN) + _text_tokens(body.get("prompt"))


class GeminiSpeech(WholeAnswer):
    provider = "gemini"
    operation = "speech"

    def __init__(self, body: dict[str, Any]) -> None:
        A.check_speech(body)
        self._format = A.speech_format(body)
        self._data = A.gemini_speech_request(body)
        self.estimated_tokens = _text_tokens(body.get("input"))

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        return (gemini.model_url(dep.api_base, dep.model, "generateContent"), gemini.auth_headers(dep.api_key),
                self._data)

    def answered(self, raw: bytes) -> bool:
        return raw.find(b'"inlineData"') >= 0

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        pcm, rate, usage = A.speech_pcm(raw)
        return A.encode_audio(pcm, rate, self._format), usage


class OpenAISpeech(WholeAnswer):
    provider = "openai"
    operation = "speech"

    def __init__(self, body: dict[str, Any]) -> None:
        text = body.get("input")
        if not isinstance(text, str) or not text.strip():
            A.check_speech(body)  # raises the same 400 as on Gemini keys
        self._body = body
        self.estimated_tokens = _text_tokens(text)

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        data = orjson.dumps({**self._body, "model": dep.model})
        return openai.endpoint_url(dep.api_base, "audio/speech"), openai.auth_headers(dep.api_key), data

    def answered(self, raw: bytes) -> bool:
        return bool(raw)

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        return raw, None


class GeminiTranscription(WholeAnswer):
    provider = "gemini"
    operation = "transcriptions"

    def __init__(self, body: dict[str, Any]) -> None:
        self._format = A.transcript_format(body)
        self._data = A.gemini_transcription_request(body)
        self.estimated_tokens = audio_tokens(body)

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        return (gemini.model_url(dep.api_base, dep.model, "generateContent"), gemini.auth_headers(dep.api_key),
                self._data)

    def answered(self, raw: bytes) -> bool:
        return gemini.answered(raw)

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        return A.transcript_from_gemini(raw, self._format)


class OpenAITranscription(WholeAnswer):
    provider = "openai"
    operation = "transcriptions"

    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body
        self.estimated_tokens = audio_tokens(body)

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        fields = {k: str(v) for k, v in self._body.items() if k not in ("file", "model")}
        fields["model"] = dep.model
        f = self._body["file"]
        ctype, data = multipart.encode(fields, [("file", f["filename"], f["mime"], base64.b64decode(f["data"]))])
        return (openai.endpoint_url(dep.api_base, "audio/transcriptions"),
                {**openai.auth_headers(dep.api_key), "content-type": ctype}, data)

    def answered(self, raw: bytes) -> bool:
        return bool(raw)

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        if raw[:1] != b"{":
            return raw, None
        u = orjson.loads(raw).get("usage")
        if not isinstance(u, dict):
            return raw, None
        prompt, completion = int(u.get("input_tokens") or 0), int(u.get("output_tokens") or 0)
        return raw, Usage(prompt=prompt, completion=completion, total=prompt + completion)
