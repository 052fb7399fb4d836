"""Anthropic Messages wire shapes for the emulator: error bodies, rate-limit headers, deterministic answers
(docs/anthropic-wire.md lists them beside the real API's).

Answers: "Echo: <last user text>" (capped at MAX_ECHO chars), stop_reason end_turn, or max_tokens
(truncated) when max_tokens is smaller; `thinking` enabled -> a first thinking block "Thinking about it..."
with a signature; tools (tool_choice not none) and a last user turn without tool_result -> one tool_use of
the first (or the chosen) tool with input {"query": <last user text>}; a last user turn of tool_result
blocks -> "Tool result: <their text>". Tokens: input = max(1, chars // 4) of all text (+ 1600 per image
or document), output = max(1, chars // 4).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

from keymux.emulator.gemini_answer import split_text

MAX_ECHO = 1000
MEDIA_TOKENS = 1600
MSG_THOUGHT = "Thinking about it..."
MSG_OVERLOADED = "Overloaded"
MSG_INTERNAL = "Internal server error"
MSG_CREDIT = ("Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to "
              "upgrade or purchase credits.")
MSG_INVALID_KEY = "invalid x-api-key"
MSG_MISSING_KEY = "x-api-key header is required"
MSG_PERMISSION = "Your API key does not have permission to use the specified resource."


def error_body(kind: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}


def rate_limit_message(kind: str, limit: int, model: str) -> str:
    what = {"rpm": "requests per minute", "tpm": "input tokens per minute"}.get(kind, "requests per day")
    return (f"This request would exceed the rate limit for your organization (emulator) of {limit} {what}. "
            "For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers "
            "for current usage. Please reduce the prompt length or the maximum tokens requested, or try again "
            "later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options "
            "for a rate limit increase.")


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def signature(text: str) -> str:
    """A stable opaque signature for a thinking block (real ones are long base64 blobs)."""
    return "EmuSig" + hashlib.sha256(text.encode()).hexdigest()[:40]


# ---------------------------------------------------------------- requests


def _texts(content: Any) -> tuple[list[str], int]:
    """Text pieces and media count of a message's content."""
    if isinstance(content, str):
        return [content], 0
    texts: list[str] = []
    media = 0
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind in ("image", "document"):
            media += 1
        elif kind == "tool_result":
            inner, m = _texts(block.get("content"))
            texts.extend(inner)
            media += m
        elif kind == "tool_use":
            texts.append(str(block.get("name", "")) + orjson.dumps(block.get("input") or {}).decode())
    return texts, media


def input_tokens(req: dict[str, Any]) -> int:
    chars = 0
    media = 0
    system = req.get("system")
    chars += sum(len(t) for t in _texts(system)[0]) if system is not None else 0
    for msg in req.get("messages") or ():
        texts, m = _texts(msg.get("content") if isinstance(msg, dict) else None)
        chars += sum(len(t) for t in texts)
        media += m
    return max(1, chars // 4) + media * MEDIA_TOKENS


def validate(req: Any, models: list[str]) -> tuple[int, str, str] | None:
    """(status, error type, message) of what the real API refuses, or None."""
    if not isinstance(req, dict):
        return 400, "invalid_request_error", "Request body must be a JSON object"
    model = req.get("model")
    if not isinstance(model, str) or not model:
        return 400, "invalid_request_error", "model: Field required"
    if model not in models:
        return 404, "not_found_error", f"model: {model}"
    if not isinstance(req.get("max_tokens"), int):
        return 400, "invalid_request_error", "max_tokens: Field required"
    msgs = req.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return 400, "invalid_request_error", "messages: Field required"
    known = {"model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature", "top_p",
             "top_k", "tools", "tool_choice", "thinking", "metadata", "service_tier", "output_config",
             "cache_control", "container", "mcp_servers", "context_management"}
    for name in req:
        if name not in known:
            return 400, "invalid_request_error", f"{name}: Extra inputs are not permitted"
    uses: set[Any] = set()
    for i, msg in enumerate(msgs):
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
            return 400, "invalid_request_error", f"messages.{i}.role: Input should be 'user' or 'assistant'"
        content = msg.get("content")
        blocks = content if isinstance(content, list) else []
        if msg["role"] == "user":
            for j, block in enumerate(blocks):
                if isinstance(block, dict) and block.get("type") == "tool_result" \
                        and block.get("tool_use_id") not in uses:
                    return 400, "invalid_request_error", (
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                        "`tool_use` block in the previous message.")
            uses = set()
        else:
            uses = {b.get("id") for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"}
            for j, block in enumerate(blocks):
                if isinstance(block, dict) and block.get("type") == "thinking" and not block.get("signature"):
                    return 400, "invalid_request_error", f"messages.{i}.content.{j}.thinking.signature: Field required"
    return None


class Answer:
    """The emulator's deterministic answer to one request."""

    __slots__ = ("blocks", "stop_reason", "input", "output")

    def __init__(self, req: dict[str, Any], tool_id: str) -> None:
        msgs = req["messages"]
        last = msgs[-1]
        content = last.get("content")
        results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"] \
            if isinstance(content, list) and last.get("role") == "user" else []
        user_text = ""
        for msg in reversed(msgs):
            if msg.get("role") == "user":
                user_text = " ".join(_texts(msg.get("content"))[0])[:MAX_ECHO]
                if user_text:
                    break
        self.input = input_tokens(req)
        self.blocks: list[dict[str, Any]] = []
        thinking = req.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
            self.blocks.append({"type": "thinking", "thinking": MSG_THOUGHT, "signature": signature(user_text)})
        tools = [t.get("name") for t in req.get("tools") or () if isinstance(t, dict) and t.get("name")]
        choice: dict[str, Any] = req["tool_choice"] if isinstance(req.get("tool_choice"), dict) else {}
        self.stop_reason = "end_turn"
        if results:
            text = "Tool result: " + " ".join(" ".join(_texts(r.get("content"))[0]) for r in results)
        elif tools and choice.get("type") != "none":
            name = choice.get("name") if choice.get("type") == "tool" else tools[0]
            use = {"type": "tool_use", "id": tool_id, "name": name, "input": {"query": user_text}}
            self.blocks.append(use)
            self.stop_reason = "tool_use"
            self.output = max(1, len(orjson.dumps(use)) // 4)
            return
        else:
            text = "Echo: " + user_text
        tokens = max(1, len(text) // 4)
        limit = req.get("max_tokens")
        if isinstance(limit, int) and 0 < limit < tokens:
            text, tokens, self.stop_reason = text[: limit * 4], limit, "max_tokens"
        self.blocks.append({"type": "text", "text": text})
        self.output = tokens

    def usage(self, cache: tuple[int, int]) -> dict[str, Any]:
        created, read = cache
        return {"input_tokens": self.input - created - read, "cache_creation_input_tokens": created,
                "cache_read_input_tokens": read, "output_tokens": self.output, "service_tier": "standard"}

    def message(self, mid: str, model: str, cache: tuple[int, int]) -> dict[str, Any]:
        return {"id": mid, "type": "message", "role": "assistant", "model": model, "content": self.blocks,
                "stop_reason": self.stop_reason, "stop_sequence": None, "usage": self.usage(cache)}

    def events(self, mid: str, model: str, cache: tuple[int, int]) -> list[tuple[str, dict[str, Any]]]:
        usage = self.usage(cache)
        start = {**self.message(mid, model, cache), "content": [], "stop_reason": None,
                 "usage": {**usage, "output_tokens": 1}}
        out: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start})]
        for i, block in enumerate(self.blocks):
            kind = block["type"]
            if kind == "text":
                first: dict[str, Any] = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": piece} for piece in split_text(block["text"])]
            elif kind == "thinking":
                first = {"type": "thinking", "thinking": "", "signature": ""}
                deltas = [{"type": "thinking_delta", "thinking": piece} for piece in split_text(block["thinking"])]
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
            else:
                first = {**block, "input": {}}
                deltas = [{"type": "input_json_delta", "partial_json": piece}
                          for piece in split_text(orjson.dumps(block["input"]).decode())]
            out.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": first}))
            if i == 0:
                out.append(("ping", {"type": "ping"}))
            out += [("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d}) for d in deltas]
            out.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
        out.append(("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                                      "usage": {"output_tokens": self.output}}))
        out.append(("message_stop", {"type": "message_stop"}))
        return out


def cache_prefix(req: dict[str, Any]) -> bytes | None:
    """The prompt up to its last `cache_control` mark (what prompt caching keys on), or None."""
    raw = orjson.dumps([req.get("tools"), req.get("system"), req.get("messages")])
    end = raw.rfind(b'"cache_control"')
    return raw[:end] if end >= 0 else None
