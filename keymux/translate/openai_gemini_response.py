"""Gemini GenerateContentResponse -> OpenAI chat.completion, and the pieces the stream reuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ._json import Json, get_int
from .media import data_uri
from .tool_calls import derive_call_id, join_tool_call_id


_FILTERED = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE",
    "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER", "NO_IMAGE",
})


def finish_reason(gemini_reason: str | None, *, has_tool_calls: bool) -> str:
    """Gemini finishReason -> OpenAI finish_reason.

    Blocking reasons (including the image ones: IMAGE_OTHER / NO_IMAGE mean the image the caller
    asked for was withheld) -> content_filter. MALFORMED_FUNCTION_CALL, OTHER and the rest end the
    turn normally -> stop, or tool_calls when the turn holds tool calls.
    """
    if gemini_reason == "MAX_TOKENS":
        return "length"
    if gemini_reason in _FILTERED:
        return "content_filter"
    return "tool_calls" if has_tool_calls else "stop"


def usage_from_gemini(usage_metadata: Json | None) -> Json | None:
    """Gemini usageMetadata -> OpenAI usage (reasoning tokens count as completion tokens)."""
    if not isinstance(usage_metadata, dict):
        return None
    prompt = get_int(usage_metadata, "promptTokenCount")
    candidates = get_int(usage_metadata, "candidatesTokenCount")
    thoughts = get_int(usage_metadata, "thoughtsTokenCount")
    total = get_int(usage_metadata, "totalTokenCount") or prompt + candidates + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": candidates + thoughts,
        "total_tokens": total,
        "prompt_tokens_details": {"cached_tokens": get_int(usage_metadata, "cachedContentTokenCount")},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


@dataclass
class Pieces:
    """What one candidate's parts say, in OpenAI terms."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: list[Json] = field(default_factory=list)  # stream shape: with "index"
    images: list[Json] = field(default_factory=list)


def read_parts(parts: Any, *, response_id: str, choice: int, tools_before: int = 0, images_before: int = 0) -> Pieces:
    """Sort a candidate's parts. Tool-call and image indexes continue from the counts already emitted."""
    pieces = Pieces()
    if not isinstance(parts, list):
        return pieces
    for part in parts:
        if not isinstance(part, dict):
            continue
        text = part.get("text")
        if isinstance(text, str):
            if text:
                (pieces.reasoning if part.get("thought") is True else pieces.text).append(text)
            continue
        call = part.get("functionCall")
        if isinstance(call, dict):
            k = tools_before + len(pieces.tool_calls)
            base = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
            signature = part.get("thoughtSignature")
            call_id = join_tool_call_id(
                base or derive_call_id(response_id, choice, k), signature if isinstance(signature, str) else None
            )
            args = call.get("args")
            pieces.tool_calls.append({
                "index": k,
                "id": call_id,
                "type": "function",
                "function": {
                    "name": call.get("name") or "",
                    "arguments": orjson.dumps(args if isinstance(args, dict) else {}).decode(),
                },
            })
            continue
        inline = part.get("inlineData")
        if isinstance(inline, dict):
            mime = inline.get("mimeType") or ""
            if isinstance(mime, str) and mime.startswith("image/") and isinstance(inline.get("data"), str):
                pieces.images.append({
                    "type": "image_url",
                    "image_url": {"url": data_uri(mime, inline["data"])},
                    "index": images_before + len(pieces.images),
                })
    return pieces


def _candidates(resp: Json) -> list[tuple[int, Json]]:
    candidates = resp.get("candidates")
    if not isinstance(candidates, list):
        return []
    indexed = []
    for pos, cand in enumerate(candidates):
        if isinstance(cand, dict):
            index = cand.get("index")
            indexed.append((index if isinstance(index, int) else pos, cand))
    return sorted(indexed, key=lambda item: item[0])


def candidate_parts(cand: Json) -> Any:
    content = cand.get("content")
    return content.get("parts") if isinstance(content, dict) else None


def response_from_gemini(resp: Json, *, model: str, response_id: str, created: int) -> Json:
    """Gemini GenerateContentResponse -> OpenAI chat.completion."""
    choices = []
    for index, cand in _candidates(resp):
        pieces = read_parts(candidate_parts(cand), response_id=response_id, choice=index)
        message: Json = {"role": "assistant", "content": "".join(pieces.text) or None}
        if pieces.reasoning:
            message["reasoning_content"] = "".join(pieces.reasoning)
        if pieces.tool_calls:
            message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in pieces.tool_calls]
        if pieces.images:
            message["images"] = pieces.images
        reason = cand.get("finishReason")
        choices.append({
            "index": index,
            "message": message,
            "logprobs": None,
            "finish_reason": finish_reason(reason if isinstance(reason, str) else None,
                                           has_tool_calls=bool(pieces.tool_calls)),
        })
    if not choices:
        # No candidates: a blocked prompt (promptFeedback.blockReason) or an empty answer.
        feedback = resp.get("promptFeedback")
        blocked = isinstance(feedback, dict) and bool(feedback.get("blockReason"))
        choices.append({
            "index": 0,
            "message": {"role": "assistant", "content": None},
            "logprobs": None,
            "finish_reason": "content_filter" if blocked else "stop",
        })
    out: Json = {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
    }
    usage = usage_from_gemini(resp.get("usageMetadata"))
    if usage is not None:
        out["usage"] = usage
    return out
