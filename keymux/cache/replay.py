"""A cached answer is one whole client body. These pure functions turn it into a stream for a client
that asked to stream, and assemble a streamed answer back into one body so it can be cached.

OpenAI: a `chat.completion` <-> `chat.completion.chunk` events ending in `[DONE]`.
Gemini: a `GenerateContentResponse` <-> `data:` events of partial responses (text parts concatenated).
"""

from __future__ import annotations

from typing import Any

import orjson

from keymux.exchange import Usage
from keymux.translate.sse import SSEDecoder


def _event(doc: Any, *, crlf: bool = False) -> bytes:
    return b"data: " + orjson.dumps(doc) + (b"\r\n\r\n" if crlf else b"\n\n")


# --- body -> stream -------------------------------------------------------------------------------

def stream_events(surface: str, body: bytes, include_usage: bool) -> list[bytes]:
    if surface == "gemini":
        return [b"data: " + body + b"\r\n\r\n"]  # one event holding the whole response is a valid stream
    doc = orjson.loads(body)
    base = {"id": doc.get("id", ""), "object": "chat.completion.chunk", "created": doc.get("created", 0),
            "model": doc.get("model", "")}
    if doc.get("system_fingerprint"):
        base["system_fingerprint"] = doc["system_fingerprint"]
    out = []
    for choice in doc.get("choices") or []:
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": message.get("role", "assistant"), "content": message.get("content")}
        for extra in ("refusal", "reasoning_content"):
            if message.get(extra) is not None:
                delta[extra] = message[extra]
        if message.get("tool_calls"):
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
        out.append(_event({**base, "choices": [{"index": index, "delta": delta, "finish_reason": None}]}))
        out.append(_event({**base, "choices": [{"index": index, "delta": {},
                                                "finish_reason": choice.get("finish_reason")}]}))
    if include_usage and doc.get("usage"):
        out.append(_event({**base, "choices": [], "usage": doc["usage"]}))
    out.append(b"data: [DONE]\n\n")
    return out


# --- stream -> body -------------------------------------------------------------------------------

def assemble(surface: str, events: list[bytes], usage: Usage | None) -> bytes | None:
    """The whole body a non-streamed request would have got, or None when the stream was not a clean answer."""
    decoder = SSEDecoder()
    payloads = [p for chunk in events for p in decoder.feed(chunk)] + decoder.flush()
    try:
        if surface == "gemini":
            return _assemble_gemini(payloads)
        return _assemble_openai(payloads, usage)
    except (orjson.JSONDecodeError, AttributeError, TypeError, KeyError):
        return None


def _assemble_openai(payloads: list[bytes], usage: Usage | None) -> bytes | None:
    head: dict[str, Any] = {}
    choices: dict[int, dict[str, Any]] = {}
    tools: dict[int, dict[int, dict[str, Any]]] = {}
    done = False
    for payload in payloads:
        if payload.strip() == b"[DONE]":
            done = True
            continue
        chunk = orjson.loads(payload)
        if "error" in chunk:
            return None
        for k in ("id", "created", "model", "system_fingerprint"):
            if k in chunk and k not in head:
                head[k] = chunk[k]
        if chunk.get("usage"):
            head["usage"] = chunk["usage"]
        for choice in chunk.get("choices") or []:
            index = choice.get("index", 0)
            acc = choices.setdefault(index, {"index": index, "message": {"role": "assistant", "content": None},
                                             "finish_reason": None})
            delta = choice.get("delta") or {}
            message = acc["message"]
            if delta.get("role"):
                message["role"] = delta["role"]
            for field in ("content", "refusal", "reasoning_content"):
                if delta.get(field) is not None:
                    message[field] = (message.get(field) or "") + delta[field]
            for call in delta.get("tool_calls") or []:
                slot = tools.setdefault(index, {}).setdefault(call.get("index", 0), {
                    "id": None, "type": "function", "function": {"name": "", "arguments": ""}})
                if call.get("id"):
                    slot["id"] = call["id"]
                fn = call.get("function") or {}
                slot["function"]["name"] += fn.get("name") or ""
                slot["function"]["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                acc["finish_reason"] = choice["finish_reason"]
    if not done or not choices:
        return None
    for index, calls in tools.items():
        choices[index]["message"]["tool_calls"] = [calls[i] for i in sorted(calls)]
    body: dict[str, Any] = {"id": head.get("id", ""), "object": "chat.completion", "created": head.get("created", 0),
                            "model": head.get("model", ""), "choices": [choices[i] for i in sorted(choices)]}
    if head.get("system_fingerprint"):
        body["system_fingerprint"] = head["system_fingerprint"]
    if head.get("usage"):
        body["usage"] = head["usage"]
    elif usage is not None:
        body["usage"] = {"prompt_tokens": usage.prompt, "completion_tokens": usage.completion,
                         "total_tokens": usage.total}
    return orjson.dumps(body)


def _assemble_gemini(payloads: list[bytes]) -> bytes | None:
    out: dict[str, Any] = {}
    candidates: dict[int, dict[str, Any]] = {}
    for payload in payloads:
        chunk = orjson.loads(payload)
        if "error" in chunk:
            return None
        for k, v in chunk.items():
            if k != "candidates":
                out[k] = v  # usageMetadata, modelVersion, responseId, promptFeedback: the last wins
        for cand in chunk.get("candidates") or []:
            index = cand.get("index", 0)
            acc = candidates.setdefault(index, {"content": {"parts": [], "role": "model"}, "index": index})
            parts = acc["content"]["parts"]
            for part in (cand.get("content") or {}).get("parts") or []:
                last = parts[-1] if parts else None
                if "text" in part and last is not None and set(last) == set(part) and \
                        last.get("thought") == part.get("thought"):
                    last["text"] += part["text"]
                else:
                    parts.append(dict(part))
            for k, v in cand.items():
                if k not in ("content", "index"):
                    acc[k] = v
            if (cand.get("content") or {}).get("role"):
                acc["content"]["role"] = cand["content"]["role"]
    if not candidates or not any("finishReason" in c for c in candidates.values()):
        return None
    return orjson.dumps({"candidates": [candidates[i] for i in sorted(candidates)], **out})
