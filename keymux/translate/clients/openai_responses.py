"""OpenAI Responses client (`POST /v1/responses`) <-> pivot: the request in; the answer and errors out.
The stream's events are openai_responses_stream.py's.

keymux keeps no responses: `previous_response_id`, `conversation` and item references are refused by the
surface and here (a 400 naming the field); clients send the whole conversation in `input`, as Codex does
with `store: false`.

Thought signatures: a Gemini `thoughtSignature` on a thinking part is the `encrypted_content` of a
`reasoning` item; on a function call it rides inside `call_id` (tool_calls.py), the one field every client
sends back. Only function tools exist here: built-in tools (web_search, file_search, ...) are a 400.
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
from keymux.translate.clients.openai_responses_items import response_doc
from keymux.translate.clients.openai_responses_stream import StreamEncoder, body_from_stream, stream_from_body
from keymux.translate.codecs import Target
from keymux.translate.error_bodies import openai_error
from keymux.translate.estimate import IMAGE_TOKENS, MESSAGE_OVERHEAD, PRIMING
from keymux.translate.media import guess_mime, parse_data_uri
from keymux.translate.tool_calls import parse_arguments, split_tool_call_id

__all__ = ["StreamEncoder", "body_from_stream", "decode_request", "encode_error", "encode_response",
           "estimate_tokens", "stream_from_body"]

# Accepted and ignored: the caller's business, or meaningless to a provider behind a stateless gateway.
_HARMLESS = frozenset({
    "model", "stream", "stream_options", "store", "metadata", "user", "parallel_tool_calls", "service_tier",
    "include", "truncation", "prompt_cache_key", "safety_identifier", "prompt_cache_retention", "top_logprobs",
    "background", "client_metadata",
})
_MAPPED = frozenset({"input", "instructions", "tools", "tool_choice", "text", "reasoning", "max_output_tokens",
                     "temperature", "top_p"})
STATEFUL = ("previous_response_id", "conversation", "prompt")  # need responses kept server-side
_REFUSED = frozenset((*STATEFUL, "background"))
EFFORTS = {"none": "none", "minimal": "minimal", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}
DROP_HINT = "set litellm_settings.drop_params: true to drop it"
_ROLES = ("user", "assistant", "system", "developer")


def stateless_refusal(body: Json) -> BadRequest | None:
    """The 400 for a request that needs a stored response, or None."""
    if _REFUSED.isdisjoint(body):  # the common body: one check in C
        return None
    for name in STATEFUL:
        if body.get(name) is not None:
            return BadRequest(f"'{name}' is not supported: keymux keeps no responses (it is stateless); send the "
                              "whole conversation in 'input', including earlier output items", param=name)
    if body.get("background") is True:
        return BadRequest("'background' is not supported: keymux keeps no responses to poll", param="background")
    return None


# == request in ====================================================================================


def decode_request(body: Any, *, drop_params: bool, target: Target) -> p.Request:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    refusal = stateless_refusal(body)
    if refusal is not None:
        raise refusal
    for key, value in body.items():
        if key in _MAPPED or key in _HARMLESS or value is None or value == {} or value == []:
            continue
        if not drop_params:
            raise BadRequest(f"Unsupported parameter '{key}': {target.label} do not support it; {DROP_HINT}",
                             param=key)
    req = p.Request()
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        if instructions:
            req.system.append(p.Part(p.TEXT, instructions))
    elif instructions is not None:
        raise BadRequest("'instructions' must be a string", param="instructions")
    _Input(req, target).convert(body.get("input"))
    req.tools = _tools(body.get("tools"), drop_params, target)
    choice = body.get("tool_choice")
    if choice is not None:
        req.tool_choice = _tool_choice(choice)
    _generation(body, req)
    return req


class _Input:
    """`input` items -> pivot messages. Consecutive items of one role make one message; a reasoning item's
    thinking part stays in front of the calls and text of its turn."""

    __slots__ = ("_req", "_target", "_names")

    def __init__(self, req: p.Request, target: Target) -> None:
        self._req = req
        self._target = target
        self._names: dict[str, str] = {}  # call_id -> function name, for the outputs that answer them

    def convert(self, items: Any) -> None:
        if isinstance(items, str):
            if not items:
                raise BadRequest("'input' must not be empty", param="input")
            self._req.messages.append(p.Message("user", [p.Part(p.TEXT, items)]))
            return
        if not isinstance(items, list) or not items:
            raise BadRequest("'input' must be a string or a non-empty array of input items", param="input")
        for i, item in enumerate(items):
            where = f"input[{i}]"
            if not isinstance(item, dict):
                raise BadRequest(f"{where} must be an input item object", param=where)
            kind = item.get("type", "message")
            if kind == "message":
                self._message(item, where)
            elif kind == "function_call":
                self._add("assistant", self._call(item, where))
            elif kind == "function_call_output":
                self._add("user", self._output(item, where))
            elif kind == "reasoning":
                part = self._reasoning(item, where)
                if part is not None:
                    self._add("assistant", part)
            elif kind == "item_reference":
                raise BadRequest(f"{where}: item references are not supported: keymux keeps no responses; "
                                 "send the item itself", param=f"{where}.type")
            else:
                raise BadRequest(f"{where}.type {kind!r} is not supported: only message, function_call, "
                                 "function_call_output and reasoning items", param=f"{where}.type")
        if not self._req.messages:
            raise BadRequest("'input' holds no content to send", param="input")

    def _add(self, role: str, part: p.Part) -> None:
        messages = self._req.messages
        if messages and messages[-1].role == role:
            messages[-1].parts.append(part)
        else:
            messages.append(p.Message(role, [part]))

    def _message(self, item: Json, where: str) -> None:
        role = item.get("role")
        if role not in _ROLES:
            raise BadRequest(f"{where}.role must be one of 'user', 'assistant', 'system', 'developer'; got {role!r}",
                             param=f"{where}.role")
        content = item.get("content")
        if isinstance(content, str):
            parts = [p.Part(p.TEXT, content)] if content else []
        elif isinstance(content, list):
            parts = [q for j, c in enumerate(content) if (q := self._content(c, f"{where}.content[{j}]")) is not None]
        else:
            raise BadRequest(f"{where}.content must be a string or an array of content parts",
                             param=f"{where}.content")
        if role in ("system", "developer"):
            for part in parts:
                if part.kind != p.TEXT:
                    raise BadRequest(f"{where}: a {role} message may only hold text", param=f"{where}.content")
            self._req.system.extend(parts)
            return
        for part in parts:
            if role == "assistant" and part.kind != p.TEXT:
                raise BadRequest(f"{where}: an assistant message may only hold output text", param=f"{where}.content")
            self._add(role, part)

    def _content(self, part: Any, where: str) -> p.Part | None:
        if not isinstance(part, dict):
            raise BadRequest(f"{where} must be a content part object", param=where)
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text", "refusal", "summary_text"):
            text = part.get("refusal" if kind == "refusal" else "text")
            if not isinstance(text, str):
                raise BadRequest(f"{where}.text must be a string", param=f"{where}.text")
            return p.Part(p.TEXT, text) if text else None
        if kind == "input_image":
            url = part.get("image_url")
            if isinstance(url, str) and url:
                return self._media(url, f"{where}.image_url", "image/jpeg")
            file_id = part.get("file_id")
            if isinstance(file_id, str) and file_id:
                return p.Part(p.MEDIA, mime="image/jpeg", url=file_id)
            raise BadRequest(f"{where} needs 'image_url' or 'file_id'", param=where)
        if kind == "input_file":
            return file_part(part, where, self._media, self._inline)
        raise BadRequest(f"{where}.type {kind!r} is not a supported content part type", param=f"{where}.type")

    def _media(self, url: str, where: str, default_mime: str) -> p.Part:
        if url.startswith("data:"):
            parsed = parse_data_uri(url)
            if parsed is None:
                raise BadRequest(f"{where} is not a valid data: URI", param=where)
            return self._inline(parsed[0] or default_mime, parsed[1], where)
        scheme = url.partition(":")[0].lower()
        if scheme not in ("http", "https", "gs"):
            raise BadRequest(f"{where} must be an http(s) URL or a data: URI", param=where)
        mime = guess_mime(url, default_mime)
        if not self._target.takes_url(url, mime):
            raise BadRequest(f"{where}: {self._target.label} cannot fetch {scheme} URLs", param=where)
        return p.Part(p.MEDIA, mime=mime, url=url)

    def _inline(self, mime: str, data: str, where: str) -> p.Part:
        if not self._target.takes_inline(mime):
            raise BadRequest(f"{where}: media of type {mime!r} cannot be sent to {self._target.label}", param=where)
        return p.Part(p.MEDIA, mime=mime, data=data)

    def _call(self, item: Json, where: str) -> p.Part:
        name, call_id = item.get("name"), item.get("call_id")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"{where}.name must be a non-empty string", param=f"{where}.name")
        if not isinstance(call_id, str) or not call_id:
            raise BadRequest(f"{where}.call_id must be a non-empty string", param=f"{where}.call_id")
        self._names[call_id] = name
        base, signature = split_tool_call_id(call_id)
        return p.Part(p.TOOL_CALL, name=name, call_id=base, signature=signature,
                      args=parse_arguments(item.get("arguments")))

    def _output(self, item: Json, where: str) -> p.Part:
        call_id = item.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            raise BadRequest(f"{where}.call_id must be a non-empty string", param=f"{where}.call_id")
        name = self._names.get(call_id)
        if name is None:
            raise BadRequest(f"{where}.call_id {call_id!r} does not match a function_call item before it",
                             param=f"{where}.call_id")
        output = item.get("output")
        if isinstance(output, list):  # content parts: their text is the result
            output = "".join(c.get("text", "") for c in output if isinstance(c, dict) and isinstance(c.get("text"), str))
        elif not isinstance(output, str):
            raise BadRequest(f"{where}.output must be a string or an array of content parts", param=f"{where}.output")
        return p.Part(p.TOOL_RESULT, name=name, call_id=split_tool_call_id(call_id)[0], result=output)

    def _reasoning(self, item: Json, where: str) -> p.Part | None:
        summary = item.get("summary")
        texts = [s.get("text") for s in summary if isinstance(s, dict)] if isinstance(summary, list) else []
        text = "".join(t for t in texts if isinstance(t, str))
        signature = item.get("encrypted_content")
        if signature is not None and not isinstance(signature, str):
            raise BadRequest(f"{where}.encrypted_content must be a string", param=f"{where}.encrypted_content")
        if not text and not signature:
            return None
        return p.Part(p.THINKING, text, signature or None)


def _tools(tools: Any, drop_params: bool, target: Target, at: str = "tools") -> list[p.Tool]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise BadRequest(f"'{at}' must be an array", param=at)
    out = []
    for i, tool in enumerate(tools):
        where = f"{at}[{i}]"
        if not isinstance(tool, dict):
            raise BadRequest(f"{where} must be an object", param=where)
        kind = tool.get("type")
        if kind == "namespace":  # a named group of function tools (Codex sends them): its functions, flat
            out.extend(_tools(tool.get("tools"), drop_params, target, f"{where}.tools"))
            continue
        if kind != "function":
            if drop_params:
                continue
            raise BadRequest(f"{where}.type {kind!r}: built-in tools are not available over {target.label}; "
                             f"only 'function' tools are; {DROP_HINT}", param=f"{where}.type")
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"{where}.name must be a non-empty string", param=f"{where}.name")
        params = tool.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise BadRequest(f"{where}.parameters must be a JSON Schema object", param=f"{where}.parameters")
        description = tool.get("description")
        out.append(p.Tool(name, description if isinstance(description, str) else None, params))
    return out


def _tool_choice(choice: Any) -> p.ToolChoice:
    if choice in ("none", "auto", "required"):
        return p.ToolChoice(choice)
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "function" and isinstance(choice.get("name"), str) and choice["name"]:
            return p.ToolChoice("required", [choice["name"]])
        if kind == "allowed_tools" and isinstance(choice.get("tools"), list):
            names = [t["name"] for t in choice["tools"] if isinstance(t, dict) and isinstance(t.get("name"), str)]
            mode = "required" if choice.get("mode") == "required" else "auto"
            return p.ToolChoice(mode, names or None)
    raise BadRequest("'tool_choice' must be 'none', 'auto', 'required' or {'type': 'function', 'name': ...}",
                     param="tool_choice")


def _number(body: Json, key: str, integer: bool, minimum: float) -> Any:
    value = body.get(key)
    if value is None:
        return None
    valid = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not valid or value < minimum:
        raise BadRequest(f"'{key}' must be {'an integer' if integer else 'a number'} >= {minimum:g}; got {value!r}",
                         param=key)
    return value


def _generation(body: Json, req: p.Request) -> None:
    req.max_tokens = _number(body, "max_output_tokens", True, 1)
    req.temperature = _number(body, "temperature", False, 0)
    req.top_p = _number(body, "top_p", False, 0)
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict):
        effort = reasoning.get("effort")
        if effort is not None:
            if effort not in EFFORTS:
                raise BadRequest(f"reasoning.effort must be one of {', '.join(EFFORTS)}; got {effort!r}",
                                 param="reasoning.effort")
            req.reasoning_effort = EFFORTS[effort]
    elif reasoning is not None:
        raise BadRequest("'reasoning' must be an object", param="reasoning")
    text = body.get("text")
    if text is None:
        return
    if not isinstance(text, dict):
        raise BadRequest("'text' must be an object", param="text")
    fmt = text.get("format")
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return
    if kind == "json_object":
        req.response_format = "json"
        return
    if kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise BadRequest("text.format.schema must be a JSON Schema object", param="text.format.schema")
        req.response_format, req.response_schema = "json_schema", schema
        return
    raise BadRequest("text.format.type must be 'text', 'json_object' or 'json_schema'", param="text.format.type")


_MEDIA_ITEMS = ("input_image", "input_file")
_UNCOUNTED = ("encrypted_content", "id", "type")


def estimate_tokens(body: Any) -> int:
    """Like chat's estimate (keymux/translate/estimate.py): text characters / 4, per item, per image."""
    chars = media = count = 0
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        chars += len(instructions)
    items = body.get("input")
    if isinstance(items, str):
        chars, count = chars + len(items), 1
    elif isinstance(items, list):
        todo: list[Any] = list(items)
        count = len(items)
        while todo:  # strings are counted where they are found, not pushed: most of a body's nodes are strings
            node = todo.pop()
            if node.__class__ is dict:
                if node.get("type") in _MEDIA_ITEMS:
                    media += IMAGE_TOKENS
                    continue
                for k, v in node.items():
                    if k in _UNCOUNTED:
                        continue
                    if v.__class__ is str:
                        chars += len(v)
                    else:
                        todo.append(v)
            elif node.__class__ is list:
                todo.extend(node)
            elif node.__class__ is str:
                chars += len(node)
    tools = body.get("tools")
    if isinstance(tools, list):
        chars += len(orjson.dumps(tools))
    return -(-chars // 4) + media + MESSAGE_OVERHEAD * count + PRIMING


# == answer out ====================================================================================


def encode_response(resp: p.Response, model: str) -> bytes:
    return orjson.dumps(response_doc(resp, model=model, response_id=f"resp_{new_id()}", created=int(time.time())))


def encode_error(status: int, message: str, code: str | None) -> bytes:
    return openai_error(status, message, code=code)
