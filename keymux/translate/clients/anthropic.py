"""Anthropic Messages client <-> pivot: the request in; the message, its named-event stream and errors out.

Validation is this module's: a bad field gets a 400 naming it (`messages[1].content[0].source.type`).
A field the target provider cannot take is refused with a hint, or dropped under `drop_params`.
Signatures: a thinking block's `signature` is the provider's thought signature (Gemini `thoughtSignature`
on a thought part, Anthropic's own); a signature Gemini put on a function call rides in the `tool_use` id
(tool_calls.py), as it does for OpenAI clients, so tool use across turns keeps working.
Cached answers are replayed and assembled here too (`stream_from_body`, `body_from_stream`).
"""

from __future__ import annotations

from typing import Any

import orjson

from keymux.errors import BadRequest
from keymux.ids import new_id
from keymux.translate import pivot as p
from keymux.translate._json import Json
from keymux.translate.codecs import Target
from keymux.translate.error_bodies import anthropic_error
from keymux.translate.estimate import IMAGE_TOKENS, MESSAGE_OVERHEAD, PRIMING
from keymux.translate.media import guess_mime
from keymux.translate.sse import decode_all, sse_event
from keymux.translate.tool_calls import derive_call_id, join_tool_call_id, split_tool_call_id

# Accepted and ignored: they mean nothing to another provider or are the caller's business.
# `context_management` (Claude Code sends it) asks Anthropic to trim old tool results server-side; without
# it the whole history goes upstream, which changes no answer, only its size.
_HARMLESS = frozenset({
    "model", "stream", "metadata", "service_tier", "cache_control", "inference_geo", "speed", "diagnostics",
    "user_profile_id", "workspace_id", "context_management",
})
_MAPPED = frozenset({
    "messages", "system", "max_tokens", "stop_sequences", "temperature", "top_p", "top_k", "tools",
    "tool_choice", "thinking", "output_config",
})
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "high", "xhigh": "high"}
DROP_HINT = "set litellm_settings.drop_params: true to drop it"
_IMAGE_MIMES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_STOP = {p.LENGTH: "max_tokens", p.STOP_SEQUENCE: "stop_sequence", p.CONTENT_FILTER: "refusal",
         p.REFUSAL: "refusal", p.TOOL_CALLS: "tool_use"}


# == request in ====================================================================================


def decode_request(body: Any, *, drop_params: bool, target: Target) -> p.Request:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    for key, value in body.items():
        if key in _MAPPED or key in _HARMLESS or value is None:
            continue
        if not drop_params:
            raise BadRequest(f"Unsupported parameter '{key}': {target.label} do not support it; {DROP_HINT}")
    req = p.Request()
    req.system = _system(body.get("system"))
    _Messages(req, target).convert(body.get("messages"))
    tools = body.get("tools")
    if tools is not None:
        req.tools = _tools(tools, drop_params, target)
    choice = body.get("tool_choice")
    if choice is not None and req.tools:
        req.tool_choice = _tool_choice(choice, {t.name for t in req.tools})
    _generation(body, req)
    return req


def _system(system: Any) -> list[p.Part]:
    if system is None:
        return []
    if isinstance(system, str):
        return [p.Part(p.TEXT, system)] if system else []
    if not isinstance(system, list):
        raise BadRequest("system: must be a string or an array of text blocks")
    out = []
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise BadRequest(f"system.{i}: must be a text block ({{'type': 'text', 'text': ...}})")
        if block["text"]:
            out.append(p.Part(p.TEXT, block["text"]))
    return out


class _Messages:
    """Anthropic messages -> pivot messages; tool results are named after the tool_use their id answers."""

    __slots__ = ("_req", "_target", "_names")

    def __init__(self, req: p.Request, target: Target) -> None:
        self._req = req
        self._target = target
        self._names: dict[str, str] = {}  # tool_use id -> tool name

    def convert(self, messages: Any) -> None:
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages: must be a non-empty array of messages")
        out = self._req.messages
        for i, msg in enumerate(messages):
            where = f"messages.{i}"
            if not isinstance(msg, dict):
                raise BadRequest(f"{where}: must be an object with 'role' and 'content'")
            role = msg.get("role")
            if role not in ("user", "assistant"):
                raise BadRequest(f"{where}.role: must be 'user' or 'assistant'; got {role!r}")
            content = msg.get("content")
            if isinstance(content, str):
                parts = [p.Part(p.TEXT, content)] if content else []
            elif isinstance(content, list):
                parts = []
                for j, block in enumerate(content):
                    parts.extend(self._block(block, role, f"{where}.content.{j}"))
            else:
                raise BadRequest(f"{where}.content: must be a string or an array of content blocks")
            if parts:
                out.append(p.Message(role, parts))

    def _block(self, block: Any, role: str, where: str) -> list[p.Part]:
        if not isinstance(block, dict):
            raise BadRequest(f"{where}: must be a content block object")
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise BadRequest(f"{where}.text: must be a string")
            return [p.Part(p.TEXT, text)] if text else []
        if kind == "image" or kind == "document":
            if role != "user":
                raise BadRequest(f"{where}: {kind} blocks are only allowed in user messages")
            return [self._source(block.get("source"), kind, f"{where}.source")]
        if kind == "tool_use":
            return [self._tool_use(block, where)]
        if kind == "tool_result":
            return self._tool_result(block, where)
        if kind == "thinking":
            sig = block.get("signature")
            text = block.get("thinking")
            return [p.Part(p.THINKING, text if isinstance(text, str) else "",
                           sig if isinstance(sig, str) and sig else None)]
        if kind == "redacted_thinking":
            return []  # opaque Anthropic data no other provider can read
        raise BadRequest(f"{where}.type: {kind!r} is not a supported content block type")

    def _source(self, source: Any, kind: str, where: str) -> p.Part:
        if not isinstance(source, dict):
            raise BadRequest(f"{where}: must be an object with a 'type'")
        stype = source.get("type")
        if stype == "base64":
            mime, data = source.get("media_type"), source.get("data")
            if not isinstance(mime, str) or not isinstance(data, str) or not data:
                raise BadRequest(f"{where}: a base64 source needs string 'media_type' and 'data'")
            if kind == "image" and mime not in _IMAGE_MIMES:
                raise BadRequest(f"{where}.media_type: must be one of {', '.join(_IMAGE_MIMES)}; got {mime!r}")
            if not self._target.takes_inline(mime):
                raise BadRequest(f"{where}: media of type {mime!r} cannot be sent to {self._target.label}")
            return p.Part(p.MEDIA, mime=mime, data=data)
        if stype == "url":
            url = source.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise BadRequest(f"{where}.url: must be an http(s) URL")
            mime = guess_mime(url, "image/jpeg" if kind == "image" else "application/pdf")
            if not self._target.takes_url(url, mime):
                raise BadRequest(f"{where}: {self._target.label} cannot fetch URLs")
            return p.Part(p.MEDIA, mime=mime, url=url)
        if stype == "text" and kind == "document":
            data = source.get("data")
            if not isinstance(data, str):
                raise BadRequest(f"{where}.data: must be a string")
            return p.Part(p.TEXT, data)
        raise BadRequest(f"{where}.type: {stype!r} sources cannot be sent to {self._target.label}")

    def _tool_use(self, block: Json, where: str) -> p.Part:
        name, call_id, args = block.get("name"), block.get("id"), block.get("input")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"{where}.name: must be a non-empty string")
        if not isinstance(call_id, str) or not call_id:
            raise BadRequest(f"{where}.id: must be a non-empty string")
        if args is not None and not isinstance(args, dict):
            raise BadRequest(f"{where}.input: must be an object")
        self._names[call_id] = name
        base, signature = split_tool_call_id(call_id)
        return p.Part(p.TOOL_CALL, name=name, call_id=base, signature=signature, args=args or {})

    def _tool_result(self, block: Json, where: str) -> list[p.Part]:
        call_id = block.get("tool_use_id")
        if not isinstance(call_id, str) or not call_id:
            raise BadRequest(f"{where}.tool_use_id: must be a non-empty string")
        name = self._names.get(call_id)
        if name is None:
            raise BadRequest(f"{where}.tool_use_id: {call_id!r} does not match a tool_use block of an earlier "
                             "assistant message")
        content = block.get("content")
        texts: list[str] = []
        media: list[p.Part] = []
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for k, inner in enumerate(content):
                for part in self._block(inner, "user", f"{where}.content.{k}"):
                    if part.kind == p.TEXT:
                        texts.append(part.text)
                    elif part.kind == p.MEDIA:
                        media.append(part)
                    else:
                        raise BadRequest(f"{where}.content.{k}: a tool result holds only text, images, documents")
        elif content is not None:
            raise BadRequest(f"{where}.content: must be a string or an array of content blocks")
        text = "".join(texts)
        result: Any = {"error": text} if block.get("is_error") is True else text
        return [p.Part(p.TOOL_RESULT, name=name, call_id=split_tool_call_id(call_id)[0], result=result), *media]


def _tools(tools: Any, drop_params: bool, target: Target) -> list[p.Tool]:
    if not isinstance(tools, list):
        raise BadRequest("tools: must be an array")
    out = []
    for i, tool in enumerate(tools):
        where = f"tools.{i}"
        if not isinstance(tool, dict):
            raise BadRequest(f"{where}: must be an object")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            if drop_params:
                continue
            raise BadRequest(f"{where}.type: server tool {kind!r} cannot run on {target.label}; {DROP_HINT}")
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"{where}.name: must be a non-empty string")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise BadRequest(f"{where}.input_schema: must be a JSON Schema object")
        description = tool.get("description")
        out.append(p.Tool(name, description if isinstance(description, str) else None, schema))
    return out


def _tool_choice(choice: Any, names: set[str]) -> p.ToolChoice:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        return p.ToolChoice("auto")
    if kind == "any":
        return p.ToolChoice("required")
    if kind == "none":
        return p.ToolChoice("none")
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or name not in names:
            raise BadRequest(f"tool_choice.name: {name!r} is not one of the tools")
        return p.ToolChoice("required", [name])
    raise BadRequest("tool_choice.type: must be 'auto', 'any', 'tool' or 'none'")


def _number(body: Json, key: str, integer: bool) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise BadRequest(f"{key}: must be {'an integer' if integer else 'a number'}")
    return value


def _generation(body: Json, req: p.Request) -> None:
    max_tokens = _number(body, "max_tokens", True)
    if max_tokens is None or max_tokens < 1:
        raise BadRequest("max_tokens: Field required (an integer >= 1)")
    req.max_tokens = max_tokens
    req.temperature = _number(body, "temperature", False)
    req.top_p = _number(body, "top_p", False)
    req.top_k = _number(body, "top_k", True)
    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise BadRequest("stop_sequences: must be an array of strings")
        req.stop = [s for s in stop if s] or None
    thinking = body.get("thinking")
    if thinking is not None:
        kind = thinking.get("type") if isinstance(thinking, dict) else None
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
                raise BadRequest("thinking.budget_tokens: must be an integer >= 1024")
            req.thinking_budget, req.include_thoughts = budget, True
        elif kind == "adaptive":
            req.thinking_budget, req.include_thoughts = -1, True
        elif kind != "disabled":
            raise BadRequest("thinking.type: must be 'enabled', 'adaptive' or 'disabled'")
    config = body.get("output_config")
    if config is not None:
        _output_config(config, req)


def _output_config(config: Any, req: p.Request) -> None:
    if not isinstance(config, dict):
        raise BadRequest("output_config: must be an object")
    effort = config.get("effort")
    if effort is not None:
        if effort not in _EFFORTS:
            raise BadRequest(f"output_config.effort: must be one of {', '.join(_EFFORTS)}; got {effort!r}")
        req.reasoning_effort = _EFFORTS[effort]
    fmt = config.get("format")
    if fmt is not None:
        schema = fmt.get("schema") if isinstance(fmt, dict) else None
        if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(schema, dict):
            raise BadRequest("output_config.format: must be {'type': 'json_schema', 'schema': {...}}")
        req.response_format, req.response_schema = "json_schema", schema


def estimate_tokens(body: Any) -> int:
    """ceil(chars / 4) of every string in system, messages and tools, plus the per-image and per-message
    costs of estimate.py: cheap, before any key is chosen."""
    if not isinstance(body, dict):
        return PRIMING
    messages = body.get("messages")
    count = len(messages) if isinstance(messages, list) else 0
    chars, media = _walk(body.get("system")), 0
    chars += _walk(body.get("tools"))
    stack: list[Any] = [messages]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            chars += len(node)
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if node.get("type") in ("image", "document") and isinstance(node.get("source"), dict) \
                    and node["source"].get("type") != "text":
                media += IMAGE_TOKENS
                continue
            stack.extend(v for k, v in node.items() if k not in ("type", "id", "tool_use_id", "signature"))
    return -(-chars // 4) + media + MESSAGE_OVERHEAD * count + PRIMING


def _walk(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(len(k) + _walk(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_walk(v) for v in value)
    return 0


# == answer out ====================================================================================


def stop_reason(finish: str | None, has_tool_use: bool) -> str:
    reason = _STOP.get(finish) if finish else None
    if reason is None or reason == "tool_use":
        return "tool_use" if has_tool_use else "end_turn"
    return reason


def usage_doc(usage: p.Usage | None) -> Json:
    """Anthropic counts cached input apart: input_tokens leaves out what was read from the cache."""
    if usage is None:
        return {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                "output_tokens": 0}
    return {"input_tokens": max(0, usage.prompt - usage.cached), "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": usage.cached, "output_tokens": usage.completion}


def _blocks(parts: list[p.Part], message_id: str) -> list[Json]:
    out: list[Json] = []
    calls = 0
    for part in parts:
        kind = part.kind
        if kind == p.TEXT:
            if part.signature and out and out[-1]["type"] == "thinking" and not out[-1]["signature"]:
                out[-1]["signature"] = part.signature  # Gemini signed the answer's text: keep it with the thought
            if not part.text:
                continue
            if out and out[-1]["type"] == "text":
                out[-1]["text"] += part.text
            else:
                out.append({"type": "text", "text": part.text})
        elif kind == p.THINKING:
            if out and out[-1]["type"] == "thinking" and not out[-1]["signature"]:
                out[-1]["thinking"] += part.text
                out[-1]["signature"] = part.signature or ""
            else:
                out.append({"type": "thinking", "thinking": part.text, "signature": part.signature or ""})
        elif kind == p.TOOL_CALL:
            out.append(_tool_use(part, message_id, calls))
            calls += 1
    return out


def _tool_use(part: p.Part, message_id: str, k: int) -> Json:
    base = part.call_id or "toolu_" + derive_call_id(message_id, 0, k).removeprefix("call_")
    return {"type": "tool_use", "id": join_tool_call_id(base, part.signature), "name": part.name,
            "input": part.args or {}}


def response_doc(resp: p.Response, *, model: str, message_id: str) -> Json:
    choice = resp.choices[0] if resp.choices else None
    content = _blocks(choice.parts, message_id) if choice is not None else []
    has_tools = any(b["type"] == "tool_use" for b in content)
    reason = "refusal" if choice is None and resp.blocked else stop_reason(choice.finish if choice else None,
                                                                            has_tools)
    return {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": reason, "stop_sequence": None, "usage": usage_doc(resp.usage)}


def encode_response(resp: p.Response, model: str) -> bytes:
    return orjson.dumps(response_doc(resp, model=model, message_id=f"msg_{new_id()}"))


def encode_error(status: int, message: str, code: str | None) -> bytes:
    return anthropic_error(status, message, kind=code if code in _ERROR_TYPES else None)


_ERROR_TYPES = frozenset({"invalid_request_error", "authentication_error", "permission_error", "not_found_error",
                          "request_too_large", "rate_limit_error", "api_error", "overloaded_error",
                          "billing_error", "timeout_error"})


def _event(name: bytes, doc: Json) -> bytes:
    return sse_event(orjson.dumps(doc), event=name)


class StreamEncoder:
    """Pivot deltas -> Anthropic's named events: message_start (on the first delta, with its usage), ping,
    then per block content_block_start / _delta / _stop (a thinking block's signature as a signature_delta
    just before its stop; a tool_use whole in one input_json_delta), message_delta, message_stop."""

    __slots__ = ("_model", "_id", "usage", "_started", "_open", "_index", "_signature", "_finish", "_tools",
                 "_blocked")

    def __init__(self, model: str, include_usage: bool = False, *, message_id: str | None = None) -> None:
        self._model = model
        self._id = message_id or f"msg_{new_id()}"
        self.usage: p.Usage | None = None
        self._started = False
        self._open: str | None = None  # the type of the block being written
        self._index = -1
        self._signature: str | None = None  # the open thinking block's, sent just before its stop
        self._finish: str | None = None
        self._tools = 0
        self._blocked = False

    def feed(self, delta: p.Delta) -> list[bytes]:
        if delta.usage is not None:
            self.usage = delta.usage
        out: list[bytes] = []
        if not self._started:
            out += self._start()
        if delta.blocked:
            self._blocked = True
        for choice in delta.choices:
            if choice.index != 0:
                continue  # Anthropic has one answer per message
            for part in choice.parts:
                out += self._part(part)
            if choice.finish is not None:
                self._finish = choice.finish
        return out

    def _start(self) -> list[bytes]:
        self._started = True
        usage = usage_doc(self.usage)
        usage["output_tokens"] = min(usage["output_tokens"], 1)
        message: Json = {"id": self._id, "type": "message", "role": "assistant", "model": self._model, "content": [],
                   "stop_reason": None, "stop_sequence": None, "usage": usage}
        return [_event(b"message_start", {"type": "message_start", "message": message}),
                _event(b"ping", {"type": "ping"})]

    def _part(self, part: p.Part) -> list[bytes]:
        kind = part.kind
        out: list[bytes] = []
        if kind == p.TEXT:
            if part.signature and self._open == "thinking" and not self._signature:
                self._signature = part.signature
            if not part.text:
                return out
            if self._open != "text":
                out += self._close()
                out.append(self._begin({"type": "text", "text": ""}, "text"))
            out.append(self._delta({"type": "text_delta", "text": part.text}))
        elif kind == p.THINKING:
            if self._open != "thinking" or self._signature:
                out += self._close()
                out.append(self._begin({"type": "thinking", "thinking": "", "signature": ""}, "thinking"))
            if part.text:
                out.append(self._delta({"type": "thinking_delta", "thinking": part.text}))
            if part.signature:
                self._signature = part.signature
        elif kind == p.TOOL_CALL:
            out += self._close()
            block = _tool_use(part, self._id, self._tools)
            self._tools += 1
            out.append(self._begin({**block, "input": {}}, "tool_use"))
            out.append(self._delta({"type": "input_json_delta", "partial_json": orjson.dumps(block["input"]).decode()}))
            out += self._close()
        return out

    def _begin(self, block: Json, kind: str) -> bytes:
        self._index += 1
        self._open = kind
        return _event(b"content_block_start", {"type": "content_block_start", "index": self._index,
                                               "content_block": block})

    def _delta(self, delta: Json) -> bytes:
        return _event(b"content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta})

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        out = []
        if self._open == "thinking" and self._signature:
            out.append(self._delta({"type": "signature_delta", "signature": self._signature}))
        self._signature = None
        self._open = None
        out.append(_event(b"content_block_stop", {"type": "content_block_stop", "index": self._index}))
        return out

    def finish(self) -> list[bytes]:
        out = [] if self._started else self._start()
        out += self._close()
        reason = "refusal" if self._blocked and self._index < 0 else stop_reason(self._finish, self._tools > 0)
        usage = usage_doc(self.usage)
        del usage["cache_creation_input_tokens"]
        out.append(_event(b"message_delta", {"type": "message_delta",
                                             "delta": {"stop_reason": reason, "stop_sequence": None},
                                             "usage": usage}))
        out.append(_event(b"message_stop", {"type": "message_stop"}))
        return out

    def error(self, status: int, message: str) -> bytes:
        return sse_event(anthropic_error(status, message), event=b"error")


# == cache: a whole message <-> its stream ==========================================================


def stream_from_body(body: bytes, include_usage: bool = False) -> list[bytes]:
    """A cached message replayed as the event sequence a live stream would have sent."""
    doc = orjson.loads(body)
    usage = doc.get("usage") or {}
    start = {**doc, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {**usage, "output_tokens": min(1, usage.get("output_tokens", 0))}}
    out = [_event(b"message_start", {"type": "message_start", "message": start}), _event(b"ping", {"type": "ping"})]
    for i, block in enumerate(doc.get("content") or []):
        kind = block.get("type")
        first: Json
        delta: Json | None
        if kind == "text":
            first, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": block.get("text", "")}
        elif kind == "thinking":
            first, delta = {"type": "thinking", "thinking": "", "signature": ""}, \
                {"type": "thinking_delta", "thinking": block.get("thinking", "")}
        elif kind == "tool_use":
            first = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": orjson.dumps(block.get("input") or {}).decode()}
        else:
            first, delta = block, None
        out.append(_event(b"content_block_start", {"type": "content_block_start", "index": i, "content_block": first}))
        if delta is not None:
            out.append(_event(b"content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}))
        if kind == "thinking" and block.get("signature"):
            out.append(_event(b"content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                "type": "signature_delta", "signature": block["signature"]}}))
        out.append(_event(b"content_block_stop", {"type": "content_block_stop", "index": i}))
    out.append(_event(b"message_delta", {"type": "message_delta", "delta": {
        "stop_reason": doc.get("stop_reason"), "stop_sequence": doc.get("stop_sequence")}, "usage": usage}))
    out.append(_event(b"message_stop", {"type": "message_stop"}))
    return out


def body_from_stream(events: list[bytes], usage: p.Usage | None = None) -> bytes | None:
    """The message a non-streamed request would have got, or None unless the stream ended with message_stop."""
    message: Json | None = None
    blocks: dict[int, Json] = {}
    partial: dict[int, str] = {}
    for payload in decode_all(events):
        event = orjson.loads(payload)
        kind = event.get("type")
        if kind == "message_start":
            message = {**(event.get("message") or {})}
        elif kind == "content_block_start":
            blocks[event.get("index", 0)] = dict(event.get("content_block") or {})
        elif kind == "content_block_delta":
            index, delta = event.get("index", 0), event.get("delta") or {}
            block = blocks.setdefault(index, {})
            dtype = delta.get("type")
            if dtype == "text_delta":
                block["text"] = block.get("text", "") + delta.get("text", "")
            elif dtype == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
            elif dtype == "signature_delta":
                block["signature"] = delta.get("signature", "")
            elif dtype == "input_json_delta":
                partial[index] = partial.get(index, "") + delta.get("partial_json", "")
        elif kind == "message_delta" and message is not None:
            message.update(event.get("delta") or {})
            message["usage"] = {**(message.get("usage") or {}), **(event.get("usage") or {})}
        elif kind == "error":
            return None
        elif kind == "message_stop":
            if message is None:
                return None
            for index, text in partial.items():
                blocks[index]["input"] = orjson.loads(text) if text else {}
            message["content"] = [blocks[i] for i in sorted(blocks)]
            return orjson.dumps(message)
    return None
