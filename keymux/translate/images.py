"""OpenAI /v1/images/generations and /v1/images/edits <-> Gemini image models: pure functions.

Two Gemini routes: image-capable Gemini models (`*-image*`) through generateContent with
`responseModalities: [IMAGE]` and `imageConfig.aspectRatio`, one image per call (the surface makes `n` calls);
Imagen (`imagen-*`) through `:predict` `{instances: [{prompt}], parameters: {sampleCount, aspectRatio}}`,
up to 4 images per call. `size` maps to the nearest aspect ratio the model takes. Only `b64_json` answers:
keymux stores no images, so it has no URL to give.
"""

from __future__ import annotations

import math
import time
from typing import Any

import orjson

from keymux.errors import BadRequest
from keymux.translate.model_kinds import is_imagen
from keymux.translate.pivot import Usage
from keymux.translate.providers.gemini import usage as gemini_usage

GEMINI_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
IMAGEN_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
IMAGEN_MAX_N = 4
INPUT_TYPES = ("image/png", "image/jpeg", "image/webp")  # what image edits take
MAX_N = 10


def check(body: dict[str, Any]) -> None:
    """Refuse what cannot be served, naming the field (a 400 in OpenAI's shape)."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("'prompt' is required: a non-empty string", param="prompt")
    n = body.get("n", 1)
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_N):
        raise BadRequest(f"'n' must be an integer from 1 to {MAX_N}", param="n")
    fmt = body.get("response_format")
    if fmt == "url":
        raise BadRequest("response_format 'url' is not available: keymux stores no images, so it has no URL to "
                         "give; ask for response_format 'b64_json'", param="response_format")
    if fmt is not None and fmt != "b64_json":
        raise BadRequest(f"'response_format' must be 'b64_json', got {fmt!r}", param="response_format")
    ratio_of(body.get("size"), GEMINI_RATIOS)


def count(body: dict[str, Any]) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and n > 0 else 1


def ratio_of(size: Any, allowed: tuple[str, ...]) -> str | None:
    """OpenAI's `size` ("1536x1024", "auto") -> the nearest aspect ratio in `allowed`; None for auto."""
    if size is None or size == "auto":
        return None
    w, sep, h = str(size).partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) == 0 or int(h) == 0:
        raise BadRequest(f"'size' must be 'auto' or WIDTHxHEIGHT such as '1024x1024', got {size!r}", param="size")
    want = math.log(int(w) / int(h))

    def distance(ratio: str) -> float:
        a, _, b = ratio.partition(":")
        return abs(math.log(int(a) / int(b)) - want)

    return min(allowed, key=distance)


def gemini_request(body: dict[str, Any], images: tuple[tuple[str, str], ...] = ()) -> bytes:
    """generateContent for one image; `images` are (mime, base64) inputs to edit (image edits)."""
    parts: list[dict[str, Any]] = [{"inlineData": {"mimeType": mime, "data": data}} for mime, data in images]
    parts.append({"text": body["prompt"]})
    config: dict[str, Any] = {"responseModalities": ["IMAGE"]}
    ratio = ratio_of(body.get("size"), GEMINI_RATIOS)
    if ratio is not None:
        config["imageConfig"] = {"aspectRatio": ratio}
    return orjson.dumps({"contents": [{"role": "user", "parts": parts}], "generationConfig": config})


def imagen_request(body: dict[str, Any]) -> bytes:
    n = count(body)
    if n > IMAGEN_MAX_N:
        raise BadRequest(f"Imagen makes at most {IMAGEN_MAX_N} images per request; 'n' was {n}", param="n")
    params: dict[str, Any] = {"sampleCount": n}
    ratio = ratio_of(body.get("size"), IMAGEN_RATIOS)
    if ratio is not None:
        params["aspectRatio"] = ratio
    return orjson.dumps({"instances": [{"prompt": body["prompt"]}], "parameters": params})


def request_for(model: str, body: dict[str, Any]) -> tuple[str, bytes]:
    """(Gemini method, body) for an upstream model."""
    if is_imagen(model):
        return "predict", imagen_request(body)
    return "generateContent", gemini_request(body)


def answered(raw: bytes) -> bool:
    return raw.find(b'"predictions"') >= 0 or raw.find(b'"candidates"') >= 0 or raw.find(b'"promptFeedback"') >= 0


def from_gemini(raw: bytes, prompt_tokens: int) -> tuple[bytes, Usage]:
    """A :predict or generateContent answer -> OpenAI's images body (`data[].b64_json`, `usage`)."""
    doc = orjson.loads(raw)
    images: list[str] = []
    if "predictions" in doc:
        images = [p["bytesBase64Encoded"] for p in doc["predictions"] if p.get("bytesBase64Encoded")]
        usage = Usage(prompt=prompt_tokens, total=prompt_tokens, images=len(images))
    else:
        for cand in doc.get("candidates") or ():
            for part in (cand.get("content") or {}).get("parts") or ():
                blob = part.get("inlineData")
                if isinstance(blob, dict) and str(blob.get("mimeType", "")).startswith("image/"):
                    images.append(blob["data"])
        usage = gemini_usage(doc.get("usageMetadata")) or Usage()  # per modality: image tokens priced as images
        usage.images = len(images)
    out = {"created": int(time.time()), "data": [{"b64_json": data} for data in images],
           "usage": {"input_tokens": usage.prompt, "output_tokens": usage.completion, "total_tokens": usage.total,
                     "input_tokens_details": {"text_tokens": usage.prompt, "image_tokens": 0}}}
    return orjson.dumps(out), usage


def merge(parts: list[dict[str, Any]]) -> bytes:
    """Bodies of one-image calls -> one body with every image, usage summed."""
    data = [item for part in parts for item in part.get("data") or ()]
    totals = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    for part in parts:
        for name in totals:
            totals[name] += int((part.get("usage") or {}).get(name) or 0)
    created = parts[0].get("created") if parts else int(time.time())
    return orjson.dumps({"created": created, "data": data,
                         "usage": {**totals, "input_tokens_details": {"text_tokens": totals["input_tokens"],
                                                                      "image_tokens": 0}}})
