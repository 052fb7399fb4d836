"""Gemini generateContent client <-> pivot: the request in; the answer, its stream and errors out.

Gemini clients spell fields camelCase (the SDKs) or snake_case (curl examples in Google's docs): both
are read. Gemini function calls may carry no id; the pivot needs one on every call and result, so
missing ids are synthesized (`call_0`, `call_1`, ... in conversation order) and each functionResponse
takes the id of the earliest unanswered call with the same name.
Only used when the provider is not Gemini: a Gemini key gets the client's body untouched.
"""

from __future__ import annotations

from collections import deque
from functools import lru_cache
from typing import Any

import orjson

from keymux.errors import BadRequest
from keymux.translate import pivot as p
from keymux.translate._json import Json, get_str
from keymux.translate.codecs import Target
from keymux.translate.error_bodies import gemini_error
from keymux.translate.estimate import estimate_gemini_prompt_tokens
from keymux.translate.providers.gemini import part_json  # one part format for requests and answers
from keymux.translate.schema import to_json_schema
from keymux.translate.sse import decode_all, sse_event

estimate_tokens = estimate_gemini_prompt_tokens
_CALLING_MODES = {"AUTO": "auto", "VALIDATED": "auto", "NONE": "none", "ANY": "required"}
_FINISH = {p.STOP: "STOP", p.TOOL_CALLS: "STOP", p.STOP_SEQUENCE: "STOP", p.LENGTH: "MAX_TOKENS",
           p.CONTENT_FILTER: "SAFETY"}


@lru_cache(maxsize=128)
def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _get(obj: Any, name: str) -> Any:
    """obj[name], accepting the snake_case spelling too."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(name)
    return obj.get(_snake(name)) if value is None else value


# == request in ====================================================================================


def decode_request(body: Any, *, drop_params: bool, target: Target) -> p.Request:
    """Fields the pivot has no room for are ignored, as Google's own API ignores unknown ones."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    req = p.Request()
    system = _get(body, "systemInstruction")
    if system is not None:
        text = "".join(_part_texts(system if isinstance(system, (dict, str)) else {}))
        if text:
            req.system.append(p.Part(p.TEXT, text))
    _Conversation(req.messages, target).convert(_get(body, "contents"))
    req.tools = _tools(_get(body, "tools"), target)
    req.tool_choice = _tool_choice(_get(_get(body, "toolConfig"), "functionCallingConfig"))
    _generation(_get(body, "generationConfig"), req)
    return req


def _part_texts(content: dict[str, Any] | str) -> list[str]:
    if isinstance(content, str):
        return [content]
    parts = content.get("parts")
    if isinstance(parts, dict):
        parts = [parts]
    return [q["text"] for q in parts or () if isinstance(q, dict) and isinstance(q.get("text"), str)]


def _signature(part: Json) -> str | None:
    signature = _get(part, "thoughtSignature")
    return signature if isinstance(signature, str) and signature else None


class _Conversation:
    """Converts contents turn by turn, pairing function responses with earlier calls."""

    def __init__(self, messages: list[p.Message], target: Target) -> None:
        self._messages = messages
        self._target = target
        self._pending: dict[str, deque[str]] = {}  # function name -> ids of calls not yet answered
        self._synthesized = 0

    def convert(self, contents: Any) -> None:
        if not isinstance(contents, list) or not contents:
            raise BadRequest("'contents' must be a non-empty array", param="contents")
        for i, content in enumerate(contents):
            where = f"contents[{i}]"
            if not isinstance(content, dict):
                raise BadRequest(f"{where} must be an object", param=where)
            parts = content.get("parts")
            if not isinstance(parts, list):
                raise BadRequest(f"{where}.parts must be an array", param=f"{where}.parts")
            role = content.get("role") or "user"
            if role == "model":
                converted, role = self._model_turn(parts), "assistant"
            elif role in ("user", "function", "tool"):
                converted, role = self._user_turn(parts, where), "user"
            else:
                raise BadRequest(f"{where}.role must be 'user' or 'model'; got {role!r}", param=f"{where}.role")
            if converted:
                self._messages.append(p.Message(role, converted))

    def _model_turn(self, parts: list[Any]) -> list[p.Part]:
        out: list[p.Part] = []
        for part in parts:
            if not isinstance(part, dict):
                continue
            text = part.get("text")
            if isinstance(text, str):
                out.append(p.Part(p.THINKING if part.get("thought") else p.TEXT, text, _signature(part)))
                continue
            call = _get(part, "functionCall")
            if isinstance(call, dict):
                name = get_str(call, "name")
                call_id = get_str(call, "id") or self._new_id()
                self._pending.setdefault(name, deque()).append(call_id)
                args = call.get("args")
                out.append(p.Part(p.TOOL_CALL, signature=_signature(part), name=name, call_id=call_id,
                                  args=args if isinstance(args, dict) else {}))
        return out

    def _user_turn(self, parts: list[Any], where: str) -> list[p.Part]:
        out: list[p.Part] = []
        for j, part in enumerate(parts):
            at = f"{where}.parts[{j}]"
            if not isinstance(part, dict):
                raise BadRequest(f"{at} must be an object", param=at)
            if isinstance(part.get("text"), str):
                if part["text"]:
                    out.append(p.Part(p.TEXT, part["text"]))
                continue
            response = _get(part, "functionResponse")
            if isinstance(response, dict):
                out.append(self._tool_result(response, at))
                continue
            inline = _get(part, "inlineData")
            if isinstance(inline, dict):
                out.append(self._inline(inline, at))
                continue
            file = _get(part, "fileData")
            if isinstance(file, dict):
                out.append(self._file(file, at))
                continue
            raise BadRequest(f"{at} holds a part kind {self._target.label} cannot take", param=at)
        return out

    def _tool_result(self, response: Json, where: str) -> p.Part:
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
        return p.Part(p.TOOL_RESULT, name=name, call_id=call_id, result=response.get("response"))

    def _inline(self, inline: Json, where: str) -> p.Part:
        mime = str(_get(inline, "mimeType") or "").lower()
        data = inline.get("data")
        if not isinstance(data, str):
            raise BadRequest(f"{where}.inlineData.data must be a base64 string", param=f"{where}.inlineData.data")
        if not self._target.takes_inline(mime):
            raise BadRequest(
                f"{where}.inlineData of type {mime or 'unknown'!r} cannot be sent to {self._target.label}",
                param=f"{where}.inlineData.mimeType",
            )
        return p.Part(p.MEDIA, mime=mime, data=data)

    def _file(self, file: Json, where: str) -> p.Part:
        uri = _get(file, "fileUri")
        mime = str(_get(file, "mimeType") or "")
        if isinstance(uri, str) and self._target.takes_url(uri, mime):
            return p.Part(p.MEDIA, mime=mime, url=uri)
        raise BadRequest(
            f"{where}.fileData: only image URLs can be sent to {self._target.label} (Gemini files cannot)",
            param=f"{where}.fileData",
        )

    def _new_id(self) -> str:
        call_id = f"call_{self._synthesized}"
        self._synthesized += 1
        return call_id


def _tools(tools: Any, target: Target) -> list[p.Tool]:
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
                raise BadRequest(f"tools[{i}].{key} is not supported when the model is served by {target.label}",
                                 param=f"tools[{i}].{key}")
        for j, declaration in enumerate(_get(tool, "functionDeclarations") or ()):
            name = declaration.get("name") if isinstance(declaration, dict) else None
            if not isinstance(name, str) or not name:
                at = f"tools[{i}].functionDeclarations[{j}].name"
                raise BadRequest(f"{at} must be a non-empty string", param=at)
            description = declaration.get("description")
            json_schema = _get(declaration, "parametersJsonSchema")
            if not isinstance(json_schema, dict):
                parameters = declaration.get("parameters")
                json_schema = to_json_schema(parameters) if isinstance(parameters, dict) else None
            out.append(p.Tool(name, description if isinstance(description, str) else None, json_schema))
    return out


def _tool_choice(config: Any) -> p.ToolChoice | None:
    if not isinstance(config, dict):
        return None
    mode = _CALLING_MODES.get(str(config.get("mode") or "AUTO").upper())
    if mode is None:
        return None
    allowed = _get(config, "allowedFunctionNames")
    names = [str(n) for n in allowed] if mode == "required" and isinstance(allowed, list) and allowed else None
    return p.ToolChoice(mode, names)


_GENERATION = (
    ("maxOutputTokens", "max_tokens"), ("temperature", "temperature"), ("topP", "top_p"), ("topK", "top_k"),
    ("candidateCount", "n"), ("seed", "seed"), ("presencePenalty", "presence_penalty"),
    ("frequencyPenalty", "frequency_penalty"), ("stopSequences", "stop"),
)


def _generation(config: Any, req: p.Request) -> None:
    if not isinstance(config, dict):
        return
    for gemini_name, attr in _GENERATION:
        value = _get(config, gemini_name)
        if value is not None:
            setattr(req, attr, value)
    json_schema = _get(config, "responseJsonSchema")
    schema = _get(config, "responseSchema")
    if isinstance(json_schema, dict):
        req.response_format, req.response_schema = "json_schema", json_schema
    elif isinstance(schema, dict):
        req.response_format, req.response_schema = "json_schema", to_json_schema(schema)
    elif _get(config, "responseMimeType") == "application/json":
        req.response_format = "json"
    modalities = _get(config, "responseModalities")
    if isinstance(modalities, list):
        req.modalities = [str(m).lower() for m in modalities]
    thinking = _get(config, "thinkingConfig")
    level = _get(thinking, "thinkingLevel")
    if isinstance(level, str) and level:
        req.reasoning_effort = level.lower()
    budget = _get(thinking, "thinkingBudget")
    if isinstance(budget, int) and not isinstance(budget, bool):
        req.thinking_budget = budget
    include = _get(thinking, "includeThoughts")
    if isinstance(include, bool):
        req.include_thoughts = include


# == answer out ====================================================================================


def finish_reason(finish: str | None) -> str | None:
    if finish is None:
        return None
    return _FINISH.get(finish, "OTHER")


def usage_doc(usage: p.Usage) -> Json:
    out: Json = {
        "promptTokenCount": usage.prompt,
        "candidatesTokenCount": max(usage.completion - usage.reasoning, 0),
        "totalTokenCount": usage.total,
    }
    if usage.reasoning:
        out["thoughtsTokenCount"] = usage.reasoning
    if usage.cached:
        out["cachedContentTokenCount"] = usage.cached
    return out


def response_doc(resp: p.Response) -> Json:
    candidates = [{"content": {"role": "model", "parts": [part_json(q) for q in choice.parts]},
                   "finishReason": finish_reason(choice.finish) or "STOP", "index": choice.index}
                  for choice in resp.choices]
    out: Json = {"candidates": candidates}
    if resp.blocked:
        out["promptFeedback"] = {"blockReason": resp.blocked}
    if resp.usage is not None:
        out["usageMetadata"] = usage_doc(resp.usage)
    if resp.model is not None:
        out["modelVersion"] = resp.model
    if resp.id is not None:
        out["responseId"] = resp.id
    return out


def encode_response(resp: p.Response, model: str) -> bytes:
    return orjson.dumps(response_doc(resp))


def encode_error(status: int, message: str, code: str | None) -> bytes:
    return gemini_error(status, message)


class StreamEncoder:
    """Pivot deltas -> streamGenerateContent chunks. The finishing chunk is held back until the usage
    arrives (or the stream ends), so the last chunk carries both finishReason and usageMetadata, as
    Gemini's own streams do."""

    __slots__ = ("_model", "_id", "usage", "_held")

    def __init__(self, model: str = "", include_usage: bool = True, *, model_version: str | None = None) -> None:
        # Gemini streams name the upstream's model version, not the group the client asked for
        self._model: str | None = model_version
        self._id: str | None = None
        self.usage: p.Usage | None = None
        self._held: Json | None = None

    def feed(self, delta: p.Delta) -> list[bytes]:
        return [sse_event(orjson.dumps(c)) for c in self.chunks(delta)]

    def finish(self) -> list[bytes]:
        return [sse_event(orjson.dumps(c)) for c in self.final_chunks()]

    def error(self, status: int, message: str) -> bytes:
        return sse_event(gemini_error(status, message))

    def chunks(self, delta: p.Delta) -> list[Json]:
        if self._model is None:
            self._model = delta.model
        if self._id is None:
            self._id = delta.id
        usage = delta.usage
        if usage is not None:
            self.usage = usage
        candidates = []
        finishing = False
        for choice in delta.choices:
            candidate: Json = {"content": {"role": "model", "parts": [part_json(q) for q in choice.parts]},
                               "index": choice.index}
            reason = finish_reason(choice.finish)
            if reason:
                candidate["finishReason"] = reason
                finishing = True
            candidates.append(candidate)
        out = []
        if candidates:
            out.extend(self._release())
            doc = self._wrap({"candidates": candidates})
            if finishing and usage is None:
                self._held = doc
            else:
                out.append(self._with_usage(doc, usage))
        elif usage is not None:
            held = self._held or self._wrap({})
            self._held = None
            out.append(self._with_usage(held, usage))
        return out

    def final_chunks(self) -> list[Json]:
        """After the upstream ended: the held final chunk."""
        return self._release()

    def _release(self) -> list[Json]:
        held, self._held = self._held, None
        return [held] if held is not None else []

    def _wrap(self, body: Json) -> Json:
        if self._model is not None:
            body["modelVersion"] = self._model
        if self._id is not None:
            body["responseId"] = self._id
        return body

    def _with_usage(self, doc: Json, usage: p.Usage | None) -> Json:
        if usage is not None:
            doc["usageMetadata"] = usage_doc(usage)
        return doc


# == cache: a whole answer <-> its stream ==========================================================


def stream_from_body(body: bytes, include_usage: bool) -> list[bytes]:
    """One event holding the whole response is a valid Gemini stream."""
    return [sse_event(body, crlf=True)]


def body_from_stream(events: list[bytes], usage: p.Usage | None = None) -> bytes | None:
    """The GenerateContentResponse a non-streamed request would have got (text parts concatenated),
    or None unless some candidate finished."""
    out: Json = {}
    candidates: dict[int, Json] = {}
    for payload in decode_all(events):
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
