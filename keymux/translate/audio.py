"""OpenAI /v1/audio/speech and /v1/audio/transcriptions <-> Gemini: pure functions.

Speech: Gemini TTS models (`*-tts`) through generateContent with `responseModalities: [AUDIO]` and
`speechConfig.voiceConfig.prebuiltVoiceConfig.voiceName`; they answer 16-bit mono PCM
(`audio/L16;codec=pcm;rate=24000`), which keymux sends as `pcm` (OpenAI's pcm is the same: 24 kHz 16-bit LE),
`wav` (a RIFF header added) or `mp3` (encoded by lameenc when installed: `keymux[audio]`; else refused).
OpenAI's voices map to Gemini voices of a like character; Gemini's own voice names are taken as they are.
Transcriptions: the audio as `inlineData` with an instruction to transcribe, on any Gemini model that
takes audio; `json` -> `{"text"}`, `text` -> plain text.
"""

from __future__ import annotations

import base64
import io
import wave
from typing import Any

import orjson

from keymux.errors import BadRequest
from keymux.translate.pivot import Usage

SPEECH_FORMATS = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm"}
REFUSED_FORMATS = ("opus", "aac", "flac")
MAX_SPEECH_INPUT = 4096  # OpenAI's limit on `input`, kept so that clients see the same bound
VOICES = {  # OpenAI voice -> Gemini prebuilt voice
    "alloy": "Kore", "ash": "Charon", "ballad": "Aoede", "coral": "Leda", "echo": "Puck", "fable": "Fenrir",
    "nova": "Zephyr", "onyx": "Orus", "sage": "Iapetus", "shimmer": "Callirrhoe", "verse": "Enceladus",
    "marin": "Despina", "cedar": "Algieba",
}
GEMINI_VOICES = frozenset((
    "Zephyr", "Puck", "Charon", "Kore", "Fenrir", "Leda", "Orus", "Aoede", "Callirrhoe", "Autonoe", "Enceladus",
    "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome", "Algenib", "Rasalgethi", "Laomedeia", "Achernar",
    "Alnilam", "Schedar", "Gacrux", "Pulcherrima", "Achird", "Zubenelgenubi", "Vindemiatrix", "Sadachbia",
    "Sadaltager", "Sulafat"))
_BY_LOWER = {v.lower(): v for v in GEMINI_VOICES}
TRANSCRIBE = ("Generate a verbatim transcript of the speech in this audio. Answer with the transcript only, "
              "no commentary.")
TRANSCRIPT_FORMATS = ("json", "text")


def mp3_available() -> bool:
    try:
        import lameenc  # noqa: F401
    except ImportError:
        return False
    return True


def speech_format(body: dict[str, Any]) -> str:
    fmt = body.get("response_format") or "mp3"  # OpenAI's default
    if fmt in REFUSED_FORMATS:
        raise BadRequest(f"response_format '{fmt}' is not available here; ask for wav, pcm or mp3",
                         param="response_format")
    if fmt not in SPEECH_FORMATS:
        raise BadRequest(f"'response_format' must be one of mp3, wav, pcm; got {fmt!r}", param="response_format")
    if fmt == "mp3" and not mp3_available():
        raise BadRequest("mp3 needs the lameenc package on the gateway (pip install 'keymux[audio]'); "
                         "ask for response_format wav or pcm", param="response_format")
    return str(fmt)


def gemini_voice(voice: Any) -> str:
    name = voice.get("id") if isinstance(voice, dict) else voice
    if not isinstance(name, str) or not name:
        raise BadRequest("'voice' is required", param="voice")
    found = VOICES.get(name.lower()) or _BY_LOWER.get(name.lower())
    if found is None:
        raise BadRequest(f"voice '{name}' is not known; use one of {', '.join(VOICES)} or a Gemini voice name",
                         param="voice")
    return found


def check_speech(body: dict[str, Any]) -> None:
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("'input' is required: the text to speak", param="input")
    if len(text) > MAX_SPEECH_INPUT:
        raise BadRequest(f"'input' is {len(text)} characters; the limit is {MAX_SPEECH_INPUT}", param="input")
    gemini_voice(body.get("voice"))
    speech_format(body)
    speed = body.get("speed")
    if speed is not None and speed != 1 and speed != 1.0:
        raise BadRequest("'speed' is not available on Gemini voices; say how to speak in 'instructions' instead",
                         param="speed")


def gemini_speech_request(body: dict[str, Any]) -> bytes:
    text = body["input"]
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions.strip():
        text = f"{instructions.strip()}: {text}"  # Gemini TTS is steered by the prompt itself
    config = {"responseModalities": ["AUDIO"],
              "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": gemini_voice(body["voice"])}}}}
    return orjson.dumps({"contents": [{"role": "user", "parts": [{"text": text}]}], "generationConfig": config})


def _usage(doc: dict[str, Any]) -> Usage:
    meta = doc.get("usageMetadata") or {}
    prompt, completion = int(meta.get("promptTokenCount") or 0), int(meta.get("candidatesTokenCount") or 0)
    return Usage(prompt=prompt, completion=completion, total=int(meta.get("totalTokenCount") or 0) or prompt + completion)


def speech_pcm(raw: bytes) -> tuple[bytes, int, Usage]:
    """A TTS answer -> (16-bit mono PCM, sample rate, usage). Raises ValueError when it holds no audio."""
    doc = orjson.loads(raw)
    for cand in doc.get("candidates") or ():
        for part in (cand.get("content") or {}).get("parts") or ():
            blob = part.get("inlineData")
            if isinstance(blob, dict) and str(blob.get("mimeType", "")).startswith("audio/"):
                rate = 24000
                for param in str(blob["mimeType"]).split(";"):
                    name, _, value = param.strip().partition("=")
                    if name == "rate" and value.isdigit():
                        rate = int(value)
                return base64.b64decode(blob["data"]), rate, _usage(doc)
    raise ValueError("the upstream answer holds no audio")


def encode_audio(pcm: bytes, rate: int, fmt: str) -> bytes:
    if fmt == "pcm":
        return pcm
    if fmt == "wav":
        out = io.BytesIO()
        with wave.open(out, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm)
        return out.getvalue()
    import lameenc  # checked by speech_format before any quota was spent

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(64)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(1)
    encoder.set_quality(2)
    return bytes(encoder.encode(pcm) + encoder.flush())


# ---------------------------------------------------------------- transcriptions

def transcript_format(body: dict[str, Any]) -> str:
    fmt = body.get("response_format") or "json"
    if fmt not in TRANSCRIPT_FORMATS:
        raise BadRequest(f"response_format '{fmt}' is not available for transcriptions here; ask for json or text",
                         param="response_format")
    return str(fmt)


def gemini_transcription_request(body: dict[str, Any]) -> bytes:
    audio = body["file"]
    instruction = TRANSCRIBE
    if isinstance(body.get("language"), str) and body["language"]:
        instruction += f" The speech is in the language with ISO-639-1 code '{body['language']}'."
    if isinstance(body.get("prompt"), str) and body["prompt"]:
        instruction += f" Context (names, spelling, style): {body['prompt']}"
    parts = [{"inlineData": {"mimeType": audio["mime"], "data": audio["data"]}}, {"text": instruction}]
    return orjson.dumps({"contents": [{"role": "user", "parts": parts}]})


def transcript_from_gemini(raw: bytes, fmt: str) -> tuple[bytes, Usage]:
    doc = orjson.loads(raw)
    texts = [p["text"] for cand in (doc.get("candidates") or ())[:1]
             for p in (cand.get("content") or {}).get("parts") or () if isinstance(p.get("text"), str)
             and not p.get("thought")]
    text = "".join(texts).strip()
    usage = _usage(doc)
    if fmt == "text":
        return text.encode(), usage
    return orjson.dumps({"text": text, "usage": {"type": "tokens", "input_tokens": usage.prompt,
                                                 "output_tokens": usage.completion,
                                                 "total_tokens": usage.total}}), usage
