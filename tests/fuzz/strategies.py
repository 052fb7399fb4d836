"""Hypothesis strategies for what clients send: JSON of any shape, and bodies shaped like each API's requests
(so most examples get past the first check and reach the translators and the upstream)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import strategies as st

INT64 = 2**63 - 1

scalars = (st.none() | st.booleans() | st.integers(-INT64, INT64)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=24))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=16)
texts = st.text(max_size=60)

# -- OpenAI chat completions --------------------------------------------------------------------
IMAGE_URLS = ("data:image/png;base64,iVBORw0KGgo=", "data:image/png;base64,!!notbase64", "data:,",
              "http://127.0.0.1:1/x.png", "", "file:///etc/passwd")
openai_part = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image_url", "input_audio", "file", "refusal"]) | st.text(max_size=6)},
    optional={"text": texts | json_values,
              "image_url": st.fixed_dictionaries({"url": st.sampled_from(IMAGE_URLS) | texts}) | json_values,
              "input_audio": json_values, "file": json_values})
tool_call = st.fixed_dictionaries(
    {"id": texts, "type": st.just("function") | texts,
     "function": st.fixed_dictionaries({"name": texts, "arguments": texts | json_values.map(
         lambda v: orjson.dumps(v).decode())}) | json_values})
openai_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool", "developer"]) | st.text(max_size=8),
     "content": texts | st.lists(openai_part, max_size=3) | json_values},
    optional={"tool_calls": st.lists(tool_call, max_size=2) | json_values, "name": texts,
              "tool_call_id": texts})
openai_tool = st.fixed_dictionaries(
    {"type": st.just("function") | texts,
     "function": st.fixed_dictionaries({"name": texts}, optional={"description": texts, "parameters": json_values})
     | json_values})
chat_body = st.fixed_dictionaries(
    {"model": st.sampled_from(["chat", "gpt", "gemini-2.5-flash"]) | st.text(max_size=12) | json_values,
     "messages": st.lists(openai_message, min_size=1, max_size=4) | json_values},
    optional={"stream": st.booleans() | json_values,
              "stream_options": st.fixed_dictionaries({"include_usage": st.booleans() | json_values}) | json_values,
              "temperature": st.floats(0, 2) | json_values, "top_p": st.floats(0, 1) | json_values,
              "max_tokens": st.integers(-5, 10**7) | json_values,
              "max_completion_tokens": st.integers(-5, 10**7) | json_values,
              "n": st.integers(-1, 5) | json_values, "stop": texts | st.lists(texts, max_size=5) | json_values,
              "tools": st.lists(openai_tool, max_size=2) | json_values,
              "tool_choice": st.sampled_from(["auto", "none", "required"]) | json_values,
              "response_format": st.fixed_dictionaries(
                  {"type": st.sampled_from(["text", "json_object", "json_schema"]) | texts},
                  optional={"json_schema": json_values}) | json_values,
              "reasoning_effort": st.sampled_from(["low", "medium", "high", "minimal"]) | json_values,
              "seed": st.integers(-INT64, INT64) | json_values, "user": texts | json_values})

# -- Gemini generateContent / countTokens -------------------------------------------------------
gemini_part = (st.fixed_dictionaries({"text": texts | json_values})
               | st.fixed_dictionaries({"inlineData": st.fixed_dictionaries(
                   {"mimeType": st.sampled_from(["image/png", "text/plain", ""]) | texts,
                    "data": st.sampled_from(["iVBORw0KGgo=", "!!", ""]) | texts})})
               | st.fixed_dictionaries({"functionCall": st.fixed_dictionaries({"name": texts},
                                                                             optional={"args": json_values})})
               | st.fixed_dictionaries({"functionResponse": json_values})
               | json_values)
gemini_content = st.fixed_dictionaries(
    {"parts": st.lists(gemini_part, max_size=3) | json_values},
    optional={"role": st.sampled_from(["user", "model", "function"]) | texts})
generation_config = st.fixed_dictionaries({}, optional={
    "temperature": st.floats(0, 2) | json_values, "maxOutputTokens": st.integers(-5, 10**7) | json_values,
    "candidateCount": st.integers(-1, 5) | json_values, "stopSequences": st.lists(texts, max_size=3) | json_values,
    "responseMimeType": st.sampled_from(["application/json", "text/plain", "text/x.enum"]) | texts,
    "responseSchema": json_values, "responseJsonSchema": json_values,
    "thinkingConfig": st.fixed_dictionaries({}, optional={"thinkingBudget": st.integers(-2, 10**6) | json_values,
                                                         "includeThoughts": st.booleans() | json_values})})
gemini_body = st.fixed_dictionaries(
    {"contents": st.lists(gemini_content, min_size=1, max_size=3) | json_values},
    optional={"generationConfig": generation_config | json_values,
              "systemInstruction": gemini_content | json_values,
              "tools": st.lists(st.fixed_dictionaries({"functionDeclarations": json_values}), max_size=2)
              | json_values,
              "safetySettings": json_values, "cachedContent": texts | json_values})
gemini_model = st.sampled_from(["chat", "gpt", "gemini-2.5-flash", "models%2Fchat", "nope"]) | st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#%"), min_size=1, max_size=12)

# -- admin ---------------------------------------------------------------------------------------
ADMIN_FIELDS = ("group", "api_key", "model", "api_base", "provider", "rpm", "tpm", "rpd", "tpd",
                "max_parallel_requests", "project", "weight", "order")
admin_body = st.dictionaries(
    st.sampled_from(ADMIN_FIELDS) | st.text(max_size=8),
    st.sampled_from(["fuzz-new", "gemini/gemini-2.5-flash", "openai/gpt-4o-mini", "gemini", "openai", 5, -1,
                     "http://attacker.example"]) | json_values | texts.map(lambda t: "fz-" + t),
    max_size=8).filter(lambda d: d.get("group") not in ("chat", "gpt"))


def body_bytes(structured: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Mostly the API's shape, sometimes any JSON, sometimes bytes that are not JSON (or not UTF-8)."""
    return st.one_of(structured.map(orjson.dumps), structured.map(orjson.dumps), json_values.map(orjson.dumps),
                     st.binary(max_size=120))


# -- headers -------------------------------------------------------------------------------------
header_value = st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b)
header_name = st.sampled_from([b"authorization", b"x-api-key", b"x-goog-api-key", b"x-request-id",
                               b"content-type", b"x-forwarded-for", b"accept-encoding", b"x-goog-api-client"])
