"""Gemini request checks and the emulator's deterministic answers.

Answers (so tests can assert them):
  - "Echo: <last user text>" (last user text capped at MAX_ECHO chars), finishReason STOP,
    or MAX_TOKENS (truncated) when generationConfig.maxOutputTokens is smaller;
  - thinkingConfig.includeThoughts: a first part {"text": "Thinking about it...", "thought": true};
  - tools with functionDeclarations and no functionResponse in the last content: a functionCall
    {"name": <first (allowed) declaration>, "args": {"query": <last user text>}} with a thoughtSignature;
  - functionResponse parts in the last content: "Tool result: <compact json of each response>";
  - image model or responseModalities IMAGE: "Here is your image." + an inline 8x8 PNG;
  - responseModalities AUDIO (TTS models, which take nothing else): 16-bit 24 kHz PCM, 10 ms per character
    of the last user text (audio/L16;codec=pcm;rate=24000), 25 tokens per second;
  - an audio inlineData part in the last user turn: "Heard <n> bytes of <mime>" (a stand-in transcript);
  - responseMimeType application/json: '{"echo":"<last user text>"}';
  - candidateCount n: n identical candidates.
Token counts: prompt = max(1, chars // 4) over all request text (+258 per media part),
answer = max(1, chars // 4) per candidate (+1290 per image).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from keymux.emulator.gemini_wire import (
    IMAGE_TOKENS,
    MSG_IMAGE,
    MSG_THOUGHT,
    PNG_B64,
    TTS_MIME,
    TTS_RATE,
    TTS_TOKENS_PER_SECOND,
    TTS_VOICES,
    compact,
    is_tts,
    speech_pcm,
    thought_signature,
)

MAX_ECHO = 1000
MEDIA_TOKENS = 258
THOUGHT_TOKENS = max(1, len(MSG_THOUGHT) // 4)


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _both(*names: str) -> frozenset[str]:
    return frozenset(names) | frozenset(_snake(n) for n in names)


TOP_FIELDS = _both(
    "model", "contents", "tools", "toolConfig", "safetySettings", "systemInstruction",
    "generationConfig", "cachedContent", "labels", "serviceTier", "store",
)
GEN_FIELDS = _both(
    "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "_responseJsonSchema",
    "responseModalities", "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed",
    "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers",
    "speechConfig", "thinkingConfig", "imageConfig", "mediaResolution", "audioTimestamp",
    "routingConfig", "modelSelectionConfig", "enableAffectiveDialog",
)
CONTENT_FIELDS = _both("role", "parts")
PART_FIELDS = _both(
    "text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
    "codeExecutionResult", "thought", "thoughtSignature", "videoMetadata", "partMetadata",
    "mediaResolution",
)
PART_DATA = _both(
    "text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
    "codeExecutionResult",
)
ROLES = frozenset({"user", "model", "function", ""})
_SNAKE = {n: _snake(n) for n in (
    "generationConfig", "systemInstruction", "toolConfig", "functionDeclarations",
    "functionCallingConfig", "allowedFunctionNames", "maxOutputTokens", "candidateCount",
    "responseMimeType", "responseModalities", "thinkingConfig", "includeThoughts", "inlineData",
    "fileData", "functionCall", "functionResponse", "mimeType", "thoughtSignature",
    "generateContentRequest", "outputDimensionality",
)}


def g(d: Any, name: str, default: Any = None) -> Any:
    """Field by lowerCamel or snake_case name (Google's JSON parser accepts both)."""
    if not isinstance(d, dict):
        return default
    if name in d:
        return d[name]
    return d.get(_SNAKE.get(name, name), default)


def _unknown(name: str, where: str | None) -> tuple[str, str | None]:
    at = f" at '{where}'" if where else ""
    return f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.', where


class RequestError(Exception):
    def __init__(self, message: str, field: str | None = None, violation: bool = True) -> None:
        super().__init__(message)
        self.message, self.field, self.violation = message, field, violation


# google-genai's ServiceTier values; usageMetadata.serviceTier says which one served the request
SERVICE_TIERS = ("unspecified", "standard", "flex", "priority")


def validate_generate(req: Any, strict: bool, prefix: str = "GenerateContentRequest") -> None:
    if not isinstance(req, dict):
        raise RequestError('Invalid JSON payload received. Unknown name "": Root element must be a message.')
    if strict:
        for k in req:
            if k not in TOP_FIELDS:
                raise RequestError(*_unknown(k, None))
        gc = g(req, "generationConfig")
        if isinstance(gc, dict):
            for k in gc:
                if k not in GEN_FIELDS:
                    raise RequestError(*_unknown(k, "generation_config"))
    tier = g(req, "serviceTier")
    if tier is not None and (not isinstance(tier, str) or tier.lower() not in SERVICE_TIERS):
        raise RequestError(  # a proto enum's error, as Google words it for any unknown enum value
            f"Invalid value at 'service_tier' (type.googleapis.com/google.ai.generativelanguage.v1beta.ServiceTier), "
            f"{orjson.dumps(tier).decode()}")
    contents = req.get("contents")
    if not contents or not isinstance(contents, list):
        raise RequestError(f"* {prefix}.contents: contents is not specified\n", violation=False)
    for i, c in enumerate(contents):
        if not isinstance(c, dict):
            raise RequestError(*_unknown("", f"contents[{i}]"))
        if strict:
            for k in c:
                if k not in CONTENT_FIELDS:
                    raise RequestError(*_unknown(k, f"contents[{i}]"))
        role = c.get("role") or ""
        if role not in ROLES:
            raise RequestError("Please use a valid role: user, model.", violation=False)
        parts = c.get("parts")
        if not parts or not isinstance(parts, list):
            raise RequestError(
                f"* {prefix}.contents[{i}].parts: contents.parts must not be empty.\n", violation=False
            )
        for j, p in enumerate(parts):
            if not isinstance(p, dict) or not any(k in PART_DATA for k in p):
                raise RequestError(
                    f"* {prefix}.contents[{i}].parts[{j}].data: required oneof field 'data' must "
                    "have one initialized field\n",
                    violation=False,
                )
            if strict:
                for k in p:
                    if k not in PART_FIELDS:
                        raise RequestError(*_unknown(k, f"contents[{i}].parts[{j}]"))


def check_thought_signatures(req: dict[str, Any]) -> str | None:
    """Gemini 3: the first functionCall of each model step in the current turn needs its
    thoughtSignature. Returns the error message, or None."""
    contents = req["contents"]
    start = 0
    for i, c in enumerate(contents):
        if (c.get("role") or "user") == "user" and any("text" in p for p in c.get("parts") or ()):
            start = i
    for i in range(start, len(contents)):
        c = contents[i]
        if c.get("role") != "model":
            continue
        for p in c.get("parts") or ():
            fc = g(p, "functionCall")
            if fc is not None:
                if not g(p, "thoughtSignature"):
                    name = fc.get("name", "") if isinstance(fc, dict) else ""
                    return (
                        "Function call is missing a thought_signature in functionCall parts. This is "
                        "required for tools to work correctly, and missing thought_signature may lead "
                        f"to degraded model performance. Additional data, function call "
                        f"`default_api:{name}` , position {i + 1}. Please refer to "
                        "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
                    )
                break
    return None


def _modality(mime: str) -> str:
    head = mime.split("/", 1)[0].upper()
    return head if head in ("IMAGE", "AUDIO", "VIDEO") else "DOCUMENT"


def prompt_tokens(req: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    chars = 0
    media: dict[str, int] = {}
    sources = list(req.get("contents") or ())
    si = g(req, "systemInstruction")
    if isinstance(si, dict):
        sources.append(si)
    elif isinstance(si, str):
        chars += len(si)
    for c in sources:
        if not isinstance(c, dict):
            continue
        for p in c.get("parts") or ():
            if not isinstance(p, dict):
                continue
            t = p.get("text")
            if isinstance(t, str):
                chars += len(t)
                continue
            blob = g(p, "inlineData") or g(p, "fileData")
            if isinstance(blob, dict):
                m = _modality(str(g(blob, "mimeType") or ""))
                media[m] = media.get(m, 0) + MEDIA_TOKENS
                continue
            fc = g(p, "functionCall")
            if isinstance(fc, dict):
                chars += len(fc.get("name", "")) + len(compact(fc.get("args") or {}))
                continue
            fr = g(p, "functionResponse")
            if isinstance(fr, dict):
                chars += len(fr.get("name", "")) + len(compact(fr.get("response") or {}))
    text_tokens = max(1, chars // 4)
    details = [{"modality": "TEXT", "tokenCount": text_tokens}]
    details.extend({"modality": m, "tokenCount": n} for m, n in media.items())
    return text_tokens + sum(media.values()), details


def heard_audio(parts: Any) -> str | None:
    for p in parts:
        blob = g(p, "inlineData")
        if isinstance(blob, dict) and str(g(blob, "mimeType", "")).startswith("audio/"):
            size = len(base64.b64decode(str(g(blob, "data", "")), validate=False))
            return f"Heard {size} bytes of {g(blob, 'mimeType')}"
    return None


def last_user_text(contents: list[dict[str, Any]]) -> str:
    for c in reversed(contents):
        if (c.get("role") or "user") != "user":
            continue
        texts = [p["text"] for p in c.get("parts") or () if isinstance(p.get("text"), str)]
        if texts:
            text = " ".join(texts)
            return text[:MAX_ECHO]
    return ""


@dataclass
class Answer:
    parts: list[dict[str, Any]]  # one candidate's parts (the candidates are identical)
    n: int
    finish: str
    prompt_tokens: int
    prompt_details: list[dict[str, Any]]
    cand_tokens: int  # per candidate
    thoughts_tokens: int = 0
    cand_details: list[dict[str, Any]] | None = None
    stream_parts: list[dict[str, Any]] = field(default_factory=list)  # parts split for streaming
    tier: str | None = None  # the service tier the request asked for (said back in usageMetadata)

    def usage(self) -> dict[str, Any]:
        cand = self.cand_tokens * self.n
        thoughts = self.thoughts_tokens * self.n
        u: dict[str, Any] = {
            "promptTokenCount": self.prompt_tokens,
            "candidatesTokenCount": cand,
            "totalTokenCount": self.prompt_tokens + cand + thoughts,
            "promptTokensDetails": self.prompt_details,
        }
        if self.cand_details:
            u["candidatesTokensDetails"] = [
                {"modality": d["modality"], "tokenCount": d["tokenCount"] * self.n} for d in self.cand_details
            ]
        if thoughts:
            u["thoughtsTokenCount"] = thoughts
        if self.tier:
            u["serviceTier"] = self.tier
        return u


def split_text(text: str, pieces: int = 3) -> list[str]:
    """Split at spaces into about `pieces` chunks whose concatenation is `text`."""
    if len(text) < 12:
        return [text]
    out: list[str] = []
    start = 0
    for k in range(1, pieces):
        cut = text.find(" ", max(start + 1, len(text) * k // pieces))
        if cut == -1:
            break
        out.append(text[start:cut])
        start = cut
    out.append(text[start:])
    return [c for c in out if c]


def build_answer(req: dict[str, Any], model: str) -> Answer:
    contents = req["contents"]
    gc = g(req, "generationConfig") or {}
    if not isinstance(gc, dict):
        gc = {}
    p_tokens, p_details = prompt_tokens(req)
    user_text = last_user_text(contents)
    last_parts = contents[-1].get("parts") or ()
    responses = [fr for p in last_parts if isinstance(fr := g(p, "functionResponse"), dict)]

    n = g(gc, "candidateCount") or 1
    n = n if isinstance(n, int) and 1 <= n <= 8 else 1
    tc = g(gc, "thinkingConfig") or {}
    thoughts = bool(isinstance(tc, dict) and g(tc, "includeThoughts"))
    modalities = g(gc, "responseModalities")
    if isinstance(modalities, list):
        image = "IMAGE" in [str(m).upper() for m in modalities]
        audio = "AUDIO" in [str(m).upper() for m in modalities]
    else:
        image, audio = "image" in model, False

    call_name = None
    if not responses:
        decls: list[Any] = []
        for t in req.get("tools") or ():
            if isinstance(t, dict):
                decls.extend(d.get("name") for d in g(t, "functionDeclarations") or () if isinstance(d, dict))
        fcc = g(g(req, "toolConfig"), "functionCallingConfig") or {}
        mode = str(fcc.get("mode", "AUTO")).upper() if isinstance(fcc, dict) else "AUTO"
        allowed = g(fcc, "allowedFunctionNames") or []
        if decls and mode != "NONE":
            call_name = next((d for d in decls if d in allowed), decls[0])

    parts: list[dict[str, Any]] = []
    stream_parts: list[dict[str, Any]] = []
    if thoughts:
        tp = {"text": MSG_THOUGHT, "thought": True}
        parts.append(tp)
        stream_parts.append(tp)
    finish = "STOP"
    details = None
    if call_name is not None:
        fc = {"functionCall": {"name": call_name, "args": {"query": user_text}},
              "thoughtSignature": thought_signature(call_name)}
        parts.append(fc)
        stream_parts.append(fc)
        c_tokens = max(1, len(compact(fc["functionCall"])) // 4)
    elif audio and not responses:
        pcm = speech_pcm(user_text)
        parts.append({"inlineData": {"mimeType": TTS_MIME, "data": base64.b64encode(pcm).decode()}})
        stream_parts.append(parts[-1])
        c_tokens = max(1, len(pcm) // 2 * TTS_TOKENS_PER_SECOND // TTS_RATE)
        details = [{"modality": "AUDIO", "tokenCount": c_tokens}]
    elif image and not responses:
        img = {"inlineData": {"mimeType": "image/png", "data": PNG_B64}}
        parts += [{"text": MSG_IMAGE}, img]
        stream_parts += [{"text": MSG_IMAGE}, img]
        t_tokens = max(1, len(MSG_IMAGE) // 4)
        c_tokens = t_tokens + IMAGE_TOKENS
        details = [{"modality": "TEXT", "tokenCount": t_tokens}, {"modality": "IMAGE", "tokenCount": IMAGE_TOKENS}]
    else:
        heard = heard_audio(last_parts) if (contents[-1].get("role") or "user") == "user" else None
        if responses:
            text = "Tool result: " + " ".join(compact(fr.get("response")) for fr in responses)
        elif heard is not None:
            text = heard
        elif g(gc, "responseMimeType") == "application/json":
            text = compact({"echo": user_text})
        else:
            text = "Echo: " + user_text
        c_tokens = max(1, len(text) // 4)
        limit = g(gc, "maxOutputTokens")
        if isinstance(limit, int) and 0 < limit < c_tokens:
            text = text[: limit * 4]
            c_tokens = limit
            finish = "MAX_TOKENS"
        parts.append({"text": text})
        stream_parts.extend({"text": t} for t in split_text(text))
    tier = g(req, "serviceTier")
    tier = tier.lower() if isinstance(tier, str) and tier.lower() in ("flex", "priority", "standard") else None
    return Answer(
        parts=parts, n=n, finish=finish, prompt_tokens=p_tokens, prompt_details=p_details,
        cand_tokens=c_tokens, thoughts_tokens=THOUGHT_TOKENS if thoughts else 0,
        cand_details=details, stream_parts=stream_parts, tier=tier,
    )


IMAGE_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")


def check_speech(req: dict[str, Any], model: str) -> str | None:
    """What Google answers a TTS model asked for anything but audio, a voice it does not have, or an image
    aspect ratio it does not make."""
    gc = g(req, "generationConfig") or {}
    modalities = [str(m).upper() for m in g(gc, "responseModalities") or ()] if isinstance(gc, dict) else []
    if is_tts(model) and modalities != ["AUDIO"]:
        asked = ", ".join(modalities) or "TEXT"
        return (f"The requested combination of response modalities ({asked}) is not supported by the model. "
                f"models/{model} accepts the following combination of response modalities:\n* AUDIO\n")
    ratio = g(g(gc, "imageConfig"), "aspectRatio")
    if ratio is not None and ratio not in IMAGE_RATIOS:
        return f"Unsupported aspect ratio: {ratio}. Supported values are: {', '.join(IMAGE_RATIOS)}."
    voice = g(g(g(g(gc, "speechConfig"), "voiceConfig"), "prebuiltVoiceConfig"), "voiceName")
    if voice is not None and voice not in TTS_VOICES:
        return f"Voice name {voice} is not supported. Allowed voice names are: {', '.join(sorted(TTS_VOICES))}"
    return None


def full_response(ans: Answer, model: str, response_id: str) -> dict[str, Any]:
    return {
        "candidates": [
            {"content": {"parts": ans.parts, "role": "model"}, "finishReason": ans.finish, "index": i}
            for i in range(ans.n)
        ],
        "usageMetadata": ans.usage(),
        "modelVersion": model,
        "responseId": response_id,
    }


def stream_responses(ans: Answer, model: str, response_id: str) -> list[dict[str, Any]]:
    partial = {
        "promptTokenCount": ans.prompt_tokens,
        "totalTokenCount": ans.prompt_tokens,
        "promptTokensDetails": ans.prompt_details,
    }
    out = []
    last = len(ans.stream_parts) - 1
    for k, part in enumerate(ans.stream_parts):
        cands = []
        for i in range(ans.n):
            cand: dict[str, Any] = {"content": {"parts": [part], "role": "model"}}
            if k == last:
                cand["finishReason"] = ans.finish
            cand["index"] = i
            cands.append(cand)
        out.append({
            "candidates": cands,
            "usageMetadata": ans.usage() if k == last else partial,
            "modelVersion": model,
            "responseId": response_id,
        })
    return out


def count_tokens_request(req: Any) -> dict[str, Any]:
    """countTokens accepts {"contents": [...]} or {"generateContentRequest": {...}}."""
    if not isinstance(req, dict):
        raise RequestError('Invalid JSON payload received. Unknown name "": Root element must be a message.')
    inner = g(req, "generateContentRequest")
    if isinstance(inner, dict):
        validate_generate(inner, strict=False, prefix="CountTokensRequest.generate_content_request")
        return inner
    validate_generate(req, strict=False, prefix="CountTokensRequest")
    return req
