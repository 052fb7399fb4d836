"""Pivot <-> Anthropic Messages upstream: the request out, the message and its named-event stream in.

Addressing, auth and classification live in keymux/providers/anthropic.py; this module only knows bodies.
Thinking goes upstream only with its signature (Anthropic refuses unsigned thinking blocks); a tool call
without an id (a Gemini client's) gets one derived from its position, and its result the same id.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson

from keymux.errors import StreamBroken
from keymux.providers import anthropic as wire
from keymux.providers.base import Addressed, Verdict
from keymux.translate import pivot as p
from keymux.translate._json import Json, get_int

name = "anthropic"
label = "Anthropic models"
DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; other APIs leave it to the model
THINKING_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}
_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_FINISH = {"end_turn": p.STOP, "max_tokens": p.LENGTH, "stop_sequence": p.STOP_SEQUENCE, "tool_use": p.TOOL_CALLS,
           "refusal": p.REFUSAL, "pause_turn": p.OTHER, "model_context_window_exceeded": p.LENGTH}
_ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                 "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
                 "overloaded_error": 529}


def takes_inline(mime: str) -> bool:
    return mime in _IMAGES or mime in ("application/pdf", "text/plain")


def takes_url(url: str, mime: str) -> bool:
    return url.startswith(("http://", "https://")) and (mime in _IMAGES or mime == "application/pdf")


def address(dep: Addressed, stream: bool) -> tuple[str, dict[str, str]]:
    return wire.messages_url(dep.api_base), wire.auth_headers(dep.api_key)


def classify(status: int, response_headers: Mapping[str, str], raw: bytes, now: float) -> Verdict:
    return wire.classify(status, response_headers, raw, now)


def error_details(raw: bytes) -> tuple[str | None, str | None]:
    err = wire.error_object(raw)
    message = err.get("message")
    return (str(message) if message else None), (str(err["type"]) if err.get("type") else None)


# -- request ---------------------------------------------------------------------------------------


def encode_request(req: p.Request, model: str, stream: bool) -> bytes:
    body = request_body(req, model)
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


class _Ids:
    """Ids for tool calls that came without one, paired with their results by function name."""

    __slots__ = ("_pending", "_n")

    def __init__(self) -> None:
        self._pending: dict[str, list[str]] = {}
        self._n = 0

    def call(self, part: p.Part) -> str:
        if part.call_id:
            return part.call_id
        self._n += 1
        made = f"toolu_keymux{self._n:04d}"
        self._pending.setdefault(part.name, []).append(made)
        return made

    def result(self, part: p.Part) -> str:
        if part.call_id:
            return part.call_id
        queue = self._pending.get(part.name)
        return queue.pop(0) if queue else f"toolu_keymux_{part.name}"


def request_body(req: p.Request, model: str) -> Json:
    ids = _Ids()
    messages: list[Json] = []
    for msg in req.messages:
        blocks = [b for b in (_block(part, ids) for part in msg.parts) if b is not None]
        if not blocks:
            continue
        if messages and messages[-1]["role"] == msg.role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": msg.role, "content": blocks})
    if not messages or messages[0]["role"] != "user":
        messages.insert(0, {"role": "user", "content": [{"type": "text", "text": "."}]})
    out: Json = {"model": model, "max_tokens": req.max_tokens or DEFAULT_MAX_TOKENS, "messages": messages}
    system = [{"type": "text", "text": part.text} for part in req.system if part.kind == p.TEXT and part.text]
    if system:
        out["system"] = system
    if req.tools:
        out["tools"] = [{"name": t.name, **({"description": t.description} if t.description else {}),
                         "input_schema": t.parameters or {"type": "object", "properties": {}}} for t in req.tools]
        choice = req.tool_choice
        if choice is not None:
            if choice.mode == "none":
                out["tool_choice"] = {"type": "none"}
            elif choice.mode == "required":
                names = choice.names or []
                out["tool_choice"] = {"type": "tool", "name": names[0]} if len(names) == 1 else {"type": "any"}
            else:
                out["tool_choice"] = {"type": "auto"}
    for attr in ("temperature", "top_p", "top_k"):
        value = getattr(req, attr)
        if value is not None:
            out[attr] = value
    if req.stop:
        out["stop_sequences"] = req.stop
    budget = req.thinking_budget
    if budget is None and req.reasoning_effort in THINKING_BUDGETS:
        budget = THINKING_BUDGETS[req.reasoning_effort]
    if budget is not None and budget != 0:
        budget = max(1024, budget if budget > 0 else THINKING_BUDGETS["medium"])
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if out["max_tokens"] <= budget:  # Anthropic wants room for the answer beyond the thinking
            out["max_tokens"] = budget + (req.max_tokens or DEFAULT_MAX_TOKENS)
        out.pop("temperature", None)  # thinking refuses a temperature other than 1
        out.pop("top_k", None)
    if req.response_format == "json_schema" and req.response_schema is not None:
        out["output_config"] = {"format": {"type": "json_schema", "schema": req.response_schema}}
    return out


def _block(part: p.Part, ids: _Ids) -> Json | None:
    kind = part.kind
    if kind == p.TEXT:
        return {"type": "text", "text": part.text} if part.text else None
    if kind == p.THINKING:
        return {"type": "thinking", "thinking": part.text, "signature": part.signature} if part.signature else None
    if kind == p.TOOL_CALL:
        return {"type": "tool_use", "id": ids.call(part), "name": part.name, "input": part.args or {}}
    if kind == p.TOOL_RESULT:
        result = part.result
        block: Json = {"type": "tool_result", "tool_use_id": ids.result(part)}
        if isinstance(result, dict) and set(result) == {"error"}:
            block["is_error"] = True
            result = result["error"]
        block["content"] = result if isinstance(result, str) else orjson.dumps(result).decode()
        return block
    source: Json = {"type": "base64", "media_type": part.mime, "data": part.data} if part.data is not None \
        else {"type": "url", "url": part.url}
    if part.mime == "text/plain" and part.data is not None:
        source = {"type": "text", "media_type": "text/plain", "data": base64.b64decode(part.data).decode("utf-8",
                                                                                                      "replace")}
    return {"type": "image" if part.mime.startswith("image/") else "document", "source": source}


# -- response --------------------------------------------------------------------------------------


def usage(doc: Any) -> p.Usage | None:
    """Anthropic usage -> Usage: the prompt is input + cache reads + cache writes (all billed input)."""
    if not isinstance(doc, dict):
        return None
    read = get_int(doc, "cache_read_input_tokens")
    prompt = get_int(doc, "input_tokens") + read + get_int(doc, "cache_creation_input_tokens")
    completion = get_int(doc, "output_tokens")
    return p.Usage(prompt, completion, 0, prompt + completion, read)


def _parts(blocks: Any) -> list[p.Part]:
    out: list[p.Part] = []
    for block in blocks if isinstance(blocks, list) else ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            out.append(p.Part(p.TEXT, block["text"]))
        elif kind == "thinking":
            sig = block.get("signature")
            out.append(p.Part(p.THINKING, str(block.get("thinking") or ""), sig if isinstance(sig, str) and sig else None))
        elif kind == "tool_use":
            args = block.get("input")
            out.append(p.Part(p.TOOL_CALL, name=str(block.get("name") or ""), call_id=str(block.get("id") or "") or None,
                              args=args if isinstance(args, dict) else {}))
    return out


def decode_response(raw: bytes) -> p.Response:
    doc = orjson.loads(raw)
    if not isinstance(doc, dict):
        doc = {}
    reason = doc.get("stop_reason")
    native = reason if isinstance(reason, str) else None
    choice = p.Choice(0, _parts(doc.get("content")), _FINISH.get(native, p.OTHER) if native else None, native)
    rid, model = doc.get("id"), doc.get("model")
    return p.Response([choice], usage(doc.get("usage")), rid if isinstance(rid, str) else None,
                      model if isinstance(model, str) else None)


# -- stream ----------------------------------------------------------------------------------------


class StreamDecoder:
    """Anthropic's events -> deltas: text and thinking as they come, a signature as an empty thinking part
    with it, a tool_use whole when its block stops, usage from message_start and message_delta."""

    __slots__ = ("_usage", "_tool", "_json", "ended")

    def __init__(self) -> None:
        self._usage: Json = {}
        self._tool: Json | None = None
        self._json: list[str] = []
        self.ended = False  # message_stop came (keymux.providers.anthropic.ends_stream)

    def feed(self, payload: bytes) -> p.Delta | None:
        event = orjson.loads(payload)
        if not isinstance(event, dict):
            raise StreamBroken(502, "upstream sent a malformed stream event")
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                return _one(p.Part(p.TEXT, str(delta.get("text", ""))))
            if dtype == "thinking_delta":
                return _one(p.Part(p.THINKING, str(delta.get("thinking", ""))))
            if dtype == "signature_delta":
                return _one(p.Part(p.THINKING, "", str(delta.get("signature", "")) or None))
            if dtype == "input_json_delta":
                self._json.append(str(delta.get("partial_json", "")))
            return None
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                self._tool, self._json = block, []
            elif block.get("type") == "text" and block.get("text"):
                return _one(p.Part(p.TEXT, str(block["text"])))
            return None
        if kind == "content_block_stop":
            if self._tool is None:
                return None
            tool, self._tool = self._tool, None
            text = "".join(self._json)
            args = orjson.loads(text) if text else tool.get("input") or {}
            return _one(p.Part(p.TOOL_CALL, name=str(tool.get("name") or ""), call_id=str(tool.get("id") or "") or None,
                               args=args if isinstance(args, dict) else {}))
        if kind == "message_start":
            message = event.get("message") or {}
            self._usage = dict(message.get("usage") or {})
            rid, model = message.get("id"), message.get("model")
            return p.Delta([], usage(self._usage), rid if isinstance(rid, str) else None,
                           model if isinstance(model, str) else None)
        if kind == "message_delta":
            self._usage.update(event.get("usage") or {})
            reason = (event.get("delta") or {}).get("stop_reason")
            native = reason if isinstance(reason, str) else None
            return p.Delta([p.Choice(0, [], _FINISH.get(native, p.OTHER) if native else None, native)],
                           usage(self._usage))
        if kind == "error":
            err = event.get("error") or {}
            raise StreamBroken(_ERROR_STATUS.get(str(err.get("type")), 500), str(err.get("message") or "upstream error"))
        if kind == "message_stop":
            self.ended = True
        return None  # ping, message_stop

    def finish(self) -> p.Delta | None:
        return None


def _one(part: p.Part) -> p.Delta:
    return p.Delta([p.Choice(0, [part])])
