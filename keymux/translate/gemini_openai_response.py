"""OpenAI chat.completion -> Gemini GenerateContentResponse, and the pieces the stream reuses."""

from __future__ import annotations

from typing import Any

from ._json import Json, get_dict, get_int
from .media import parse_data_uri
from .tool_calls import parse_arguments, split_tool_call_id


_FINISH = {
    "stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY", "tool_calls": "STOP", "function_call": "STOP",
}


def finish_reason_to_gemini(reason: Any) -> str | None:
    """OpenAI finish_reason -> Gemini finishReason (None stays None; unknown reasons -> OTHER)."""
    if not isinstance(reason, str) or not reason:
        return None
    return _FINISH.get(reason, "OTHER")


def usage_to_gemini(usage: Any) -> Json | None:
    """OpenAI usage -> Gemini usageMetadata (reasoning tokens split out as thoughtsTokenCount)."""
    if not isinstance(usage, dict):
        return None
    prompt = get_int(usage, "prompt_tokens")
    completion = get_int(usage, "completion_tokens")
    reasoning = get_int(get_dict(usage, "completion_tokens_details"), "reasoning_tokens")
    cached = get_int(get_dict(usage, "prompt_tokens_details"), "cached_tokens")
    out: Json = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": max(completion - reasoning, 0),
        "totalTokenCount": get_int(usage, "total_tokens") or prompt + completion,
    }
    if reasoning:
        out["thoughtsTokenCount"] = reasoning
    if cached:
        out["cachedContentTokenCount"] = cached
    return out


def response_to_gemini(resp: Json) -> Json:
    """OpenAI chat.completion -> Gemini GenerateContentResponse."""
    candidates = []
    for pos, choice in enumerate(resp.get("choices") or ()):
        if not isinstance(choice, dict):
            continue
        message = get_dict(choice, "message")
        index = get_int(choice, "index", pos)
        candidates.append({
            "content": {"role": "model", "parts": message_parts(message)},
            "finishReason": finish_reason_to_gemini(choice.get("finish_reason")) or "STOP",
            "index": index,
        })
    out: Json = {"candidates": candidates}
    usage = usage_to_gemini(resp.get("usage"))
    if usage is not None:
        out["usageMetadata"] = usage
    if isinstance(resp.get("model"), str):
        out["modelVersion"] = resp["model"]
    if isinstance(resp.get("id"), str):
        out["responseId"] = resp["id"]
    return out


def message_parts(message: Json) -> list[Json]:
    """An OpenAI assistant message (or a complete delta) -> Gemini parts."""
    parts: list[Json] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        parts.append({"text": reasoning, "thought": True})
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    if not content and isinstance(message.get("refusal"), str):
        content = message["refusal"]
    if isinstance(content, str) and content:
        parts.append({"text": content})
    for image in message.get("images") or ():
        url = get_dict(image, "image_url").get("url") if isinstance(image, dict) else None
        parsed = parse_data_uri(url) if isinstance(url, str) else None
        if parsed:
            parts.append({"inlineData": {"mimeType": parsed[0] or "image/png", "data": parsed[1]}})
    for call in message.get("tool_calls") or ():
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(fn, dict):
            continue
        function_call: Json = {"name": fn.get("name") or "", "args": parse_arguments(fn.get("arguments"))}
        part: Json = {"functionCall": function_call}
        call_id = call.get("id")
        if isinstance(call_id, str) and call_id:
            function_call["id"], signature = split_tool_call_id(call_id)
            if signature:
                part["thoughtSignature"] = signature
        parts.append(part)
    return parts
