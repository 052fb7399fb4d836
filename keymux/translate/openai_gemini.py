"""OpenAI chat.completions client -> Gemini generateContent upstream.

`request_to_gemini` builds the Gemini body (model and stream are the caller's: they live in the URL).
The way back lives beside it, re-exported here so callers import one module:
`response_from_gemini` / `usage_from_gemini` (openai_gemini_response.py), `StreamToOpenAI`
(openai_gemini_stream.py) and the prompt-size estimates (estimate.py).

Tool-call ids carry Gemini thought signatures: see tool_calls.py.
"""

from __future__ import annotations

from typing import Any

from keymux.errors import BadRequest

from ._json import Json
from .estimate import estimate_gemini_prompt_tokens, estimate_prompt_tokens
from .openai_gemini_messages import messages_to_contents
from .openai_gemini_response import response_from_gemini, usage_from_gemini
from .openai_gemini_stream import StreamToOpenAI
from .schema import to_gemini_schema

__all__ = [
    "StreamToOpenAI",
    "estimate_gemini_prompt_tokens",
    "estimate_prompt_tokens",
    "request_to_gemini",
    "response_from_gemini",
    "usage_from_gemini",
]


# Accepted and ignored: they mean nothing to Gemini or are the caller's business.
_HARMLESS = frozenset({
    "model", "stream", "stream_options", "user", "metadata", "store",
    "parallel_tool_calls", "service_tier",
})
_MAPPED = frozenset({
    "messages", "tools", "tool_choice", "max_tokens", "max_completion_tokens", "temperature",
    "top_p", "top_k", "stop", "n", "seed", "presence_penalty", "frequency_penalty",
    "response_format", "modalities", "reasoning_effort",
})
THINKING_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
DROP_HINT = "set litellm_settings.drop_params: true to drop it"


def request_to_gemini(body: Json, *, drop_params: bool) -> Json:
    """OpenAI chat.completions request body -> Gemini generateContent body."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    _check_params(body, drop_params)
    system, contents = messages_to_contents(body.get("messages"))
    out: Json = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    declarations = _convert_tools(body.get("tools"), drop_params)
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
    calling = _function_calling_config(body.get("tool_choice"), [d["name"] for d in declarations])
    if calling is not None and declarations:
        out["toolConfig"] = {"functionCallingConfig": calling}
    generation = _generation_config(body)
    if generation:
        out["generationConfig"] = generation
    return out


def _check_params(body: Json, drop_params: bool) -> None:
    for key, value in body.items():
        if key in _MAPPED or key in _HARMLESS:
            continue
        if value is None or value == {} or value == [] or (key == "logprobs" and value is False):
            continue
        if not drop_params:
            raise BadRequest(f"Unsupported parameter '{key}': Gemini models do not support it; {DROP_HINT}", param=key)


# -- tools ------------------------------------------------------------------------------------


def _convert_tools(tools: Any, drop_params: bool) -> list[Json]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be an array", param="tools")
    declarations = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise BadRequest(f"{where} must be an object", param=where)
        kind = tool.get("type", "function")
        if kind != "function":
            if drop_params:
                continue
            raise BadRequest(
                f"{where}.type {kind!r} is not supported by Gemini models (only 'function'); {DROP_HINT}",
                param=f"{where}.type",
            )
        fn = tool.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise BadRequest(f"{where}.function.name must be a non-empty string", param=f"{where}.function.name")
        declaration: Json = {"name": fn["name"]}
        description = fn.get("description")
        if isinstance(description, str) and description:
            declaration["description"] = description
        parameters = to_gemini_schema(fn.get("parameters"))
        # Gemini rejects an OBJECT schema with no properties: a function without arguments has no parameters.
        if parameters.get("properties") or parameters.get("type", "object") != "object":
            declaration["parameters"] = parameters
        declarations.append(declaration)
    return declarations


def _function_calling_config(choice: Any, names: list[str]) -> Json | None:
    if choice is None:
        return None
    modes = {"none": "NONE", "auto": "AUTO", "required": "ANY"}
    if isinstance(choice, str) and choice in modes:
        return {"mode": modes[choice]}
    if isinstance(choice, dict) and choice.get("type") == "function":
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise BadRequest("tool_choice.function.name must be a non-empty string", param="tool_choice")
        if name not in names:
            raise BadRequest(f"tool_choice names function {name!r}, which is not in 'tools'", param="tool_choice")
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    raise BadRequest(
        "tool_choice must be 'none', 'auto', 'required' or {'type': 'function', 'function': {'name': ...}}",
        param="tool_choice",
    )


# -- generation config ------------------------------------------------------------------------


def _number(body: Json, key: str, *, integer: bool = False, minimum: float | None = None) -> Any:
    value = body.get(key)
    if value is None:
        return None
    valid = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not valid or (minimum is not None and value < minimum):
        what = "an integer" if integer else "a number"
        bound = f" >= {minimum:g}" if minimum is not None else ""
        raise BadRequest(f"'{key}' must be {what}{bound}; got {value!r}", param=key)
    return value


def _generation_config(body: Json) -> Json:
    out: Json = {}
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    numbers = (
        (key, "maxOutputTokens", True, 1),
        ("temperature", "temperature", False, 0),
        ("top_p", "topP", False, 0),
        ("top_k", "topK", True, 1),
        ("n", "candidateCount", True, 1),
        ("seed", "seed", True, None),
        ("presence_penalty", "presencePenalty", False, None),
        ("frequency_penalty", "frequencyPenalty", False, None),
    )
    for name, gemini_name, integer, minimum in numbers:
        value = _number(body, name, integer=integer, minimum=minimum)
        if value is not None:
            out[gemini_name] = value

    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        if any(stop):  # Gemini rejects empty stop sequences
            out["stopSequences"] = [s for s in stop if s]
    elif stop is not None:
        raise BadRequest("'stop' must be a string or an array of strings", param="stop")

    _response_format(body.get("response_format"), out)

    modalities = body.get("modalities")
    if modalities is not None:
        if not isinstance(modalities, list) or not all(isinstance(m, str) for m in modalities):
            raise BadRequest("'modalities' must be an array of strings", param="modalities")
        if modalities:
            out["responseModalities"] = [m.upper() for m in modalities]

    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort not in THINKING_BUDGETS:
            raise BadRequest(
                f"'reasoning_effort' must be one of {', '.join(THINKING_BUDGETS)}; got {effort!r}",
                param="reasoning_effort",
            )
        budget = THINKING_BUDGETS[effort]
        out["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": True} if budget else {"thinkingBudget": 0}
    return out


def _response_format(fmt: Any, out: Json) -> None:
    if fmt is None:
        return
    if not isinstance(fmt, dict):
        raise BadRequest("response_format must be an object", param="response_format")
    kind = fmt.get("type")
    if kind == "text":
        return
    if kind == "json_object":
        out["responseMimeType"] = "application/json"
        return
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise BadRequest(
                "response_format.json_schema.schema must be a JSON Schema object",
                param="response_format.json_schema.schema",
            )
        out["responseMimeType"] = "application/json"
        out["responseJsonSchema"] = schema
        return
    raise BadRequest(
        "response_format.type must be 'text', 'json_object' or 'json_schema'", param="response_format"
    )
