"""Golden fixtures for every Anthropic direction (fixtures/anthropic/): Anthropic client -> Gemini / OpenAI
upstream requests, Gemini answers and streams -> Anthropic messages and named events, OpenAI client ->
Anthropic upstream, Anthropic answers and streams -> OpenAI; streams also fed split at every byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent
from pydantic import TypeAdapter

from keymux.errors import BadRequest
from keymux.translate.clients import anthropic as client
from keymux.translate.providers import gemini as gemini_provider
from keymux.translate.sse import SSEDecoder

from . import anthropic_compose as C

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"


def cases(name: str) -> list[tuple[str, dict[str, Any]]]:
    return sorted(json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8")).items())


@pytest.mark.parametrize("provider", ["gemini", "openai"])
def test_requests_to_providers(provider: str) -> None:
    for _, case in cases(f"request_to_{provider}"):
        assert C.request_to(provider, case["anthropic"]) == case["expected"]


@pytest.mark.parametrize(("name", "case"), cases("response_from_gemini"))
def test_gemini_responses(name: str, case: dict[str, Any]) -> None:
    assert C.response_from_gemini(case["gemini"]) == case["expected"]


@pytest.mark.parametrize(("name", "case"), cases("stream_from_gemini"))
def test_gemini_streams_as_named_events_split_at_every_byte(name: str, case: dict[str, Any]) -> None:
    payloads = [orjson.dumps(c) for c in case["gemini"]]
    assert C.stream_from_gemini(payloads) == case["expected"]
    sse = b"".join(b"data: " + p + b"\r\n\r\n" for p in payloads)
    for size in (1, 2, 7):
        decoder = SSEDecoder()
        fed = [q for i in range(0, len(sse), size) for q in decoder.feed(sse[i:i + size])] + decoder.flush()
        assert C.stream_from_gemini(fed) == case["expected"]


@pytest.mark.parametrize(("name", "case"), cases("stream_from_gemini"))
def test_the_sdk_accumulates_our_events_into_the_message_we_answer_without_streaming(
        name: str, case: dict[str, Any]) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
    snapshot = None
    bufs: dict[int, bytes] = {}
    for _, data in case["expected"]:
        if data["type"] != "ping":
            snapshot = accumulate_event(event=adapter.validate_python(data), current_snapshot=snapshot,
                                        json_bufs=bufs)
    assert snapshot is not None
    whole = dict(case["gemini"][-1])
    parts = [p for c in case["gemini"] for p in c["candidates"][0]["content"]["parts"]]
    whole["candidates"] = [{**whole["candidates"][0], "content": {"role": "model", "parts": parts}}]
    expected = C.response_from_gemini(whole)
    got = snapshot.model_dump()
    assert [b["type"] for b in got["content"]] == [b["type"] for b in expected["content"]]
    assert got["stop_reason"] == expected["stop_reason"]
    for ours, theirs in zip(got["content"], expected["content"]):
        assert {k: ours[k] for k in theirs if k in ours and k != "signature"} == \
            {k: v for k, v in theirs.items() if k != "signature"}


def test_requests_from_openai_to_anthropic() -> None:
    for _, case in cases("request_to_anthropic"):
        assert C.request_to_anthropic(case["openai"]) == case["expected"]


def test_anthropic_responses_to_openai() -> None:
    for _, case in cases("response_to_openai"):
        assert C.response_to_openai(case["anthropic"]) == case["expected"]


@pytest.mark.parametrize("split", [None, 1, 3, 64])
def test_anthropic_stream_to_openai_split_anywhere(split: int | None) -> None:
    for _, case in cases("stream_to_openai"):
        assert C.stream_to_openai(case["sse"].encode(), split) == case["expected"]


@pytest.mark.parametrize(("body", "where"), [
    ({"messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ({"max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/tiff", "data": "AA"}}]}]}, "messages.0.content.0.source.media_type"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]}]},
     "messages.0.content.0.tool_use_id"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
      "thinking": {"type": "enabled", "budget_tokens": 10}}, "thinking.budget_tokens"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tools": [{"name": "f"}],
      "tool_choice": {"type": "any"}}, "tools.0.input_schema"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "mcp_servers": [{"url": "x"}]}, "mcp_servers"),
])
def test_bad_requests_name_the_field(body: dict[str, Any], where: str) -> None:
    with pytest.raises(BadRequest) as err:
        client.decode_request(body, drop_params=False, target=gemini_provider)
    assert where in err.value.message


def test_cached_message_replays_as_the_stream_and_back() -> None:
    case = dict(cases("stream_from_gemini"))["thinking_then_tool"]
    frames = [b"event: " + n.encode() + b"\ndata: " + orjson.dumps(d) + b"\n\n" for n, d in case["expected"]]
    body = client.body_from_stream(frames)
    assert body is not None
    message = orjson.loads(body)
    assert [b["type"] for b in message["content"]] == ["thinking", "tool_use"]
    assert message["content"][0]["signature"] == "c2lnLXRoaW5r" and message["content"][1]["input"] == {"city": "Rome"}
    assert client.body_from_stream(client.stream_from_body(body)) == body
    assert client.body_from_stream(frames[:-1]) is None  # no message_stop: not a whole answer


def test_error_event_after_the_first_byte() -> None:
    enc = client.StreamEncoder("claude", message_id="msg_1")
    frame = enc.error(529, "overloaded")
    assert frame.startswith(b"event: error\ndata: ")
    assert orjson.loads(frame.split(b"data: ", 1)[1]) == {"type": "error", "error": {
        "type": "overloaded_error", "message": "overloaded"}}
