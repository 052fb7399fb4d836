"""Translation through the pivot: ids and signatures across turns, streams split anywhere, the registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.genai import types
from openai.types.chat import ChatCompletion

from keymux.exchange import StreamBroken, make_exchange
from keymux.exchange.translating import TranslatingStream
from keymux.providers import ENDS_STREAM
from keymux.translate.clients import gemini as gemini_client
from keymux.translate.clients import openai_chat, openai_responses_stream
from keymux.translate.providers import gemini as gemini_provider
from keymux.translate.providers import openai as openai_provider
from keymux.translate.registry import CLIENTS, PROVIDERS
from keymux.translate.sse import DONE, SSEDecoder, sse_event

from .compose import (
    request_to_gemini,
    request_to_openai,
    response_from_gemini,
    response_to_gemini,
)

FIXTURES = Path(__file__).parent / "fixtures"


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_gemini_ids_and_signatures_survive_an_openai_client_turn() -> None:
    case = load(FIXTURES / "round_trip" / "openai_client_gemini_key.json")
    answer = response_from_gemini(case["gemini_response"], **case["options"])
    message = ChatCompletion.model_validate(answer).choices[0].message.model_dump(exclude_none=True)
    results = case["tool_results"]
    messages = [case["user"], message] + [
        {"role": "tool", "tool_call_id": call["id"], "content": results[call["function"]["name"]]}
        for call in message["tool_calls"]]
    assert request_to_gemini({"messages": messages}, drop_params=False) == case["expected_gemini_request"]
    model_parts = case["expected_gemini_request"]["contents"][1]["parts"]
    assert model_parts[1]["functionCall"]["id"] == "fc_weather_1"
    assert model_parts[1]["thoughtSignature"] == case["gemini_response"]["candidates"][0]["content"]["parts"][1][
        "thoughtSignature"]


def test_tool_ids_stay_paired_for_a_gemini_client_on_an_openai_key() -> None:
    case = load(FIXTURES / "round_trip" / "gemini_client_openai_key.json")
    first = request_to_openai(case["first_request"], model=case["model"])
    assert first == case["expected_first_openai_request"]
    calls = [c["id"] for c in first["messages"][1]["tool_calls"]]
    assert calls == ["call_0", "call_1"]
    assert [m["tool_call_id"] for m in first["messages"][2:]] == calls
    answer = response_to_gemini(case["upstream_answer"])
    assert answer == case["expected_gemini_answer"]
    types.GenerateContentResponse.model_validate(answer)
    assert answer["usageMetadata"]["cachedContentTokenCount"] == 32
    assert request_to_openai(case["second_request"], model=case["model"]) == case["expected_second_openai_request"]


def _events(out: list[bytes]) -> list[Any]:
    decoder = SSEDecoder()
    payloads = [p for chunk in out for p in decoder.feed(chunk)] + decoder.flush()
    return [p if p == b"[DONE]" else orjson.loads(p) for p in payloads]


def _split_everywhere(raw: bytes, make: Any) -> list[list[Any]]:
    """The client-facing events for the upstream bytes cut in two at every offset."""
    results = []
    for cut in range(len(raw) + 1):
        stream: TranslatingStream = make()
        decoder = SSEDecoder()
        out: list[bytes] = []
        for piece in (raw[:cut], raw[cut:]):
            for payload in decoder.feed(piece):
                out.extend(stream.feed(payload))
        for payload in decoder.flush():
            out.extend(stream.feed(payload))
        out.extend(stream.finish())
        results.append(_events(out))
    return results


def test_an_openai_client_stream_from_gemini_split_at_every_byte() -> None:
    case = load(FIXTURES / "stream_to_openai" / "tool_calls.json")
    raw = b"".join(b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in case["input"])
    opts = case["options"]

    def make() -> TranslatingStream:
        return TranslatingStream(gemini_provider.StreamDecoder(), openai_chat.StreamEncoder(
            opts["model"], opts["include_usage"], response_id=opts["response_id"], created=opts["created"]))

    for events in _split_everywhere(raw, make):
        assert events == case["expected"] + [b"[DONE]"]


def test_a_gemini_client_stream_from_openai_split_at_every_byte() -> None:
    case = load(FIXTURES / "stream_to_gemini" / "tool_call_fragments.json")
    raw = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in case["input"]) + b"data: [DONE]\n\n"

    def make() -> TranslatingStream:
        return TranslatingStream(openai_provider.StreamDecoder(), gemini_client.StreamEncoder())

    for events in _split_everywhere(raw, make):
        assert events == case["expected"]


def _provider_streams() -> list[tuple[str, list[bytes]]]:
    """Every recorded upstream stream of the fixtures, as its payloads, with the provider that sent it."""
    out = []
    for folder in ("stream_to_openai", "responses_stream_from_gemini"):
        for path in sorted((FIXTURES / folder).glob("*.json")):
            out.append(("gemini", [orjson.dumps(c) for c in load(path)["input"]]))
    for path in sorted((FIXTURES / "stream_to_gemini").glob("*.json")):
        out.append(("openai", [orjson.dumps(c) for c in load(path)["input"]] + [b"[DONE]"]))
    for case in load(FIXTURES / "anthropic" / "stream_to_openai.json").values():
        out.append(("anthropic", SSEDecoder().feed(case["sse"].encode())))
    return out


@pytest.mark.parametrize(("provider", "payloads"), _provider_streams())
def test_a_decoder_says_a_stream_ended_where_the_providers_one_check_does(provider: str,
                                                                           payloads: list[bytes]) -> None:
    """The translating path reads the end of an answer from its decoder (no second scan of each payload);
    the passthrough path from keymux.providers.ENDS_STREAM. Both must agree, payload by payload."""
    decoder = PROVIDERS[provider].StreamDecoder()
    seen_end = False
    for payload in payloads:
        try:
            decoder.feed(payload)
        except StreamBroken:  # a broken stream's error event: the checks agreed up to it
            break
        seen_end = seen_end or ENDS_STREAM[provider](payload)
        assert decoder.ended is seen_end, payload


@pytest.mark.parametrize("payloads", [payloads for provider, payloads in _provider_streams() if provider == "gemini"])
def test_the_gemini_decoders_text_chunk_shortcut_reads_what_the_full_reading_does(payloads: list[bytes]) -> None:
    decoder = gemini_provider.StreamDecoder()
    for payload in payloads:
        try:
            expected = gemini_provider.delta(gemini_provider.chunk(payload))
        except StreamBroken:
            break
        assert decoder.feed(payload) == expected


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize(("provider", "payloads"), _provider_streams())
def test_the_chat_encoders_text_chunk_shortcut_sends_the_bytes_its_chunks_would(provider: str, payloads: list[bytes],
                                                                               include_usage: bool) -> None:
    """feed() frames a plain text chunk without building the chunk document; a stream through it must be
    byte for byte the stream that chunks() describes, text chunks, first chunks and finishes alike."""
    decoder = PROVIDERS[provider].StreamDecoder()
    fast = openai_chat.StreamEncoder("m", include_usage, response_id="chatcmpl-1", created=1)
    slow = openai_chat.StreamEncoder("m", include_usage, response_id="chatcmpl-1", created=1)
    sent = 0
    for payload in payloads:
        try:
            delta = decoder.feed(payload)
        except StreamBroken:
            break
        if delta is None:
            continue
        events = fast.feed(delta)
        assert events == [sse_event(orjson.dumps(c)) for c in slow.chunks(delta)]
        sent += len(events)
    assert sent > 0
    assert fast.finish() == [sse_event(orjson.dumps(c)) for c in slow.final_chunks()] + [DONE]


@pytest.mark.parametrize(("provider", "payloads"), _provider_streams())
def test_the_responses_encoders_text_delta_shortcut_sends_the_bytes_its_events_would(provider: str,
                                                                                   payloads: list[bytes]) -> None:
    decoder = PROVIDERS[provider].StreamDecoder()
    fast = openai_responses_stream.StreamEncoder("m", response_id="resp_1", created=1)
    slow = openai_responses_stream.StreamEncoder("m", response_id="resp_1", created=1)

    def frame(event: dict[str, Any]) -> bytes:
        return sse_event(orjson.dumps(event), event=event["type"].encode())

    for payload in payloads:
        try:
            delta = decoder.feed(payload)
        except StreamBroken:
            break
        if delta is not None:
            assert fast.feed(delta) == [frame(e) for e in slow.events(delta)]
    assert fast.finish() == [frame(e) for e in slow.final_events()]


class _Dep:
    model = "upstream-model"
    api_base = "http://127.0.0.1:9"
    api_key = "sk-test-not-a-real-key"
    id = "g/0"
    defaults = ()  # no per-deployment default params
    vendor = api_version = None


BODIES = {"openai": {"messages": [{"role": "user", "content": "hi"}]},
          "gemini": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
          "openai_responses": {"input": "hi"},
          "anthropic": {"model": "group", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}}


@pytest.mark.parametrize("surface", sorted(CLIENTS))
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_every_client_api_reaches_every_provider(surface: str, provider: str) -> None:
    raw = orjson.dumps(BODIES[surface])
    ex = make_exchange(surface, provider, body=BODIES[surface], raw=raw, model="group", drop_params=False)
    url, headers, body = ex.request(_Dep(), False)  # type: ignore[arg-type]
    assert ex.provider == provider
    assert _Dep.api_key not in url and _Dep.api_key.encode() not in body
    assert any(_Dep.api_key in value for value in headers.values())  # the key travels in a header only
    if surface == provider or (surface, provider) == ("gemini", "vertex_ai"):  # Vertex speaks Gemini's format
        assert body == raw or orjson.loads(body) == {**BODIES[surface], "model": "upstream-model"}
    else:
        assert body != raw and b"hi" in body


def test_a_gemini_body_passes_to_a_gemini_key_byte_for_byte() -> None:
    raw = b'{"contents": [{"parts": [{"text": "hi"}]}],   "x": 1}'
    ex = make_exchange("gemini", "gemini", body=orjson.loads(raw), raw=raw, model="g", drop_params=False)
    assert ex.request(_Dep(), False)[2] is raw  # type: ignore[arg-type]
    answer = b'{"candidates": [],  "usageMetadata": {"promptTokenCount": 3, "cachedContentTokenCount": 2}}'
    body, usage = ex.response(answer)
    assert body is answer and usage is not None and (usage.prompt, usage.cached) == (3, 2)


def test_cached_prompt_tokens_reach_the_ledger_usage() -> None:
    ex = make_exchange("openai", "gemini", body=BODIES["openai"], raw=b"", model="g", drop_params=False)
    answer = orjson.dumps({"candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
                           "usageMetadata": {"promptTokenCount": 1200, "cachedContentTokenCount": 1024,
                                             "candidatesTokenCount": 1, "totalTokenCount": 1201}})
    body, usage = ex.response(answer)
    assert usage is not None and (usage.prompt, usage.cached, usage.total) == (1200, 1024, 1201)
    assert orjson.loads(body)["usage"]["prompt_tokens_details"] == {"cached_tokens": 1024}


def test_a_prompt_blocked_for_safety_is_a_content_filter_answer() -> None:
    ex = make_exchange("openai", "gemini", body=BODIES["openai"], raw=b"", model="g", drop_params=False)
    body, _ = ex.response(b'{"promptFeedback": {"blockReason": "SAFETY"}}')
    assert orjson.loads(body)["choices"][0]["finish_reason"] == "content_filter"
    stream = ex.stream()
    events = _events(stream.feed(b'{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}') + stream.finish())
    assert events[0]["choices"][0]["finish_reason"] == "content_filter" and events[-1] == b"[DONE]"
