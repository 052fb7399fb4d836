"""OpenAI chat.completions client <-> pivot: the request in; the answer, its stream and errors out.

Validation is this module's: a bad field gets a 400 naming it (`messages[2].content[0].type`). A field
the target provider cannot take is refused with a hint, or dropped when `drop_params` is on.
Tool-call ids carry thought signatures (tool_calls.py): split on the way in, joined on the way out.
Cached answers are replayed and assembled here too (`stream_from_body`, `body_from_stream`).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from keymux.errors import BadRequest
from keymux.ids import new_id
from keymux.translate import pivot as p
from keymux.translate._json import Json
from keymux.translate.clients.openai_files import file_part
from keymux.translate.codecs import Target
from keymux.translate.error_bodies import openai_error
from keymux.translate.estimate import estimate_prompt_tokens
from keymux.translate.media import data_uri, guess_mime, parse_data_uri
from keymux.translate.sse import DONE, decode_all, sse_event
from keymux.translate.tool_calls import derive_call_id, join_tool_call_id, parse_arguments, split_tool_call_id

estimate_tokens = estimate_prompt_tokens


# Accepted and ignored: they mean nothing to the provider or are the caller's business.
_HARMLESS = frozenset({
    "model", "stream", "stream_options", "user", "metadata", "store",
    "parallel_tool_calls",
})
_MAPPED = frozenset({
    "messages", "tools", "tool_choice", "max_tokens", "max_completion_tokens", "temperature",
    "top_p", "top_k", "stop", "n", "seed", "presence_penalty", "frequency_penalty",
    "response_format", "modalities", "reasoning_effort", "service_tier",
})
EFFORTS = ("none", "minimal", "low", "medium", "high")
# OpenAI's service tiers -> Gemini's; "auto" and "scale" leave the choice to the provider's project default.
_TIERS = {"flex": "flex", "priority": "priority", "default": "standard", "auto": None, "scale": None}
DROP_HINT = "set litellm_settings.drop_params: true to drop it"
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_TOOL_MODES = ("none", "auto", "required")
_FINISH = {p.LENGTH: "length", p.CONTENT_FILTER: "content_filter"}


# == request in ====================================================================================


def decode_request(body: Any, *, drop_params: bool, target: Target) -> p.Request:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    _check_params(body, drop_params, target)
    req = p.Request()
    _Messages(req, target).convert(body.get("messages"))
    tools = body.get("tools")
    if tools is not None:
        req.tools = _tools(tools, drop_params, target)
    choice = body.get("tool_choice")
    if choice is not None:
        req.tool_choice = _tool_choice(choice, [t.name for t in req.tools])
    _generation(body, req)
    return req


def _check_params(body: Json, drop_params: bool, target: Target) -> None:
    for key, value in body.items():
        if key in _MAPPED or key in _HARMLESS:
            continue
        if value is None or value == {} or value == [] or (key == "logprobs" and value is False):
            continue
        if not drop_params:
            raise BadRequest(f"Unsupported parameter '{key}': {target.label} do not support it; {DROP_HINT}",
                             param=key)


class _Messages:
    """OpenAI messages -> pivot system parts and messages. System and developer messages, wherever they
    are, become the system prompt; tool results are named after the earlier call their id answers."""

    __slots__ = ("_req", "_target", "_call_names")

    def __init__(self, req: p.Request, target: Target) -> None:
        self._req = req
        self._target = target
        self._call_names: dict[str, str] = {}  # tool_call_id -> function name

    def convert(self, messages: Any) -> None:
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' must be a non-empty array of message objects", param="messages")
        system, out = self._req.system, self._req.messages
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict):
                raise BadRequest(f"messages[{i}] must be an object with a 'role'", param=f"messages[{i}]")
            role = msg.get("role")
            content = msg.get("content")
            if content.__class__ is str and (role == "user" or role == "system"):  # the common message
                if content:
                    if role == "user":
                        out.append(p.Message("user", [p.Part(p.TEXT, content)]))
                    else:
                        system.append(p.Part(p.TEXT, content))
                continue
            where = f"messages[{i}]"
            if role not in _ROLES:
                raise BadRequest(
                    f"{where}.role must be one of 'system', 'developer', 'user', 'assistant', 'tool'; got {role!r}",
                    param=f"{where}.role",
                )
            if role in ("system", "developer"):
                for text in _texts(content, where):
                    if text:
                        system.append(p.Part(p.TEXT, text))
                continue
            if role == "user":
                parts = self._user_parts(msg.get("content"), where)
            elif role == "assistant":
                role, parts = "assistant", self._assistant_parts(msg, where)
            else:
                role, parts = "user", [self._tool_result(msg, where)]
            if parts:
                out.append(p.Message(role, parts))
        if not out and not system:
            raise BadRequest("'messages' holds no content to send", param="messages")

    def _user_parts(self, content: Any, where: str) -> list[p.Part]:
        if isinstance(content, str):
            return [p.Part(p.TEXT, content)] if content else []
        if not isinstance(content, list):
            raise BadRequest(f"{where}.content must be a string or an array of content parts",
                             param=f"{where}.content")
        parts = []
        for j, part in enumerate(content):
            converted = self._content_part(part, f"{where}.content[{j}]")
            if converted is not None:
                parts.append(converted)
        return parts

    def _content_part(self, part: Any, where: str) -> p.Part | None:
        if isinstance(part, str):
            return p.Part(p.TEXT, part) if part else None
        if not isinstance(part, dict):
            raise BadRequest(f"{where} must be a content part object", param=where)
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise BadRequest(f"{where}.text must be a string", param=f"{where}.text")
            return p.Part(p.TEXT, text) if text else None
        if kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise BadRequest(f"{where}.image_url.url must be a non-empty string", param=f"{where}.image_url.url")
            return self._media(url, f"{where}.image_url.url", "image/jpeg")
        if kind == "input_audio":
            audio = part.get("input_audio")
            data = audio.get("data") if isinstance(audio, dict) else None
            fmt = audio.get("format") if isinstance(audio, dict) else None
            if not isinstance(data, str) or not isinstance(fmt, str) or not fmt:
                raise BadRequest(
                    f"{where}.input_audio must be an object with string 'data' (base64) and 'format'",
                    param=f"{where}.input_audio",
                )
            return self._inline(f"audio/{fmt.lower()}", data, f"{where}.input_audio")
        if kind == "file":
            return self._file(part.get("file"), where)
        raise BadRequest(f"{where}.type {kind!r} is not a supported content part type", param=f"{where}.type")

    def _file(self, file: Any, where: str) -> p.Part:
        if not isinstance(file, dict):
            raise BadRequest(f"{where}.file must be an object", param=f"{where}.file")
        return file_part(file, f"{where}.file", self._media, self._inline)

    def _media(self, url: str, where: str, default_mime: str) -> p.Part:
        if url.startswith("data:"):
            parsed = parse_data_uri(url)
            if parsed is None:
                raise BadRequest(f"{where} is not a valid data: URI", param=where)
            return self._inline(parsed[0] or default_mime, parsed[1], where)
        scheme = url.partition(":")[0].lower()
        if scheme in ("http", "https", "gs"):
            mime = guess_mime(url, default_mime)
            if not self._target.takes_url(url, mime):
                raise BadRequest(f"{where}: {self._target.label} cannot fetch {url.partition(':')[0]} URLs",
                                 param=where)
            return p.Part(p.MEDIA, mime=mime, url=url)
        raise BadRequest(f"{where} must be an http(s) URL or a data: URI", param=where)

    def _inline(self, mime: str, data: str, where: str) -> p.Part:
        if not self._target.takes_inline(mime):
            raise BadRequest(f"{where}: media of type {mime!r} cannot be sent to {self._target.label}", param=where)
        return p.Part(p.MEDIA, mime=mime, data=data)

    def _assistant_parts(self, msg: Json, where: str) -> list[p.Part]:
        parts: list[p.Part] = []
        reasoning = msg.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            parts.append(p.Part(p.THINKING, reasoning))
        parts.extend(p.Part(p.TEXT, t) for t in _texts(msg.get("content"), where) if t)
        images = msg.get("images")
        if isinstance(images, list):  # our own image-output convention, echoed back by clients
            for k, image in enumerate(images):
                image_url = image.get("image_url") if isinstance(image, dict) else None
                url = image_url.get("url") if isinstance(image_url, dict) else None
                if isinstance(url, str) and url.startswith("data:"):
                    parts.append(self._media(url, f"{where}.images[{k}].image_url.url", "image/png"))
        tool_calls = msg.get("tool_calls")
        if tool_calls is not None:
            if not isinstance(tool_calls, list):
                raise BadRequest(f"{where}.tool_calls must be an array", param=f"{where}.tool_calls")
            for k, call in enumerate(tool_calls):
                parts.append(self._tool_call(call, f"{where}.tool_calls[{k}]"))
        legacy = msg.get("function_call")
        if isinstance(legacy, dict):
            parts.append(self._tool_call({"function": legacy}, f"{where}.function_call"))
        return parts

    def _tool_call(self, call: Any, where: str) -> p.Part:
        if not isinstance(call, dict) or call.get("type", "function") != "function":
            raise BadRequest(f"{where} must be a tool call of type 'function'", param=where)
        fn = call.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise BadRequest(f"{where}.function.name must be a non-empty string", param=f"{where}.function.name")
        name: str = fn["name"]
        part = p.Part(p.TOOL_CALL, name=name, args=parse_arguments(fn.get("arguments")))
        call_id = call.get("id")
        if isinstance(call_id, str) and call_id:
            part.call_id, part.signature = split_tool_call_id(call_id)
            self._call_names[call_id] = name
        return part

    def _tool_result(self, msg: Json, where: str) -> p.Part:
        text = "".join(_texts(msg.get("content"), where))
        if msg["role"] == "function":  # legacy function-calling message
            name = msg.get("name")
            if not isinstance(name, str) or not name:
                raise BadRequest(f"{where}.name is required for a 'function' message", param=f"{where}.name")
            return p.Part(p.TOOL_RESULT, name=name, result=text)
        call_id = msg.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise BadRequest(f"{where}.tool_call_id is required for a 'tool' message", param=f"{where}.tool_call_id")
        name = self._call_names.get(call_id) or msg.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(
                f"{where}.tool_call_id {call_id!r} does not match a tool call of an earlier assistant message",
                param=f"{where}.tool_call_id",
            )
        return p.Part(p.TOOL_RESULT, name=name, call_id=split_tool_call_id(call_id)[0], result=text)


def _texts(content: Any, where: str) -> list[str]:
    """Text of a content that may only hold text (system, tool, assistant text)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content must be a string or an array of text parts", param=f"{where}.content")
    texts = []
    for j, part in enumerate(content):
        if isinstance(part, str):
            texts.append(part)
            continue
        kind = part.get("type") if isinstance(part, dict) else None
        key = "refusal" if kind == "refusal" else "text"
        value = part.get(key) if isinstance(part, dict) and kind in ("text", "refusal") else None
        if not isinstance(value, str):
            raise BadRequest(
                f"{where}.content[{j}] must be a text part ({{'type': 'text', 'text': ...}})",
                param=f"{where}.content[{j}]",
            )
        texts.append(value)
    return texts


def _tools(tools: Any, drop_params: bool, target: Target) -> list[p.Tool]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be an array", param="tools")
    out = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise BadRequest(f"{where} must be an object", param=where)
        kind = tool.get("type", "function")
        if kind != "function":
            if drop_params:
                continue
            raise BadRequest(f"{where}.type {kind!r} is not supported by {target.label} (only 'function'); {DROP_HINT}",
                             param=f"{where}.type")
        fn = tool.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise BadRequest(f"{where}.function.name must be a non-empty string", param=f"{where}.function.name")
        description = fn.get("description")
        out.append(p.Tool(fn["name"], description if isinstance(description, str) and description else None,
                          fn.get("parameters")))
    return out


def _tool_choice(choice: Any, names: list[str]) -> p.ToolChoice | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_MODES:
        return p.ToolChoice(choice)
    if isinstance(choice, dict) and choice.get("type") == "function":
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise BadRequest("tool_choice.function.name must be a non-empty string", param="tool_choice")
        if name not in names:
            raise BadRequest(f"tool_choice names function {name!r}, which is not in 'tools'", param="tool_choice")
        return p.ToolChoice("required", [name])
    raise BadRequest(
        "tool_choice must be 'none', 'auto', 'required' or {'type': 'function', 'function': {'name': ...}}",
        param="tool_choice",
    )


def _number(body: Json, key: str, integer: bool, minimum: float | None) -> Any:
    value = body.get(key)
    if value is None:
        return None
    valid = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not valid or (minimum is not None and value < minimum):
        what = "an integer" if integer else "a number"
        bound = f" >= {minimum:g}" if minimum is not None else ""
        raise BadRequest(f"'{key}' must be {what}{bound}; got {value!r}", param=key)
    return value


_NUMBERS: dict[str, tuple[str, bool, float | None]] = {  # OpenAI name: pivot attribute, integer, minimum
    "temperature": ("temperature", False, 0), "top_p": ("top_p", False, 0), "top_k": ("top_k", True, 1),
    "n": ("n", True, 1), "seed": ("seed", True, None), "presence_penalty": ("presence_penalty", False, None),
    "frequency_penalty": ("frequency_penalty", False, None),
}


_SHAPING = frozenset({"stop", "response_format", "modalities", "reasoning_effort", "service_tier"})


def _generation(body: Json, req: p.Request) -> None:
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    req.max_tokens = _number(body, key, True, 1)
    for name in body:
        spec = _NUMBERS.get(name)
        if spec is not None:
            setattr(req, spec[0], _number(body, name, spec[1], spec[2]))
    if _SHAPING.isdisjoint(body):  # the common body: one check in C instead of five lookups
        return
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        if any(stop):  # providers reject empty stop sequences
            req.stop = [s for s in stop if s]
    elif stop is not None:
        raise BadRequest("'stop' must be a string or an array of strings", param="stop")
    fmt = body.get("response_format")
    if fmt is not None:
        _response_format(fmt, req)
    modalities = body.get("modalities")
    if modalities is not None:
        if not isinstance(modalities, list) or not all(isinstance(m, str) for m in modalities):
            raise BadRequest("'modalities' must be an array of strings", param="modalities")
        if modalities:
            req.modalities = [m.lower() for m in modalities]
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort not in EFFORTS:
            raise BadRequest(f"'reasoning_effort' must be one of {', '.join(EFFORTS)}; got {effort!r}",
                             param="reasoning_effort")
        req.reasoning_effort = effort
    tier = body.get("service_tier")
    if tier is not None:
        if not isinstance(tier, str) or tier not in _TIERS:
            raise BadRequest(f"'service_tier' must be one of {', '.join(_TIERS)}; got {tier!r}",
                             param="service_tier")
        req.service_tier = _TIERS[tier]


def _response_format(fmt: Any, req: p.Request) -> None:
    if fmt is None:
        return
    if not isinstance(fmt, dict):
        raise BadRequest("response_format must be an object", param="response_format")
    kind = fmt.get("type")
    if kind == "text":
        return
    if kind == "json_object":
        req.response_format = "json"
        return
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise BadRequest("response_format.json_schema.schema must be a JSON Schema object",
                             param="response_format.json_schema.schema")
        req.response_format, req.response_schema = "json_schema", schema
        return
    raise BadRequest("response_format.type must be 'text', 'json_object' or 'json_schema'", param="response_format")


# == answer out ====================================================================================


def finish_reason(finish: str | None, has_tool_calls: bool) -> str:
    """Pivot finish -> OpenAI finish_reason: the rest end the turn normally (tool_calls when it holds calls)."""
    reason = _FINISH.get(finish) if finish else None
    return reason or ("tool_calls" if has_tool_calls else "stop")


def usage_doc(usage: p.Usage) -> Json:
    return {
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.completion,
        "total_tokens": usage.total,
        "prompt_tokens_details": {"cached_tokens": usage.cached},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    }


class _Pieces:
    """One choice's new parts in OpenAI terms; tool-call and image indexes continue from earlier chunks."""

    __slots__ = ("text", "reasoning", "tool_calls", "images")

    def __init__(self, parts: list[p.Part], response_id: str, choice: int, tools_before: int,
                 images_before: int) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: list[Json] = []
        self.images: list[Json] = []
        for part in parts:
            kind = part.kind
            if kind == p.TEXT:
                if part.text:
                    self.text.append(part.text)
            elif kind == p.THINKING:
                if part.text:
                    self.reasoning.append(part.text)
            elif kind == p.TOOL_CALL:
                k = tools_before + len(self.tool_calls)
                self.tool_calls.append({
                    "index": k,
                    "id": join_tool_call_id(part.call_id or derive_call_id(response_id, choice, k), part.signature),
                    "type": "function",
                    "function": {"name": part.name, "arguments": orjson.dumps(part.args or {}).decode()},
                })
            elif kind == p.MEDIA and part.data is not None and part.mime.startswith("image/"):
                self.images.append({"type": "image_url", "image_url": {"url": data_uri(part.mime, part.data)},
                                    "index": images_before + len(self.images)})


def response_doc(resp: p.Response, *, model: str, response_id: str, created: int) -> Json:
    choices = []
    for choice in resp.choices:
        parts = choice.parts
        if len(parts) == 1 and parts[0].kind == p.TEXT:  # the common answer: one piece of text
            choices.append({"index": choice.index, "message": {"role": "assistant", "content": parts[0].text or None},
                            "logprobs": None, "finish_reason": finish_reason(choice.finish, False)})
            continue
        pieces = _Pieces(parts, response_id, choice.index, 0, 0)
        message: Json = {"role": "assistant", "content": "".join(pieces.text) or None}
        if pieces.reasoning:
            message["reasoning_content"] = "".join(pieces.reasoning)
        if pieces.tool_calls:
            for call in pieces.tool_calls:
                del call["index"]
            message["tool_calls"] = pieces.tool_calls
        if pieces.images:
            message["images"] = pieces.images
        choices.append({"index": choice.index, "message": message, "logprobs": None,
                        "finish_reason": finish_reason(choice.finish, bool(pieces.tool_calls))})
    if not choices:  # no candidates: a blocked prompt or an empty answer
        choices.append({"index": 0, "message": {"role": "assistant", "content": None}, "logprobs": None,
                        "finish_reason": "content_filter" if resp.blocked else "stop"})
    out: Json = {"id": response_id, "object": "chat.completion", "created": created, "model": model,
                 "choices": choices}
    if resp.usage is not None:
        out["usage"] = usage_doc(resp.usage)
    return out


def encode_response(resp: p.Response, model: str) -> bytes:
    return orjson.dumps(response_doc(resp, model=model, response_id=f"chatcmpl-{new_id()}", created=int(time.time())))


def encode_error(status: int, message: str, code: str | None) -> bytes:
    return openai_error(status, message, code=code)


class StreamEncoder:
    """Pivot deltas -> chat.completion.chunk events. Each chunk carries one choice; the first chunk of a
    choice has `delta.role`. A stream that ends without a finish reason gets no invented one."""

    __slots__ = ("_model", "_id", "_created", "_include_usage", "usage", "_started", "_finished", "_tools",
                 "_images", "_frame")

    def __init__(self, model: str, include_usage: bool, *, response_id: str | None = None,
                 created: int | None = None) -> None:
        self._model = model
        self._id = response_id or f"chatcmpl-{new_id()}"
        self._created = int(time.time()) if created is None else created
        self._include_usage = include_usage
        self.usage: p.Usage | None = None  # the last usage the upstream reported
        self._started: set[int] = set()
        self._finished: set[int] = set()
        self._tools: dict[int, int] = {}  # choice -> tool calls emitted
        self._images: dict[int, int] = {}  # choice -> images emitted
        self._frame: tuple[bytes, bytes] | None = None  # a text chunk's event around its choice (see _text)

    def feed(self, delta: p.Delta) -> list[bytes]:
        choices = delta.choices
        if len(choices) == 1:  # the common chunk: more text of a started choice, byte for byte what chunks() makes
            choice = choices[0]
            parts = choice.parts
            if (choice.finish is None and len(parts) == 1 and parts[0].kind == p.TEXT and parts[0].text
                    and choice.index in self._started and choice.index not in self._finished):
                if delta.usage is not None:
                    self.usage = delta.usage
                return [self._text(choice.index, parts[0].text)]
        return [sse_event(orjson.dumps(c)) for c in self.chunks(delta)]

    def _text(self, index: int, text: str) -> bytes:
        """The event of a text chunk: the part every chunk repeats (id, object, created, model) encoded once
        per stream, the choice per chunk."""
        frame = self._frame
        if frame is None:
            frame = self._frame = (orjson.dumps(self._base())[:-1] + b',"choices":[',
                                   b'],"usage":null}' if self._include_usage else b"]}")
        return sse_event(b"%s%s%s" % (frame[0], orjson.dumps({"index": index, "delta": {"content": text},
                                                               "logprobs": None, "finish_reason": None}), frame[1]))

    def finish(self) -> list[bytes]:
        return [sse_event(orjson.dumps(c)) for c in self.final_chunks()] + [DONE]

    def error(self, status: int, message: str) -> bytes:
        return sse_event(openai_error(status, message))

    def chunks(self, delta: p.Delta) -> list[Json]:
        if delta.usage is not None:
            self.usage = delta.usage
        if not delta.choices:
            if delta.blocked and 0 not in self._finished:
                self._finished.add(0)
                return [self._chunk(0, self._delta(0), "content_filter")]
            return []
        out = []
        for choice in delta.choices:
            index = choice.index
            if index in self._finished:
                continue
            body = self._delta(index)
            parts = choice.parts
            if len(parts) == 1 and parts[0].kind == p.TEXT:  # the common chunk: one piece of text
                if parts[0].text:
                    body["content"] = parts[0].text
            elif parts:
                self._pieces(index, parts, body)
            finish = None
            if choice.finish is not None:
                finish = finish_reason(choice.finish, self._tools.get(index, 0) > 0)
                self._finished.add(index)
            if body or finish:
                out.append(self._chunk(index, body, finish))
        return out

    def _pieces(self, index: int, parts: list[p.Part], body: Json) -> None:
        tools_before = self._tools.get(index, 0)
        images_before = self._images.get(index, 0)
        pieces = _Pieces(parts, self._id, index, tools_before, images_before)
        if pieces.reasoning:
            body["reasoning_content"] = "".join(pieces.reasoning)
        if pieces.text:
            body["content"] = "".join(pieces.text)
        if pieces.tool_calls:
            body["tool_calls"] = pieces.tool_calls
            self._tools[index] = tools_before + len(pieces.tool_calls)
        if pieces.images:
            body["images"] = pieces.images
            self._images[index] = images_before + len(pieces.images)

    def final_chunks(self) -> list[Json]:
        """After the upstream stream ended: the usage chunk, if asked for."""
        if not self._include_usage:
            return []
        final = self._base()
        final["choices"] = []
        final["usage"] = usage_doc(self.usage) if self.usage is not None else None
        return [final]

    def _delta(self, index: int) -> Json:
        if index in self._started:
            return {}
        self._started.add(index)
        return {"role": "assistant"}

    def _base(self) -> Json:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model}

    def _chunk(self, index: int, delta: Json, finish: str | None) -> Json:
        out = self._base()
        out["choices"] = [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if self._include_usage:
            out["usage"] = None
        return out


# == cache: a whole answer <-> its stream ==========================================================


def stream_from_body(body: bytes, include_usage: bool) -> list[bytes]:
    """A cached chat.completion replayed as chunk events ending in [DONE]."""
    doc = orjson.loads(body)
    base = {"id": doc.get("id", ""), "object": "chat.completion.chunk", "created": doc.get("created", 0),
            "model": doc.get("model", "")}
    if doc.get("system_fingerprint"):
        base["system_fingerprint"] = doc["system_fingerprint"]
    out = []
    for choice in doc.get("choices") or []:
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        delta: Json = {"role": message.get("role", "assistant"), "content": message.get("content")}
        for extra in ("refusal", "reasoning_content"):
            if message.get(extra) is not None:
                delta[extra] = message[extra]
        if message.get("tool_calls"):
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
        out.append(sse_event(orjson.dumps({**base, "choices": [{"index": index, "delta": delta,
                                                                "finish_reason": None}]})))
        out.append(sse_event(orjson.dumps({**base, "choices": [{"index": index, "delta": {},
                                                                "finish_reason": choice.get("finish_reason")}]})))
    if include_usage and doc.get("usage"):
        out.append(sse_event(orjson.dumps({**base, "choices": [], "usage": doc["usage"]})))
    out.append(DONE)
    return out


def body_from_stream(events: list[bytes], usage: p.Usage | None = None) -> bytes | None:
    """The chat.completion a non-streamed request would have got, or None unless the stream ended cleanly."""
    head: Json = {}
    choices: dict[int, Json] = {}
    tools: dict[int, dict[int, Json]] = {}
    done = False
    for payload in decode_all(events):
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
    body: Json = {"id": head.get("id", ""), "object": "chat.completion", "created": head.get("created", 0),
                  "model": head.get("model", ""), "choices": [choices[i] for i in sorted(choices)]}
    if head.get("system_fingerprint"):
        body["system_fingerprint"] = head["system_fingerprint"]
    if head.get("usage"):
        body["usage"] = head["usage"]
    elif usage is not None:
        body["usage"] = {"prompt_tokens": usage.prompt, "completion_tokens": usage.completion,
                         "total_tokens": usage.total}
    return orjson.dumps(body)
