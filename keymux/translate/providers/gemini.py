"""Pivot <-> Gemini generateContent upstream: the request out, the answer and its stream chunks in.

Addressing, auth and classification live in keymux/providers/gemini.py; this module only knows bodies.
Gemini ids and thought signatures are kept as they are: a functionCall without an id gets none here
(the client API decides how to name it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from keymux.errors import StreamBroken
from keymux.providers import gemini as wire
from keymux.providers.base import Addressed, Verdict
from keymux.translate import pivot as p
from keymux.translate._json import Json, parse_object
from keymux.translate.schema import to_gemini_schema

name = "gemini"  # the provider module (keymux/providers) that classifies answers
label = "Gemini models"  # how errors about what it cannot take name it
THINKING_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
_FILTERED = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE",
    "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER", "NO_IMAGE",
})
_MODES = {"none": "NONE", "auto": "AUTO", "required": "ANY"}


# -- what it can take (client decoders ask, so that their errors name the client's field) ------------


def takes_inline(mime: str) -> bool:
    return True


def takes_url(url: str, mime: str) -> bool:
    return True


# -- addressing ------------------------------------------------------------------------------------


def address(dep: Addressed, stream: bool) -> tuple[str, dict[str, str]]:
    method = "streamGenerateContent" if stream else "generateContent"
    return wire.model_url(dep.api_base, dep.model, method, stream), wire.auth_headers(dep.api_key)


def classify(status: int, response_headers: Mapping[str, str], raw: bytes, now: float) -> Verdict:
    return wire.classify(status, raw, now)


def error_details(raw: bytes) -> tuple[str | None, str | None]:
    """(message, code) of an upstream error body."""
    err = wire.error_object(raw)
    message = err.get("message")
    return (str(message) if message else None), (str(err["status"]) if err.get("status") else None)


# -- request ---------------------------------------------------------------------------------------


def encode_request(req: p.Request, model: str, stream: bool) -> bytes:
    return orjson.dumps(request_body(req))  # the model lives in the URL: one body serves every deployment


def request_body(req: p.Request) -> Json:
    contents: list[Json] = []
    for msg in req.messages:
        parts = [{"text": q.text} if q.kind == p.TEXT and q.signature is None else part_json(q) for q in msg.parts]
        if not parts:
            continue
        role = "model" if msg.role == "assistant" else "user"
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    system = [{"text": q.text} if q.kind == p.TEXT and q.signature is None else part_json(q) for q in req.system]
    if not contents:  # a lone system prompt: Gemini needs contents, so it becomes the user turn
        contents, system = [{"role": "user", "parts": system}], []
    out: Json = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    declarations = [_declaration(tool) for tool in req.tools] if req.tools else None
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
        choice = req.tool_choice
        if choice is not None:
            calling: Json = {"mode": _MODES.get(choice.mode, "AUTO")}
            if choice.names:
                calling["allowedFunctionNames"] = choice.names
            out["toolConfig"] = {"functionCallingConfig": calling}
    generation = _generation_config(req)
    if generation:
        out["generationConfig"] = generation
    if req.service_tier:
        out["serviceTier"] = req.service_tier  # top level, as google-genai sends it (not in generationConfig)
    return out


def part_json(part: p.Part) -> Json:
    """One pivot part in Gemini's wire shape (a request's, and a Gemini client's answer's: they are one format)."""
    kind = part.kind
    out: Json
    if kind == p.TEXT:
        out = {"text": part.text}
    elif kind == p.THINKING:
        out = {"text": part.text, "thought": True}
    elif kind == p.TOOL_CALL:
        call: Json = {"name": part.name, "args": part.args if part.args is not None else {}}
        if part.call_id:
            call["id"] = part.call_id
        out = {"functionCall": call}
    elif kind == p.TOOL_RESULT:
        result = part.result
        if not isinstance(result, dict):
            result = _response_object(result if isinstance(result, str) else "")
        response: Json = {"id": part.call_id} if part.call_id else {}
        response["name"] = part.name
        response["response"] = result
        return {"functionResponse": response}
    elif part.data is not None:
        return {"inlineData": {"mimeType": part.mime, "data": part.data}}
    else:
        return {"fileData": {"mimeType": part.mime, "fileUri": part.url}}
    if part.signature:
        out["thoughtSignature"] = part.signature
    return out


def _response_object(text: str) -> Json:
    parsed = parse_object(text) if text.lstrip().startswith("{") else None
    return parsed if parsed is not None else {"content": text}


def _declaration(tool: p.Tool) -> Json:
    out: Json = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    parameters = to_gemini_schema(tool.parameters)
    # Gemini rejects an OBJECT schema with no properties: a function without arguments has no parameters.
    if parameters.get("properties") or parameters.get("type", "object") != "object":
        out["parameters"] = parameters
    return out


def _generation_config(req: p.Request) -> Json:
    out: Json = {}
    if req.max_tokens is not None:
        out["maxOutputTokens"] = req.max_tokens
    if req.temperature is not None:
        out["temperature"] = req.temperature
    if req.top_p is not None:
        out["topP"] = req.top_p
    if req.top_k is not None:
        out["topK"] = req.top_k
    if req.n is not None:
        out["candidateCount"] = req.n
    if req.seed is not None:
        out["seed"] = req.seed
    if req.presence_penalty is not None:
        out["presencePenalty"] = req.presence_penalty
    if req.frequency_penalty is not None:
        out["frequencyPenalty"] = req.frequency_penalty
    if req.stop:
        out["stopSequences"] = req.stop
    if req.response_format is not None:
        out["responseMimeType"] = "application/json"
        if req.response_schema is not None:
            out["responseJsonSchema"] = req.response_schema
    if req.modalities:
        out["responseModalities"] = [m.upper() for m in req.modalities]
    effort = req.reasoning_effort
    if effort in THINKING_BUDGETS:
        budget = THINKING_BUDGETS[effort]
        out["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": True} if budget else {"thinkingBudget": 0}
    elif req.thinking_budget is not None:
        thinking: Json = {"thinkingBudget": req.thinking_budget}
        if req.include_thoughts is not None:
            thinking["includeThoughts"] = req.include_thoughts
        out["thinkingConfig"] = thinking
    elif effort:
        out["thinkingConfig"] = {"thinkingLevel": effort.upper()}
    return out


# -- response --------------------------------------------------------------------------------------


def usage(metadata: Any) -> p.Usage | None:
    """Gemini usageMetadata -> Usage (thought tokens count as completion tokens, as they are billed).
    The per-modality lists are kept only when they name something other than text: text is the default
    price, so a text-only answer needs no breakdown."""
    if metadata.__class__ is not dict:
        return None
    get = metadata.get
    # Each count an int, else 0; written out, not a helper per field: this runs for every stream chunk.
    prompt = get("promptTokenCount")
    prompt = prompt if prompt.__class__ is int else 0
    thoughts = get("thoughtsTokenCount")
    thoughts = thoughts if thoughts.__class__ is int else 0
    candidates = get("candidatesTokenCount")
    candidates = candidates if candidates.__class__ is int else 0
    total = get("totalTokenCount")
    total = total if total.__class__ is int else 0
    cached = get("cachedContentTokenCount")
    cached = cached if cached.__class__ is int else 0
    completion = candidates + thoughts
    tier = get("serviceTier")
    details_in, details_out = get("promptTokensDetails"), get("candidatesTokensDetails")
    return p.Usage(prompt, completion, thoughts, total or prompt + completion, cached,
                   _modalities(details_in) if details_in is not None else None,
                   _modalities(details_out) if details_out is not None else None, _tier(tier) if tier else None)


def _modalities(details: Any) -> dict[str, int] | None:
    """[{modality: IMAGE, tokenCount: 1290}, ...] -> {"image": 1290}, or None when all is text."""
    if details.__class__ is not list:
        return None
    if len(details) == 1 and details[0].__class__ is dict and details[0].get("modality") == "TEXT":
        return None  # the common answer: all text
    out: dict[str, int] = {}
    for d in details:
        if isinstance(d, dict):
            name = d.get("modality")
            count = d.get("tokenCount")
            if isinstance(name, str) and isinstance(count, int) and not isinstance(count, bool) and count > 0:
                key = name.lower()
                key = "text" if key == "modality_unspecified" else key  # Google: unspecified is text
                out[key] = out.get(key, 0) + count
    return out if any(k != "text" for k in out) else None


def _tier(raw: Any) -> str | None:
    """usageMetadata.serviceTier: google-genai's values are lower case (flex, standard, priority); enum
    names in upper case (SERVICE_TIER_FLEX) are read too."""
    if not isinstance(raw, str) or not raw:
        return None
    tier = raw.lower().removeprefix("service_tier_")
    return tier if tier in ("flex", "standard", "priority") else None


def finish(reason: str) -> str:
    if reason == "STOP":
        return p.STOP
    if reason == "MAX_TOKENS":
        return p.LENGTH
    if reason in _FILTERED:
        return p.CONTENT_FILTER
    return p.OTHER  # MALFORMED_FUNCTION_CALL, OTHER, ...: the turn ended without a better word for it


def parts(raw: Any) -> list[p.Part]:
    """A candidate's content.parts -> pivot parts (kinds the pivot does not know are left out)."""
    content = raw.get("content") if isinstance(raw, dict) else None
    items = content.get("parts") if isinstance(content, dict) else None
    out: list[p.Part] = []
    if not isinstance(items, list):
        return out
    for part in items:
        if not isinstance(part, dict):
            continue
        signature = part.get("thoughtSignature")
        if signature is not None and (not isinstance(signature, str) or not signature):
            signature = None
        text = part.get("text")
        if text is not None and isinstance(text, str):
            if text or signature:
                out.append(p.Part(p.THINKING if part.get("thought") is True else p.TEXT, text, signature))
            continue
        call = part.get("functionCall")
        if isinstance(call, dict):
            call_id = call.get("id")
            args = call.get("args")
            out.append(p.Part(p.TOOL_CALL, signature=signature, name=call.get("name") or "",
                              call_id=call_id if isinstance(call_id, str) and call_id else None,
                              args=args if isinstance(args, dict) else {}))
            continue
        inline = part.get("inlineData")
        if isinstance(inline, dict):
            mime = inline.get("mimeType")
            data = inline.get("data")
            if isinstance(mime, str) and isinstance(data, str):
                out.append(p.Part(p.MEDIA, mime=mime, data=data))
    return out


def _choice(pos: int, cand: Json) -> p.Choice:
    index = cand.get("index")
    reason = cand.get("finishReason")
    native = reason if isinstance(reason, str) and reason else None
    return p.Choice(index if isinstance(index, int) else pos, parts(cand),
                    finish(native) if native else None, native)


def _blocked(doc: Json) -> str | None:
    feedback = doc.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    return str(reason) if reason else None


def decode_response(raw: bytes) -> p.Response:
    doc = orjson.loads(raw)
    if isinstance(doc, list) and doc:
        doc = doc[0]
    if not isinstance(doc, dict):
        doc = {}
    return response(doc)


def response(doc: Json) -> p.Response:
    candidates = doc.get("candidates")
    choices = []
    if isinstance(candidates, list):
        choices = [_choice(pos, cand) for pos, cand in enumerate(candidates) if isinstance(cand, dict)]
        if len(choices) > 1:
            choices.sort(key=_index)
    rid, model = doc.get("responseId"), doc.get("modelVersion")
    return p.Response(choices, usage(doc.get("usageMetadata")), rid if isinstance(rid, str) else None,
                      model if isinstance(model, str) else None, None if choices else _blocked(doc))


def _index(choice: p.Choice) -> int:
    return choice.index


# -- stream ----------------------------------------------------------------------------------------


def chunk(payload: bytes) -> Json:
    """One `data:` payload of a Gemini stream, or StreamBroken when it is an error or not an object."""
    doc = orjson.loads(payload)
    if isinstance(doc, list) and doc:
        doc = doc[0]
    if not isinstance(doc, dict):
        raise StreamBroken(502, "upstream sent a malformed stream chunk")
    err = doc.get("error")
    if err is not None and isinstance(err, dict):
        raise StreamBroken(int(err.get("code") or 500), str(err.get("message") or "upstream error"))
    return doc


def delta(doc: Json, counted: p.Usage | None = None) -> p.Delta:
    """One chunk; `counted`: its usageMetadata already read (see StreamDecoder)."""
    candidates = doc.get("candidates")
    choices = []
    if isinstance(candidates, list):
        for pos, cand in enumerate(candidates):
            if isinstance(cand, dict):
                choices.append(_choice(pos, cand))
    if counted is None:
        metadata = doc.get("usageMetadata")
        counted = usage(metadata) if metadata is not None else None
    return p.Delta(choices, counted, None, None, None if candidates else _blocked(doc))


def _text_choice(cand: Any) -> p.Choice | None:
    """A candidate that is one plain text part and no finish reason (most chunks of a stream), as _choice
    reads it; None for anything else, which _choice reads in full."""
    if cand.__class__ is not dict or "finishReason" in cand:
        return None
    content = cand.get("content")
    items = content.get("parts") if content.__class__ is dict else None
    if items.__class__ is not list or len(items) != 1:
        return None
    part = items[0]
    if part.__class__ is not dict or len(part) != 1:  # a signature, a thought flag: not plain text
        return None
    text = part.get("text")
    if text.__class__ is not str or not text:
        return None
    index = cand.get("index")
    return p.Choice(index if isinstance(index, int) else 0, [p.Part(p.TEXT, text)], None, None)


class StreamDecoder:
    """Gemini chunks are whole partial responses: each one decodes on its own. The answer ends with the
    chunk that carries a finish reason (or says the prompt was blocked)."""

    __slots__ = ("ended", "_metadata", "_usage")

    def __init__(self) -> None:
        self.ended = False
        self._metadata: Any = None
        self._usage: p.Usage | None = None

    def feed(self, payload: bytes) -> p.Delta | None:
        doc = orjson.loads(payload)
        if doc.__class__ is not dict or "error" in doc:  # the hot path is one dict: check the rest in chunk()
            doc = chunk(payload)
        # Gemini repeats the prompt's counts in every chunk until the last: the same metadata, read once.
        metadata = doc.get("usageMetadata")
        if metadata is not None and metadata != self._metadata:
            self._metadata, self._usage = metadata, usage(metadata)
        counted = self._usage if metadata is not None else None
        candidates = doc.get("candidates")
        if candidates.__class__ is list and len(candidates) == 1:
            choice = _text_choice(candidates[0])
            if choice is not None:  # one piece of text, no finish: the answer goes on
                return p.Delta([choice], counted, None, None, None)
        out = delta(doc, counted)
        if not self.ended:  # a finish reason on a candidate, or a blocked prompt (providers.gemini.ends_stream)
            if out.blocked is not None:
                self.ended = True
            for choice in out.choices:
                if choice.native_finish is not None:
                    self.ended = True
        return out

    def finish(self) -> p.Delta | None:
        return None
