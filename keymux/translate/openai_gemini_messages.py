"""OpenAI chat messages -> Gemini contents (the conversation half of request_to_gemini)."""

from __future__ import annotations

from typing import Any


from keymux.errors import BadRequest

from ._json import Json, parse_object
from .media import guess_mime, parse_data_uri
from .tool_calls import parse_arguments, split_tool_call_id


_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def messages_to_contents(messages: Any) -> tuple[list[Json], list[Json]]:
    """OpenAI messages -> (systemInstruction parts, Gemini contents).

    System and developer messages, wherever they are, become systemInstruction; consecutive turns
    of one Gemini role merge; tool results become user-role functionResponse parts, named after the
    earlier call their tool_call_id answers.
    """
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array of message objects", param="messages")
    system: list[Json] = []
    contents: list[Json] = []
    call_names: dict[str, str] = {}  # tool_call_id -> function name, from earlier assistant messages
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise BadRequest(f"{where} must be an object with a 'role'", param=where)
        role = msg.get("role")
        if role not in _ROLES:
            raise BadRequest(
                f"{where}.role must be one of 'system', 'developer', 'user', 'assistant', 'tool'; got {role!r}",
                param=f"{where}.role",
            )
        if role in ("system", "developer"):
            system.extend({"text": t} for t in _texts(msg.get("content"), where) if t)
            continue
        if role == "user":
            gemini_role, parts = "user", _user_parts(msg.get("content"), where)
        elif role == "assistant":
            gemini_role, parts = "model", _assistant_parts(msg, where, call_names)
        else:
            gemini_role, parts = "user", [_function_response(msg, where, call_names)]
        if not parts:
            continue
        if contents and contents[-1]["role"] == gemini_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": gemini_role, "parts": parts})
    if not contents:
        if not system:
            raise BadRequest("'messages' holds no content to send", param="messages")
        # A lone system prompt: Gemini needs contents, so it becomes the user turn.
        return [], [{"role": "user", "parts": system}]
    return system, contents


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


def _user_parts(content: Any, where: str) -> list[Json]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequest(
            f"{where}.content must be a string or an array of content parts", param=f"{where}.content"
        )
    parts = []
    for j, part in enumerate(content):
        converted = _content_part(part, f"{where}.content[{j}]")
        if converted is not None:
            parts.append(converted)
    return parts


def _content_part(part: Any, where: str) -> Json | None:
    if isinstance(part, str):
        return {"text": part} if part else None
    if not isinstance(part, dict):
        raise BadRequest(f"{where} must be a content part object", param=where)
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise BadRequest(f"{where}.text must be a string", param=f"{where}.text")
        return {"text": text} if text else None
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str) or not url:
            raise BadRequest(f"{where}.image_url.url must be a non-empty string", param=f"{where}.image_url.url")
        return _media_part(url, f"{where}.image_url.url", "image/jpeg")
    if kind == "input_audio":
        audio = part.get("input_audio")
        data = audio.get("data") if isinstance(audio, dict) else None
        fmt = audio.get("format") if isinstance(audio, dict) else None
        if not isinstance(data, str) or not isinstance(fmt, str) or not fmt:
            raise BadRequest(
                f"{where}.input_audio must be an object with string 'data' (base64) and 'format'",
                param=f"{where}.input_audio",
            )
        return {"inlineData": {"mimeType": f"audio/{fmt.lower()}", "data": data}}
    if kind == "file":
        return _file_part(part.get("file"), where)
    raise BadRequest(f"{where}.type {kind!r} is not a supported content part type", param=f"{where}.type")


def _file_part(file: Any, where: str) -> Json:
    if not isinstance(file, dict):
        raise BadRequest(f"{where}.file must be an object", param=f"{where}.file")
    filename = file.get("filename") if isinstance(file.get("filename"), str) else ""
    default_mime = guess_mime(filename, "application/pdf") if filename else "application/pdf"
    data = file.get("file_data")
    if isinstance(data, str) and data:
        if data.startswith("data:"):
            return _media_part(data, f"{where}.file.file_data", default_mime)
        return {"inlineData": {"mimeType": default_mime, "data": data}}
    file_id = file.get("file_id")
    if isinstance(file_id, str) and file_id:
        mime = file.get("format") if isinstance(file.get("format"), str) else default_mime
        return {"fileData": {"mimeType": mime, "fileUri": file_id}}
    raise BadRequest(f"{where}.file needs 'file_data' or 'file_id'", param=f"{where}.file")


def _media_part(url: str, where: str, default_mime: str) -> Json:
    if url.startswith("data:"):
        parsed = parse_data_uri(url)
        if parsed is None:
            raise BadRequest(f"{where} is not a valid data: URI", param=where)
        mime, data = parsed
        return {"inlineData": {"mimeType": mime or default_mime, "data": data}}
    scheme = url.partition(":")[0].lower()
    if scheme in ("http", "https", "gs"):
        return {"fileData": {"mimeType": guess_mime(url, default_mime), "fileUri": url}}
    raise BadRequest(f"{where} must be an http(s) URL or a data: URI", param=where)


def _assistant_parts(msg: Json, where: str, call_names: dict[str, str]) -> list[Json]:
    parts: list[Json] = []
    reasoning = msg.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        parts.append({"text": reasoning, "thought": True})
    parts.extend({"text": t} for t in _texts(msg.get("content"), where) if t)
    images = msg.get("images")
    if isinstance(images, list):  # our own image-output convention, echoed back by clients
        for k, image in enumerate(images):
            image_url = image.get("image_url") if isinstance(image, dict) else None
            url = image_url.get("url") if isinstance(image_url, dict) else None
            if isinstance(url, str) and url.startswith("data:"):
                parts.append(_media_part(url, f"{where}.images[{k}].image_url.url", "image/png"))
    tool_calls = msg.get("tool_calls")
    if tool_calls is not None:
        if not isinstance(tool_calls, list):
            raise BadRequest(f"{where}.tool_calls must be an array", param=f"{where}.tool_calls")
        for k, call in enumerate(tool_calls):
            parts.append(_function_call(call, f"{where}.tool_calls[{k}]", call_names))
    legacy = msg.get("function_call")
    if isinstance(legacy, dict):
        parts.append(_function_call({"function": legacy}, f"{where}.function_call", call_names))
    return parts


def _function_call(call: Any, where: str, call_names: dict[str, str]) -> Json:
    if not isinstance(call, dict) or call.get("type", "function") != "function":
        raise BadRequest(f"{where} must be a tool call of type 'function'", param=where)
    fn = call.get("function")
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise BadRequest(f"{where}.function.name must be a non-empty string", param=f"{where}.function.name")
    name: str = fn["name"]
    function_call: Json = {"name": name, "args": parse_arguments(fn.get("arguments"))}
    part: Json = {"functionCall": function_call}
    call_id = call.get("id")
    if isinstance(call_id, str) and call_id:
        base, signature = split_tool_call_id(call_id)
        function_call["id"] = base
        if signature:
            part["thoughtSignature"] = signature
        call_names[call_id] = name
    return part


def _function_response(msg: Json, where: str, call_names: dict[str, str]) -> Json:
    response: Json = {"response": _response_object("".join(_texts(msg.get("content"), where)))}
    if msg["role"] == "function":  # legacy function-calling message
        name = msg.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"{where}.name is required for a 'function' message", param=f"{where}.name")
        return {"functionResponse": {"name": name, **response}}
    call_id = msg.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise BadRequest(f"{where}.tool_call_id is required for a 'tool' message", param=f"{where}.tool_call_id")
    name = call_names.get(call_id) or msg.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest(
            f"{where}.tool_call_id {call_id!r} does not match a tool call of an earlier assistant message",
            param=f"{where}.tool_call_id",
        )
    base, _ = split_tool_call_id(call_id)
    return {"functionResponse": {"id": base, "name": name, **response}}


def _response_object(text: str) -> Json:
    parsed = parse_object(text) if text.lstrip().startswith("{") else None
    return parsed if parsed is not None else {"content": text}
