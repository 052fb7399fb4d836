"""OpenAI /v1/embeddings <-> Gemini batchEmbedContents: pure functions.

OpenAI: `{model, input: str | [str] | [int] | [[int]], dimensions?, encoding_format?: float | base64}` ->
`{object: list, data: [{object: embedding, index, embedding}], model, usage: {prompt_tokens, total_tokens}}`.
Gemini: `{requests: [{model: "models/m", content: {parts: [{text}]}, outputDimensionality?}]}` ->
`{embeddings: [{values}]}` (no token counts: usage is the same estimate admission counted).
`base64` is the little-endian float32 array, base64-encoded (what the openai SDKs ask for by default).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson

from keymux.errors import BadRequest
from keymux.translate.pivot import Usage

GEMINI_BATCH_LIMIT = 100  # batchEmbedContents takes at most 100 requests
ENCODINGS = ("float", "base64")


def inputs(body: dict[str, Any]) -> list[str] | list[list[int]]:
    """The request's inputs as a list: texts, or token arrays (OpenAI keys only). Raises BadRequest."""
    given = body.get("input")
    if isinstance(given, str):
        if not given:
            raise BadRequest("'input' cannot be an empty string", param="input")
        return [given]
    if not isinstance(given, list) or not given:
        raise BadRequest("'input' is required: a string, a list of strings, or token arrays", param="input")
    if all(isinstance(t, str) for t in given):
        if any(not t for t in given):
            raise BadRequest("'input' cannot contain an empty string", param="input")
        return list(given)
    if all(isinstance(t, int) and not isinstance(t, bool) for t in given):
        return [list(given)]
    if all(isinstance(a, list) and a and all(isinstance(t, int) and not isinstance(t, bool) for t in a)
           for a in given):
        return [list(a) for a in given]
    raise BadRequest("'input' must be a string, a list of strings, a token array or a list of token arrays",
                     param="input")


def check_options(body: dict[str, Any]) -> None:
    dims = body.get("dimensions")
    if dims is not None and (not isinstance(dims, int) or isinstance(dims, bool) or dims < 1):
        raise BadRequest("'dimensions' must be a positive integer", param="dimensions")
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in ENCODINGS:
        raise BadRequest(f"'encoding_format' must be one of {', '.join(ENCODINGS)}, got {encoding!r}",
                         param="encoding_format")


def estimate_tokens(items: list[str] | list[list[int]]) -> int:
    """Token arrays count exactly; text as ceil(characters / 4), at least one per input."""
    return sum(len(i) if isinstance(i, list) else max(1, -(-len(i) // 4)) for i in items)


def gemini_texts(items: list[str] | list[list[int]]) -> list[str]:
    """The inputs a Gemini key can embed (text, at most one upstream batch), else BadRequest."""
    if items and isinstance(items[0], list):
        raise BadRequest("token arrays in 'input' are only accepted by model groups served by OpenAI keys; "
                         "send text", param="input")
    if len(items) > GEMINI_BATCH_LIMIT:  # the surface splits larger batches before they get here
        raise BadRequest(f"at most {GEMINI_BATCH_LIMIT} inputs per upstream call", param="input")
    return items  # type: ignore[return-value]


def gemini_request(body: dict[str, Any], model: str, texts: list[str] | None = None) -> bytes:
    """`texts`: gemini_texts(inputs(body)), when the caller has it already."""
    items = gemini_texts(inputs(body)) if texts is None else texts
    name = f"models/{model}"
    dims = body.get("dimensions")
    requests: list[dict[str, Any]] = []
    for text in items:
        one: dict[str, Any] = {"model": name, "content": {"parts": [{"text": text}]}}
        if dims is not None:
            one["outputDimensionality"] = dims
        requests.append(one)
    return orjson.dumps({"requests": requests})


def encode_vector(values: list[float], encoding: str | None) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
    return values


def gemini_answered(raw: bytes) -> bool:
    return raw.find(b'"embeddings"') >= 0


def from_gemini(raw: bytes, body: dict[str, Any], model: str, tokens: int,
                count: int | None = None) -> tuple[bytes, Usage]:
    """A batchEmbedContents answer -> the OpenAI embeddings body (indexes in input order).
    `count`: how many inputs the request had, when the caller knows it."""
    doc = orjson.loads(raw)
    embeddings = doc["embeddings"]
    if len(embeddings) != (len(inputs(body)) if count is None else count):
        raise ValueError("the upstream answered a different number of embeddings than inputs")
    encoding = body.get("encoding_format")
    data = [{"object": "embedding", "index": i, "embedding": encode_vector(e["values"], encoding)}
            for i, e in enumerate(embeddings)]
    usage = Usage(prompt=tokens, total=tokens)
    out = {"object": "list", "data": data, "model": model,
           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    return orjson.dumps(out), usage


def merge(parts: list[dict[str, Any]], model: str) -> bytes:
    """OpenAI embeddings bodies of consecutive slices of one batch -> one body, indexes renumbered in order."""
    data: list[dict[str, Any]] = []
    prompt = total = 0
    for part in parts:
        for item in part.get("data") or ():
            data.append({**item, "index": len(data)})
        usage = part.get("usage") or {}
        prompt += int(usage.get("prompt_tokens") or 0)
        total += int(usage.get("total_tokens") or 0)
    first = parts[0].get("model") if parts else None
    return orjson.dumps({"object": "list", "data": data, "model": first if isinstance(first, str) else model,
                         "usage": {"prompt_tokens": prompt, "total_tokens": total}})
