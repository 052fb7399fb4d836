"""Gemini generateContent client -> OpenAI(-compatible) chat.completions upstream.

`request_to_openai` builds the chat request (the caller adds `stream` / `stream_options`);
`response_to_gemini` turns the answer back; `StreamToGemini` (gemini_openai_stream.py, re-exported)
does it chunk by chunk. Gemini clients may spell fields camelCase (the SDKs) or snake_case (curl
examples in Google's docs): both are read.

Gemini function calls may carry no id; OpenAI needs one on every call and response, so missing ids
are synthesized (`call_0`, `call_1`, ... in conversation order) and each functionResponse takes the id
of the earliest unanswered call with the same name.
"""

from __future__ import annotations

from collections import deque
from functools import lru_cache
from typing import Any

import orjson

from keymux.errors import BadRequest

from ._json import Json, get_str
from .gemini_openai_response import response_to_gemini, usage_to_gemini
from .gemini_openai_stream import StreamToGemini
from .media import data_uri
from .schema import to_json_schema

__all__ = ["StreamToGemini", "request_to_openai", "response_to_gemini", "usage_to_gemini"]


_AUDIO_FORMATS = {
    "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/mp3": "mp3", "audio/mpeg": "mp3",
}
_CALLING_MODES = {"AUTO": "auto", "VALIDATED": "auto", "NONE": "none", "ANY": "required"}


@lru_cache(maxsize=128)
def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _get(obj: Any, name: str) -> Any:
    """obj[name], accepting the snake_case spelling too."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(name)
    return obj.get(_snake(name)) if value is None else value


def request_to_openai(body: Json, *, model: str) -> Json:
    """Gemini generateContent body -> OpenAI chat.completions request for `model`."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    messages: list[Json] = []
    system = _get(body, "systemInstruction")
    if system is not None:
        text = "".join(_part_texts(system if isinstance(system, (dict, str)) else {}))
        if text:
            messages.append({"role": "system", "content": text})
    messages.extend(_Conversation().convert(_get(body, "contents")))
    out: Json = {"model": model, "messages": messages}
    tools = _tools(_get(body, "tools"))
    calling = _get(_get(body, "toolConfig"), "functionCallingConfig")
    if tools:
        choice, tools = _tool_choice(calling, tools)
        out["tools"] = tools
        if choice is not None:
            out["tool_choice"] = choice
    out.update(_generation(_get(body, "generationConfig")))
    return out


def _part_texts(content: dict[str, Any] | str) -> list[str]:
    if isinstance(content, str):
        return [content]
    parts = content.get("parts")
    if isinstance(parts, dict):
        parts = [parts]
    return [p["text"] for p in parts or () if isinstance(p, dict) and isinstance(p.get("text"), str)]


class _Conversation:
    """Converts contents turn by turn, pairing function responses with earlier calls."""

    def __init__(self) -> None:
        self._pending: dict[str, deque[str]] = {}  # function name -> ids of calls not yet answered
        self._synthesized = 0

    def convert(self, contents: Any) -> list[Json]:
        if not isinstance(contents, list) or not contents:
            raise BadRequest("'contents' must be a non-empty array", param="contents")
        messages: list[Json] = []
        for i, content in enumerate(contents):
            where = f"contents[{i}]"
            if not isinstance(content, dict):
                raise BadRequest(f"{where} must be an object", param=where)
            parts = content.get("parts")
            if not isinstance(parts, list):
                raise BadRequest(f"{where}.parts must be an array", param=f"{where}.parts")
            role = content.get("role") or "user"
            if role == "model":
                messages.extend(self._model_turn(parts))
            elif role in ("user", "function", "tool"):
                messages.extend(self._user_turn(parts, where))
            else:
                raise BadRequest(f"{where}.role must be 'user' or 'model'; got {role!r}", param=f"{where}.role")
        return messages

    def _model_turn(self, parts: list[Any]) -> list[Json]:
        texts: list[str] = []
        calls: list[Json] = []
        for part in parts:
            if not isinstance(part, dict):
                continue
            text = part.get("text")
            if isinstance(text, str):
                if not part.get("thought"):
                    texts.append(text)
                continue
            call = _get(part, "functionCall")
            if isinstance(call, dict):
                name = get_str(call, "name")
                call_id = get_str(call, "id") or self._new_id()
                self._pending.setdefault(name, deque()).append(call_id)
                args = call.get("args") if isinstance(call.get("args"), dict) else {}
                calls.append({
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": orjson.dumps(args).decode()},
                })
        text = "".join(texts)
        if not text and not calls:
            return []
        message: Json = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        return [message]

    def _user_turn(self, parts: list[Any], where: str) -> list[Json]:
        tool_messages: list[Json] = []
        content: list[Json] = []
        for j, part in enumerate(parts):
            at = f"{where}.parts[{j}]"
            if not isinstance(part, dict):
                raise BadRequest(f"{at} must be an object", param=at)
            if isinstance(part.get("text"), str):
                if part["text"]:
                    content.append({"type": "text", "text": part["text"]})
                continue
            response = _get(part, "functionResponse")
            if isinstance(response, dict):
                tool_messages.append(self._tool_message(response, at))
                continue
            inline = _get(part, "inlineData")
            if isinstance(inline, dict):
                content.append(_inline_part(inline, at))
                continue
            file = _get(part, "fileData")
            if isinstance(file, dict):
                content.append(_file_part(file, at))
                continue
            raise BadRequest(f"{at} holds a part kind an OpenAI-compatible upstream cannot take", param=at)
        messages = tool_messages
        if len(content) == 1 and content[0]["type"] == "text":
            messages.append({"role": "user", "content": content[0]["text"]})
        elif content:
            messages.append({"role": "user", "content": content})
        return messages

    def _tool_message(self, response: Json, where: str) -> Json:
        name = get_str(response, "name")
        pending = self._pending.get(name)
        if not pending:
            raise BadRequest(
                f"{where}.functionResponse {name!r} does not answer a functionCall of an earlier model turn",
                param=f"{where}.functionResponse",
            )
        wanted = response.get("id")
        if isinstance(wanted, str) and wanted in pending:
            pending.remove(wanted)
            call_id = wanted
        else:
            call_id = pending.popleft()
        return {"role": "tool", "tool_call_id": call_id, "content": _tool_content(response.get("response"))}

    def _new_id(self) -> str:
        call_id = f"call_{self._synthesized}"
        self._synthesized += 1
        return call_id


def _tool_content(response: Any) -> str:
    if isinstance(response, dict) and len(response) == 1 and isinstance(response.get("content"), str):
        return str(response["content"])
    return orjson.dumps(response if response is not None else {}).decode()


def _inline_part(inline: Json, where: str) -> Json:
    mime = str(_get(inline, "mimeType") or "").lower()
    data = inline.get("data")
    if not isinstance(data, str):
        raise BadRequest(f"{where}.inlineData.data must be a base64 string", param=f"{where}.inlineData.data")
    if mime.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": data_uri(mime, data)}}
    if mime in _AUDIO_FORMATS:
        return {"type": "input_audio", "input_audio": {"data": data, "format": _AUDIO_FORMATS[mime]}}
    if mime == "application/pdf":
        return {"type": "file", "file": {"filename": "document.pdf", "file_data": data_uri(mime, data)}}
    raise BadRequest(
        f"{where}.inlineData of type {mime or 'unknown'!r} cannot be sent to an OpenAI-compatible upstream",
        param=f"{where}.inlineData.mimeType",
    )


def _file_part(file: Json, where: str) -> Json:
    uri = _get(file, "fileUri")
    mime = str(_get(file, "mimeType") or "")
    if isinstance(uri, str) and uri.startswith(("http://", "https://")) and (not mime or mime.startswith("image/")):
        return {"type": "image_url", "image_url": {"url": uri}}
    raise BadRequest(
        f"{where}.fileData: only image URLs can be sent to an OpenAI-compatible upstream (Gemini files cannot)",
        param=f"{where}.fileData",
    )


def _tools(tools: Any) -> list[Json]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be an array", param="tools")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise BadRequest(f"tools[{i}] must be an object", param=f"tools[{i}]")
        for key in tool:
            if key not in ("functionDeclarations", "function_declarations"):
                raise BadRequest(
                    f"tools[{i}].{key} is not supported when the model is served by an OpenAI-compatible upstream",
                    param=f"tools[{i}].{key}",
                )
        for j, declaration in enumerate(_get(tool, "functionDeclarations") or ()):
            name = declaration.get("name") if isinstance(declaration, dict) else None
            if not isinstance(name, str) or not name:
                at = f"tools[{i}].functionDeclarations[{j}].name"
                raise BadRequest(f"{at} must be a non-empty string", param=at)
            function: Json = {"name": name}
            if isinstance(declaration.get("description"), str):
                function["description"] = declaration["description"]
            json_schema = _get(declaration, "parametersJsonSchema")
            if isinstance(json_schema, dict):
                function["parameters"] = json_schema
            elif isinstance(declaration.get("parameters"), dict):
                function["parameters"] = to_json_schema(declaration["parameters"])
            else:
                function["parameters"] = {"type": "object", "properties": {}}
            out.append({"type": "function", "function": function})
    return out


def _tool_choice(config: Any, tools: list[Json]) -> tuple[Any, list[Json]]:
    if not isinstance(config, dict):
        return None, tools
    mode = str(config.get("mode") or "AUTO").upper()
    choice = _CALLING_MODES.get(mode)
    allowed = _get(config, "allowedFunctionNames")
    if choice == "required" and isinstance(allowed, list) and allowed:
        if len(allowed) == 1:
            return {"type": "function", "function": {"name": allowed[0]}}, tools
        return "required", [t for t in tools if t["function"]["name"] in allowed]
    return choice, tools


def _generation(config: Any) -> Json:
    if not isinstance(config, dict):
        return {}
    out: Json = {}
    for gemini_name, openai_name in (
        ("maxOutputTokens", "max_completion_tokens"),
        ("temperature", "temperature"),
        ("topP", "top_p"),
        ("candidateCount", "n"),
        ("seed", "seed"),
        ("presencePenalty", "presence_penalty"),
        ("frequencyPenalty", "frequency_penalty"),
        ("stopSequences", "stop"),
    ):
        value = _get(config, gemini_name)
        if value is not None:
            out[openai_name] = value
    mime = _get(config, "responseMimeType")
    json_schema = _get(config, "responseJsonSchema")
    schema = _get(config, "responseSchema")
    if isinstance(json_schema, dict):
        out["response_format"] = {"type": "json_schema", "json_schema": {"name": "response", "schema": json_schema}}
    elif isinstance(schema, dict):
        out["response_format"] = {
            "type": "json_schema", "json_schema": {"name": "response", "schema": to_json_schema(schema)},
        }
    elif mime == "application/json":
        out["response_format"] = {"type": "json_object"}
    modalities = _get(config, "responseModalities")
    if isinstance(modalities, list) and any(str(m).upper() != "TEXT" for m in modalities):
        out["modalities"] = [str(m).lower() for m in modalities]
    effort = _reasoning_effort(_get(config, "thinkingConfig"))
    if effort:
        out["reasoning_effort"] = effort
    return out


def _reasoning_effort(thinking: Any) -> str | None:
    """thinkingLevel passes through; a positive thinkingBudget maps to the smallest effort that covers it.

    A budget of 0 (off) or -1 (dynamic) maps to nothing: the upstream model's default, which also
    keeps non-reasoning models (that reject reasoning_effort) working.
    """
    level = _get(thinking, "thinkingLevel")
    if isinstance(level, str) and level:
        return level.lower()
    budget = _get(thinking, "thinkingBudget")
    if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0:
        for effort, limit in (("minimal", 512), ("low", 1024), ("medium", 8192)):
            if budget <= limit:
                return effort
        return "high"
    return None
