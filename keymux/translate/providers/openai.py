"""Pivot <-> OpenAI(-compatible) chat.completions upstream: the request out, the answer and its stream in.

Addressing, auth and classification live in keymux/providers/openai.py; this module only knows bodies.
Reasoning text is not sent back upstream (chat.completions takes none in history). Tool-call ids that
carry a Gemini thought signature (tool_calls.py) are split on the way in.
"""

from __future__ import annotations

from typing import Any

import orjson

from keymux.errors import StreamBroken
from keymux.providers import openai as wire
from keymux.providers.base import Addressed
from keymux.translate import pivot as p
from keymux.translate._json import Json, get_dict, get_int
from keymux.translate.media import data_uri, parse_data_uri
from keymux.translate.tool_calls import parse_arguments, split_tool_call_id

name = "openai"
label = "an OpenAI-compatible upstream"
_AUDIO_FORMATS = {
    "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/mp3": "mp3", "audio/mpeg": "mp3",
}
_FINISH = {"stop": p.STOP, "length": p.LENGTH, "content_filter": p.CONTENT_FILTER, "tool_calls": p.TOOL_CALLS,
           "function_call": p.TOOL_CALLS}


# -- what it can take ------------------------------------------------------------------------------


def takes_inline(mime: str) -> bool:
    return mime.startswith("image/") or mime in _AUDIO_FORMATS or mime == "application/pdf"


def takes_url(url: str, mime: str) -> bool:
    return url.startswith(("http://", "https://")) and (not mime or mime.startswith("image/"))


# -- addressing ------------------------------------------------------------------------------------


def address(dep: Addressed, stream: bool) -> tuple[str, dict[str, str]]:
    return wire.chat_address(dep)  # Azure's deployments too
classify = wire.classify  # (status, headers, raw, now)


def error_details(raw: bytes) -> tuple[str | None, str | None]:
    message = wire.error_object(raw).get("message")
    return (str(message) if message else None), None


# -- request ---------------------------------------------------------------------------------------


def encode_request(req: p.Request, model: str, stream: bool) -> bytes:
    body = request_body(req, model)
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


def request_body(req: p.Request, model: str) -> Json:
    messages: list[Json] = []
    system = "".join(part.text for part in req.system if part.kind == p.TEXT)
    if system:
        messages.append({"role": "system", "content": system})
    for msg in req.messages:
        if msg.role == "assistant":
            messages.extend(_assistant(msg.parts))
        else:
            messages.extend(_user(msg.parts))
    out: Json = {"model": model, "messages": messages}
    tools = [_tool(tool) for tool in req.tools]
    if tools:
        choice: Any = None
        if req.tool_choice is not None:
            choice = req.tool_choice.mode
            names = req.tool_choice.names
            if choice == "required" and names:
                if len(names) == 1:
                    choice = {"type": "function", "function": {"name": names[0]}}
                else:
                    tools = [t for t in tools if t["function"]["name"] in names]
        out["tools"] = tools
        if choice is not None:
            out["tool_choice"] = choice
    _generation(req, out)
    return out


def _assistant(parts: list[p.Part]) -> list[Json]:
    text = "".join(part.text for part in parts if part.kind == p.TEXT)
    calls = [{"id": part.call_id, "type": "function",
              "function": {"name": part.name, "arguments": orjson.dumps(part.args or {}).decode()}}
             for part in parts if part.kind == p.TOOL_CALL]
    if not text and not calls:
        return []
    message: Json = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def _user(parts: list[p.Part]) -> list[Json]:
    messages: list[Json] = []
    content: list[Json] = []
    for part in parts:
        if part.kind == p.TEXT:
            if part.text:
                content.append({"type": "text", "text": part.text})
        elif part.kind == p.TOOL_RESULT:
            messages.append({"role": "tool", "tool_call_id": part.call_id, "content": _tool_content(part.result)})
        elif part.kind == p.MEDIA:
            content.append(_media(part))
    if len(content) == 1 and content[0]["type"] == "text":
        messages.append({"role": "user", "content": content[0]["text"]})
    elif content:
        messages.append({"role": "user", "content": content})
    return messages


def _tool_content(result: Any) -> str:
    if isinstance(result, str):
        return result
    if isinstance(result, dict) and len(result) == 1 and isinstance(result.get("content"), str):
        return str(result["content"])
    return orjson.dumps(result if result is not None else {}).decode()


def _media(part: p.Part) -> Json:
    mime = part.mime
    if part.data is None:
        return {"type": "image_url", "image_url": {"url": part.url}}
    if mime in _AUDIO_FORMATS:
        return {"type": "input_audio", "input_audio": {"data": part.data, "format": _AUDIO_FORMATS[mime]}}
    if mime == "application/pdf":
        return {"type": "file", "file": {"filename": part.name or "document.pdf", "file_data": data_uri(mime, part.data)}}
    return {"type": "image_url", "image_url": {"url": data_uri(mime, part.data)}}


def _tool(tool: p.Tool) -> Json:
    function: Json = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    function["parameters"] = tool.parameters if tool.parameters is not None else {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


_NUMBERS = (
    ("max_tokens", "max_completion_tokens"), ("temperature", "temperature"), ("top_p", "top_p"), ("n", "n"),
    ("seed", "seed"), ("presence_penalty", "presence_penalty"), ("frequency_penalty", "frequency_penalty"),
    ("stop", "stop"),
)


def _generation(req: p.Request, out: Json) -> None:
    for attr, openai_name in _NUMBERS:
        value = getattr(req, attr)
        if value is not None:
            out[openai_name] = value
    if req.response_format == "json_schema":
        out["response_format"] = {"type": "json_schema", "json_schema": {"name": "response",
                                                                          "schema": req.response_schema}}
    elif req.response_format == "json":
        out["response_format"] = {"type": "json_object"}
    if req.modalities and any(m != "text" for m in req.modalities):
        out["modalities"] = req.modalities
    effort = req.reasoning_effort or _effort_for_budget(req.thinking_budget)
    if effort:
        out["reasoning_effort"] = effort


def _effort_for_budget(budget: int | None) -> str | None:
    """The smallest effort that covers a positive budget. 0 (off) and -1 (dynamic) map to nothing:
    the model's default, which keeps models that reject reasoning_effort working."""
    if budget is None or budget <= 0:
        return None
    for effort, limit in (("minimal", 512), ("low", 1024), ("medium", 8192)):
        if budget <= limit:
            return effort
    return "high"


# -- response --------------------------------------------------------------------------------------


def usage(u: Any) -> p.Usage | None:
    if not isinstance(u, dict):
        return None
    prompt = get_int(u, "prompt_tokens")
    completion = get_int(u, "completion_tokens")
    return p.Usage(prompt, completion, get_int(get_dict(u, "completion_tokens_details"), "reasoning_tokens"),
                   get_int(u, "total_tokens") or prompt + completion,
                   get_int(get_dict(u, "prompt_tokens_details"), "cached_tokens"))


def finish(reason: Any) -> str | None:
    if not isinstance(reason, str) or not reason:
        return None
    return _FINISH.get(reason, p.OTHER)


def message_parts(message: Json) -> list[p.Part]:
    """An assistant message (or a delta without its tool-call fragments) -> pivot parts."""
    out: list[p.Part] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        out.append(p.Part(p.THINKING, reasoning))
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(c.get("text", "") for c in content if isinstance(c, dict) and isinstance(c.get("text"), str))
    if not content and isinstance(message.get("refusal"), str):
        content = message["refusal"]
    if isinstance(content, str) and content:
        out.append(p.Part(p.TEXT, content))
    for image in message.get("images") or ():
        image_url = get_dict(image, "image_url").get("url") if isinstance(image, dict) else None
        parsed = parse_data_uri(image_url) if isinstance(image_url, str) else None
        if parsed:
            out.append(p.Part(p.MEDIA, mime=parsed[0] or "image/png", data=parsed[1]))
    for call in message.get("tool_calls") or ():
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(fn, dict):
            continue
        call_id, signature = call.get("id"), None
        if isinstance(call_id, str) and call_id:
            call_id, signature = split_tool_call_id(call_id)
        else:
            call_id = None
        out.append(p.Part(p.TOOL_CALL, signature=signature, name=fn.get("name") or "", call_id=call_id,
                          args=parse_arguments(fn.get("arguments"))))
    return out


def decode_response(raw: bytes) -> p.Response:
    doc = orjson.loads(raw)
    return response(doc if isinstance(doc, dict) else {})


def response(doc: Json) -> p.Response:
    choices = []
    for pos, choice in enumerate(doc.get("choices") or ()):
        if isinstance(choice, dict):
            reason = choice.get("finish_reason")
            choices.append(p.Choice(get_int(choice, "index", pos), message_parts(get_dict(choice, "message")),
                                    finish(reason), reason if isinstance(reason, str) else None))
    model, rid = doc.get("model"), doc.get("id")
    return p.Response(choices, usage(doc.get("usage")), rid if isinstance(rid, str) else None,
                      model if isinstance(model, str) else None)


# -- stream ----------------------------------------------------------------------------------------


class StreamDecoder:
    """chat.completion.chunk payloads -> deltas. Tool-call fragments are gathered and come out whole
    with the chunk that finishes their choice (or at the end of a stream that never finished it)."""

    __slots__ = ("_calls", "ended")

    def __init__(self) -> None:
        self._calls: dict[int, dict[int, list[Any]]] = {}  # choice -> tool index -> [id, name, arguments]
        self.ended = False  # a choice's finish_reason came (keymux.providers.openai.ends_stream)

    def feed(self, payload: bytes) -> p.Delta | None:
        if payload == b"[DONE]":
            return None
        return self.feed_doc(orjson.loads(payload))

    def feed_doc(self, doc: Any) -> p.Delta | None:
        if not isinstance(doc, dict):
            return None
        if isinstance(doc.get("error"), dict):
            raise StreamBroken(502, str(doc["error"].get("message") or "upstream error"))
        choices = []
        for pos, choice in enumerate(doc.get("choices") or ()):
            if not isinstance(choice, dict):
                continue
            index = get_int(choice, "index", pos)
            delta = get_dict(choice, "delta")
            fragments = delta.get("tool_calls")
            if fragments is not None:
                self._collect(index, fragments)
                delta = {k: v for k, v in delta.items() if k != "tool_calls"}
            parts = message_parts(delta)
            reason = choice.get("finish_reason")
            if reason.__class__ is str:
                self.ended = True
            normalised = finish(reason)
            if normalised is not None:
                parts.extend(self._drain(index))
            if parts or normalised:
                choices.append(p.Choice(index, parts, normalised, reason if normalised else None))
        model, rid = doc.get("model"), doc.get("id")
        return p.Delta(choices, usage(doc.get("usage")), rid if isinstance(rid, str) else None,
                       model if isinstance(model, str) else None)

    def finish(self) -> p.Delta | None:
        leftovers = [p.Choice(index, parts) for index in sorted(self._calls) if (parts := self._drain(index))]
        return p.Delta(leftovers) if leftovers else None

    def _collect(self, index: int, fragments: Any) -> None:
        if not isinstance(fragments, list):
            return
        calls = self._calls.setdefault(index, {})
        for pos, fragment in enumerate(fragments):
            if not isinstance(fragment, dict):
                continue
            call = calls.setdefault(get_int(fragment, "index", pos), [None, "", ""])
            if isinstance(fragment.get("id"), str) and fragment["id"]:
                call[0] = fragment["id"]
            fn = fragment.get("function")
            if isinstance(fn, dict):
                if isinstance(fn.get("name"), str) and fn["name"]:
                    call[1] = fn["name"]
                if isinstance(fn.get("arguments"), str):
                    call[2] += fn["arguments"]

    def _drain(self, index: int) -> list[p.Part]:
        calls = self._calls.pop(index, {})
        return message_parts({"tool_calls": [{"id": c[0], "type": "function",
                                              "function": {"name": c[1], "arguments": c[2]}}
                                             for _, c in sorted(calls.items())]})
