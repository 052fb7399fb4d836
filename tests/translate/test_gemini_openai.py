"""gemini_openai: Gemini clients served by OpenAI upstreams. Golden fixtures, errors, round trips."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from google.genai import types
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from keymux.errors import BadRequest
from keymux.translate.providers import openai as openai_provider

from .compose import (
    StreamToGemini,
    StreamToOpenAI,
    request_to_gemini,
    request_to_openai,
    response_from_gemini,
    response_to_gemini,
)

FIXTURES = Path(__file__).parent / "fixtures"


def golden(name: str) -> list[Path]:
    return sorted((FIXTURES / name).glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


REQUESTS = golden("request_to_openai")
RESPONSES = golden("response_to_gemini")
STREAMS = golden("stream_to_gemini")
ERRORS = json.loads((FIXTURES / "request_to_openai_errors.json").read_text())


def test_fixtures_exist() -> None:
    assert len(REQUESTS) >= 5 and len(RESPONSES) >= 3 and len(STREAMS) >= 3


@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_request_golden(path: Path) -> None:
    case = load(path)
    assert request_to_openai(case["input"], model=case["model"]) == case["expected"], case["description"]


@pytest.mark.parametrize("case", ERRORS, ids=[c["name"] for c in ERRORS])
def test_request_errors(case: dict[str, Any]) -> None:
    with pytest.raises(BadRequest) as info:
        request_to_openai(case["input"], model="m")
    assert info.value.param == case["error"]["param"]
    for fragment in case["error"]["message_contains"]:
        assert fragment in info.value.message


@pytest.mark.parametrize("path", RESPONSES, ids=[p.stem for p in RESPONSES])
def test_response_golden(path: Path) -> None:
    case = load(path)
    out = response_to_gemini(case["input"])
    assert out == case["expected"], case["description"]
    types.GenerateContentResponse.model_validate(out)


@pytest.mark.parametrize("path", STREAMS, ids=[p.stem for p in STREAMS])
def test_stream_golden(path: Path) -> None:
    case = load(path)
    stream = StreamToGemini()
    out = [g for chunk in case["input"] for g in stream.feed(chunk)] + stream.finish()
    assert out == case["expected"], case["description"]
    assert stream.usage == openai_provider.usage(case["expected_usage"])
    for chunk in out:
        types.GenerateContentResponse.model_validate(chunk)


def test_stream_model_override() -> None:
    stream = StreamToGemini(model="client-facing-name")
    out = stream.feed({"id": "x", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": "hi"}}]})
    assert out[0]["modelVersion"] == "client-facing-name"


# -- round trips ---------------------------------------------------------------------------------

OPENAI_RESPONSE = {
    "id": "chatcmpl-rt", "object": "chat.completion", "created": 9, "model": "gpt-4.1",
    "choices": [{
        "index": 0,
        "message": {
            "role": "assistant", "content": "Done.", "reasoning_content": "Thinking.",
            "tool_calls": [{"id": "call_x", "type": "function", "function": {"name": "f", "arguments": "{\"a\":[1,2]}"}}],
            "images": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}, "index": 0}],
        },
        "logprobs": None, "finish_reason": "tool_calls",
    }],
    "usage": {"prompt_tokens": 10, "completion_tokens": 30, "total_tokens": 40,
              "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 12}},
}


def test_openai_response_round_trip() -> None:
    gemini = response_to_gemini(OPENAI_RESPONSE)
    back = response_from_gemini(gemini, model="gpt-4.1", response_id="chatcmpl-rt", created=9)
    assert back == OPENAI_RESPONSE


GEMINI_RESPONSE = {
    "candidates": [{
        "content": {"role": "model", "parts": [
            {"text": "plan", "thought": True},
            {"text": "Calling."},
            {"functionCall": {"id": "fc1", "name": "lookup", "args": {"q": "x"}}, "thoughtSignature": "Ym98iZajsL3K1+Tx/gsYJTI/TFk="},
        ]},
        "finishReason": "STOP", "index": 0,
    }],
    "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 5, "totalTokenCount": 20,
                      "thoughtsTokenCount": 8, "cachedContentTokenCount": 2},
    "modelVersion": "gemini-2.5-pro", "responseId": "resp-1",
}


def test_gemini_response_round_trip_keeps_the_signature() -> None:
    openai = response_from_gemini(GEMINI_RESPONSE, model="gemini-2.5-pro", response_id="resp-1", created=1)
    assert response_to_gemini(openai) == GEMINI_RESPONSE


GEMINI_REQUEST = {
    "systemInstruction": {"parts": [{"text": "Be brief."}]},
    "contents": [
        {"role": "user", "parts": [{"text": "Look it up"}, {"inlineData": {"mimeType": "image/png", "data": "QUJD"}}]},
        {"role": "model", "parts": [{"text": "Sure."}, {"functionCall": {"id": "call_1", "name": "lookup", "args": {"q": "x"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"id": "call_1", "name": "lookup", "response": {"hits": 2}}},
                                   {"text": "And?"}]},
    ],
    "tools": [{"functionDeclarations": [{"name": "lookup", "description": "Search",
               "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}]}],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}},
    "generationConfig": {"maxOutputTokens": 99, "temperature": 0.5, "topP": 0.9, "stopSequences": ["Z"], "candidateCount": 1,
                         "seed": 3, "presencePenalty": 0.1, "frequencyPenalty": 0.2, "responseMimeType": "application/json",
                         "responseJsonSchema": {"type": "object"}, "responseModalities": ["TEXT", "IMAGE"],
                         "thinkingConfig": {"thinkingBudget": 8192, "includeThoughts": True}},
}


def test_gemini_request_round_trip() -> None:
    snapshot = copy.deepcopy(GEMINI_REQUEST)
    openai_body = request_to_openai(GEMINI_REQUEST, model="m")
    assert GEMINI_REQUEST == snapshot
    assert request_to_gemini(openai_body, drop_params=False) == GEMINI_REQUEST


OPENAI_REQUEST = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "Look"},
                                     {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}}]},
    ],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}}],
    "tool_choice": "auto",
    "max_completion_tokens": 5, "temperature": 1.0, "stop": ["x"], "response_format": {"type": "json_object"},
    "reasoning_effort": "low",
}


def test_openai_request_round_trip() -> None:
    back = request_to_openai(request_to_gemini(OPENAI_REQUEST, drop_params=False), model="m")
    assert back == OPENAI_REQUEST


def accumulate(chunks: list[dict[str, Any]]) -> Any:
    state = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    return state.current_completion_snapshot


@pytest.mark.parametrize("path", golden("stream_to_openai"), ids=[p.stem for p in golden("stream_to_openai")])
def test_stream_round_trip(path: Path) -> None:
    """Gemini chunks -> OpenAI chunks -> Gemini chunks -> OpenAI chunks says the same thing."""
    case = load(path)
    first = StreamToOpenAI(**case["options"])
    openai_chunks = [c for g in case["input"] for c in first.feed(g)] + first.finish()
    to_gemini = StreamToGemini()
    gemini_chunks = [g for c in openai_chunks for g in to_gemini.feed(c)] + to_gemini.finish()
    second = StreamToOpenAI(**case["options"])
    again = [c for g in gemini_chunks for c in second.feed(g)] + second.finish()
    a, b = accumulate(openai_chunks), accumulate(again)
    assert [c.model_dump() for c in a.choices] == [c.model_dump() for c in b.choices]
    assert a.usage == b.usage
    if case["options"]["include_usage"]:  # otherwise usage never reaches the OpenAI chunks
        assert second.usage == first.usage is not None


def test_usage_chunk_with_nothing_held_goes_out_alone() -> None:
    stream = StreamToGemini()
    assert stream.feed({"id": "x", "model": "m", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}) == [
        {"usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 2, "totalTokenCount": 3}, "modelVersion": "m", "responseId": "x"}]
    assert stream.finish() == []


def test_held_final_chunk_is_released_before_later_content() -> None:
    stream = StreamToGemini()
    assert stream.feed({"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": "stop"}]}) == []
    out = stream.feed({"choices": [{"index": 1, "delta": {"content": "b"}}]})
    assert [c["candidates"][0]["index"] for c in out] == [0, 1]
    assert out[0]["candidates"][0]["finishReason"] == "STOP"
