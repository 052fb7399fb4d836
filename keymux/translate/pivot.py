"""The pivot: one neutral shape of a request, a response and a stream delta that every client API
decodes into and every provider encodes from (docs/pivot.md has the field-by-field table).

Slotted dataclasses, built once per request or chunk: attribute reads are cheaper than dict lookups
and nothing here is larger than the JSON it came from (strings and schemas are shared, not copied).
A client API or a provider adds fields only when two APIs share them; what one API alone has
stays in that API's module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Part kinds
TEXT = "text"
THINKING = "thinking"  # reasoning text; `signature` is Gemini's thoughtSignature / Anthropic's signature
MEDIA = "media"  # image, audio, document: inline base64 (`data`) or a reference (`url`)
TOOL_CALL = "tool_call"
TOOL_RESULT = "tool_result"

# Normalised finish reasons (each API maps its own to these and back)
STOP = "stop"
LENGTH = "length"
TOOL_CALLS = "tool_calls"
CONTENT_FILTER = "content_filter"  # safety, recitation, blocklist ...
STOP_SEQUENCE = "stop_sequence"
REFUSAL = "refusal"
ERROR = "error"
OTHER = "other"


@dataclass(slots=True)
class Usage:
    """Token counts of one answer. `completion` includes `reasoning`; `cached` is part of `prompt`.

    `prompt_modalities` / `completion_modalities`: tokens per modality (lower case: text, image, audio,
    video, document) where the provider breaks them down (Gemini's promptTokensDetails /
    candidatesTokensDetails), so that an image or audio token is priced as one. `tier`: the service tier
    the provider says it served (Gemini flex / standard / priority), which may differ from the one asked for.
    """

    prompt: int = 0
    completion: int = 0
    reasoning: int = 0
    total: int = 0
    cached: int = 0
    prompt_modalities: dict[str, int] | None = None
    completion_modalities: dict[str, int] | None = None
    tier: str | None = None
    images: int = 0  # generated images, for models priced per image (Imagen); 0 for everything else


@dataclass(slots=True)
class Part:
    kind: str
    text: str = ""  # TEXT / THINKING text
    signature: str | None = None  # THINKING, TOOL_CALL, or a TEXT part Gemini signed
    mime: str = ""  # MEDIA
    data: str | None = None  # MEDIA inline, base64
    url: str | None = None  # MEDIA by reference: http(s) URL, gs:// or a provider file id
    name: str = ""  # TOOL_CALL / TOOL_RESULT function name; MEDIA file name
    call_id: str | None = None  # TOOL_CALL / TOOL_RESULT: the id that pairs them, stable across turns
    args: dict[str, Any] | None = None  # TOOL_CALL arguments
    result: Any = None  # TOOL_RESULT: an object or a string, as the client sent it


@dataclass(slots=True)
class Message:
    role: str  # "user" | "assistant"; tool results are TOOL_RESULT parts of a user message
    parts: list[Part]


@dataclass(slots=True)
class Tool:
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None  # JSON Schema


@dataclass(slots=True)
class ToolChoice:
    mode: str  # "auto" | "none" | "required"
    names: list[str] | None = None  # required: only these functions


@dataclass(slots=True)
class Request:
    system: list[Part] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    max_tokens: Any = None
    temperature: Any = None
    top_p: Any = None
    top_k: Any = None
    n: Any = None
    seed: Any = None
    presence_penalty: Any = None
    frequency_penalty: Any = None
    stop: Any = None  # list of stop sequences
    response_format: str | None = None  # "json" | "json_schema" (None: text)
    response_schema: dict[str, Any] | None = None  # JSON Schema
    modalities: list[str] | None = None  # lower case: "text", "image", "audio"
    reasoning_effort: str | None = None  # "none" | "minimal" | "low" | "medium" | "high" | a Gemini level
    thinking_budget: int | None = None  # tokens; Gemini 0 = off, -1 = dynamic
    include_thoughts: bool | None = None
    service_tier: str | None = None  # "flex" | "standard" | "priority" (Gemini's names)


@dataclass(slots=True)
class Choice:
    index: int
    parts: list[Part]
    finish: str | None = None  # a normalised reason above
    native_finish: str | None = None  # the provider's own word for it (SAFETY, MALFORMED_FUNCTION_CALL ...)


@dataclass(slots=True)
class Response:
    choices: list[Choice]
    usage: Usage | None = None
    id: str | None = None  # the upstream's response id
    model: str | None = None  # the upstream's model version
    blocked: str | None = None  # the prompt was refused before any answer (Gemini promptFeedback.blockReason)


@dataclass(slots=True)
class Delta:
    """One upstream stream chunk: new parts per choice (tool calls arrive whole)."""

    choices: list[Choice]
    usage: Usage | None = None
    id: str | None = None
    model: str | None = None
    blocked: str | None = None
