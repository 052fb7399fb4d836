"""Gemini (Google AI Studio, v1beta) wire shapes: error bodies, model objects, answers.

Bodies follow /work/shared/reference/gemini-wire.md (google.rpc.Status JSON).
"""

from __future__ import annotations

import base64
import math
import struct
import zlib
from typing import Any

import orjson

from keymux.emulator.quota import QuotaHit, proto_duration

T_ERRORINFO = "type.googleapis.com/google.rpc.ErrorInfo"
T_QUOTA = "type.googleapis.com/google.rpc.QuotaFailure"
T_HELP = "type.googleapis.com/google.rpc.Help"
T_RETRY = "type.googleapis.com/google.rpc.RetryInfo"
T_BADREQ = "type.googleapis.com/google.rpc.BadRequest"
T_LOCALIZED = "type.googleapis.com/google.rpc.LocalizedMessage"

SERVICE = "generativelanguage.googleapis.com"
METRIC_REQUESTS = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
METRIC_INPUT = "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count"
QID_RPM = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
QID_RPD = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
QID_TPM = "GenerateContentInputTokensPerModelPerMinute-FreeTier"

MSG_MISSING_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API key or other form of API consumer identity to call this API."
)
MSG_INVALID_KEY = "API key not valid. Please pass a valid API key."
MSG_KEY_NOT_FOUND = "API Key not found. Please pass a valid API key."
MSG_LEAKED = "Your API key was reported as leaked. Please use another API key."
MSG_LOCATION = "User location is not supported for the API use."
MSG_OVERLOADED = "The model is overloaded. Please try again later."
MSG_INTERNAL = (
    "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting"
)
MSG_BARE_429 = "Resource has been exhausted (e.g. check quota)."
MSG_QUOTA_HEAD = (
    "You exceeded your current quota, please check your plan and billing details. "
    "For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. "
    "To monitor your current usage, head to: https://ai.dev/usage?tab=rate-limit. "
)
# The 2025-2026 429 causes (docs/gemini-wire-2026.md says where each body comes from).
MSG_PREPAY_DEPLETED = (
    "Your prepayment credits are depleted. Please go to AI Studio at https://ai.studio/projects "
    "to manage your project and billing."
)
MSG_SPEND_CAP = (
    "You exceeded the spend-based rate limit of your project's usage tier, evaluated over a rolling "
    "10-minute window. For more information on this error, head to: "
    "https://ai.google.dev/gemini-api/docs/rate-limits#spend-based-rate-limits."
)
MSG_TIER_DROP = (
    "Your project's usage tier was lowered (Tier 2 to Tier 1): lower rate limits and spend caps now apply. "
    "Check the Projects and Billing pages in AI Studio for details and an appeal link."
)
SPEND_WINDOW_S = 600.0
MSG_THOUGHT = "Thinking about it..."
MSG_IMAGE = "Here is your image."
MSG_BAD_JSON = "Invalid JSON payload received. Unexpected token."


def status_body(code: int, status: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        err["details"] = details
    return {"error": err}


def project_number(name: str) -> int:
    """A stable 12-digit fake Google Cloud project number."""
    return 100_000_000_000 + zlib.crc32(name.encode()) % 900_000_000_000


def key_error(status: str, key: str, project: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for a key that is not usable. `status` is an EmuKey.status."""
    if status in ("invalid", "not_found"):
        msg = MSG_INVALID_KEY if status == "invalid" else MSG_KEY_NOT_FOUND
        info = {"@type": T_ERRORINFO, "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                "metadata": {"service": SERVICE}}
        return 400, status_body(400, "INVALID_ARGUMENT", msg, [info])
    if status == "leaked":
        return 403, status_body(403, "PERMISSION_DENIED", MSG_LEAKED)
    num = project_number(project)
    if status == "suspended":
        info = {"@type": T_ERRORINFO, "reason": "CONSUMER_SUSPENDED", "domain": "googleapis.com",
                "metadata": {"consumer": f"projects/{num}", "service": SERVICE}}
        msg = f"Permission denied: Consumer 'api_key:{key}' has been suspended."
        return 403, status_body(403, "PERMISSION_DENIED", msg, [info])
    if status == "service_disabled":
        url = f"https://console.developers.google.com/apis/api/{SERVICE}/overview?project={num}"
        msg = (
            f"Generative Language API has not been used in project {num} before or it is disabled. "
            f"Enable it by visiting {url} then retry. If you enabled this API recently, wait a few "
            "minutes for the action to propagate to our systems and retry."
        )
        details = [
            {"@type": T_ERRORINFO, "reason": "SERVICE_DISABLED", "domain": "googleapis.com",
             "metadata": {"consumer": f"projects/{num}", "service": SERVICE, "activationUrl": url,
                          "serviceTitle": "Generative Language API", "containerInfo": str(num)}},
            {"@type": T_LOCALIZED, "locale": "en-US", "message": msg},
            {"@type": T_HELP, "links": [{"description": "Google developers console API activation",
                                         "url": url}]},
        ]
        return 403, status_body(403, "PERMISSION_DENIED", msg, details)
    if status == "location":
        return 400, status_body(400, "FAILED_PRECONDITION", MSG_LOCATION)
    raise ValueError(status)


def quota_body(hit: QuotaHit, model: str, whole_seconds: bool = False) -> dict[str, Any]:
    """The 429 RESOURCE_EXHAUSTED body for a quota hit (QuotaFailure, Help, RetryInfo)."""
    if hit.kind == "tpm":
        metric, qid = METRIC_INPUT, QID_TPM
    elif hit.kind in ("rpd", "zero"):
        metric, qid = METRIC_REQUESTS, QID_RPD
    else:
        metric, qid = METRIC_REQUESTS, QID_RPM
    exact = proto_duration(hit.retry_after)
    message = (
        f"{MSG_QUOTA_HEAD}\n* Quota exceeded for metric: {metric}, limit: {hit.limit}, model: {model}"
        f"\nPlease retry in {exact}."
    )
    details = [
        {"@type": T_QUOTA, "violations": [{
            "quotaMetric": metric, "quotaId": qid,
            "quotaDimensions": {"location": "global", "model": model},
            "quotaValue": str(hit.limit)}]},
        {"@type": T_HELP, "links": [{"description": "Learn more about Gemini API quotas",
                                     "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
        {"@type": T_RETRY, "retryDelay": proto_duration(hit.retry_after, whole_seconds)},
    ]
    return status_body(429, "RESOURCE_EXHAUSTED", message, details)


def cause_body(cause: str, retry_after: float | None = None) -> dict[str, Any]:
    """A 429 whose description names a cause other than a per-minute / per-day quota."""
    message = {"spendcap": MSG_SPEND_CAP, "prepay": MSG_PREPAY_DEPLETED, "tierdrop": MSG_TIER_DROP}[cause]
    details: list[Any] = [{"@type": T_HELP, "links": [{"description": "Learn more about Gemini API quotas",
                                                      "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]}]
    if retry_after is not None:
        details.append({"@type": T_RETRY, "retryDelay": proto_duration(retry_after, True)})
    return status_body(429, "RESOURCE_EXHAUSTED", message, details if cause != "prepay" else None)


def bad_request(message: str, field: str | None = None, violation: bool = True) -> dict[str, Any]:
    if not violation:
        return status_body(400, "INVALID_ARGUMENT", message)
    fv: dict[str, Any] = {"description": message}
    if field:
        fv = {"field": field, "description": message}
    return status_body(400, "INVALID_ARGUMENT", message, [{"@type": T_BADREQ, "fieldViolations": [fv]}])


def not_found_model(model: str, method: str, version: str = "v1beta") -> dict[str, Any]:
    msg = (
        f"models/{model} is not found for API version {version}, or is not supported for {method}. "
        "Call ListModels to see the list of available models and their supported methods."
    )
    return status_body(404, "NOT_FOUND", msg)


# ---------------------------------------------------------------- models

GENERATE_METHODS = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
EMBED_METHODS = ["embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent"]


def is_embedding_model(model: str) -> bool:
    return "embedding" in model


def is_imagen(model: str) -> bool:
    return model.startswith("imagen")


def is_tts(model: str) -> bool:
    return model.endswith("-tts")


def is_veo(model: str) -> bool:
    return model.startswith("veo")


def supports(model: str, method: str) -> bool:
    if is_imagen(model):
        return method == "predict"
    if is_veo(model) or method in ("predict", "predictLongRunning"):
        return is_veo(model) and method == "predictLongRunning"
    if method in ("embedContent", "batchEmbedContents"):
        return is_embedding_model(model)
    if method == "countTokens":
        return True
    return not is_embedding_model(model)


def model_object(model: str) -> dict[str, Any]:
    display = " ".join(p.capitalize() if not p[0].isdigit() else p for p in model.split("-"))
    if is_imagen(model):
        return {
            "name": f"models/{model}", "version": "001", "displayName": display,
            "description": f"Emulated {display}", "inputTokenLimit": 480, "outputTokenLimit": 8192,
            "supportedGenerationMethods": ["predict"],
        }
    if is_veo(model):
        return {
            "name": f"models/{model}", "version": "3.1", "displayName": display,
            "description": f"Emulated {display}", "inputTokenLimit": 1024, "outputTokenLimit": 1,
            "supportedGenerationMethods": ["predictLongRunning"],
        }
    if is_embedding_model(model):
        return {
            "name": f"models/{model}", "version": "001", "displayName": display,
            "description": f"Emulated {display}", "inputTokenLimit": 2048, "outputTokenLimit": 1,
            "supportedGenerationMethods": list(EMBED_METHODS),
        }
    obj: dict[str, Any] = {
        "name": f"models/{model}", "version": "001", "displayName": display,
        "description": f"Emulated {display}",
        "inputTokenLimit": 32768 if "image" in model else 1048576,
        "outputTokenLimit": 32768 if "image" in model else 65536,
        "supportedGenerationMethods": list(GENERATE_METHODS),
        "temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2,
    }
    if "2.0" not in model and "image" not in model:
        obj["thinking"] = True
    return obj


# ---------------------------------------------------------------- a tiny PNG


def _make_png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (66, 133, 244)) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


PNG_BYTES = _make_png()
PNG_B64 = base64.b64encode(PNG_BYTES).decode()
IMAGE_TOKENS = 1290  # what Gemini bills per generated image

# ---------------------------------------------------------------- speech (TTS models)
TTS_MIME = "audio/L16;codec=pcm;rate=24000"  # what Gemini TTS models answer: 16-bit mono PCM at 24 kHz
TTS_RATE = 24000
TTS_TOKENS_PER_SECOND = 25
TTS_VOICES = frozenset((
    "Zephyr", "Puck", "Charon", "Kore", "Fenrir", "Leda", "Orus", "Aoede", "Callirrhoe", "Autonoe", "Enceladus",
    "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome", "Algenib", "Rasalgethi", "Laomedeia", "Achernar",
    "Alnilam", "Schedar", "Gacrux", "Pulcherrima", "Achird", "Zubenelgenubi", "Vindemiatrix", "Sadachbia",
    "Sadaltager", "Sulafat"))
IMAGEN_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")


def wav_bytes(pcm: bytes, rate: int = TTS_RATE) -> bytes:
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return out.getvalue()


def speech_pcm(text: str) -> bytes:
    """Deterministic 16-bit PCM: 10 ms of a tone per character of text."""
    samples = max(1, len(text)) * TTS_RATE // 100
    tone = [int(8000 * math.sin(2 * math.pi * 440 * i / TTS_RATE)) for i in range(TTS_RATE // 100)]
    return struct.pack(f"<{len(tone)}h", *tone) * (samples // len(tone))


def thought_signature(name: str) -> str:
    return base64.b64encode(b"keymux-emulator-signature:" + name.encode()).decode()


def compact(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def embedding_values(text: str, dims: int) -> list[float]:
    """Deterministic small unit-ish vector derived from the text."""
    seed = zlib.crc32(text.encode()) or 1
    out = []
    for _ in range(dims):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(round((seed / 0x7FFFFFFF) * 2 - 1, 6))
    return out
