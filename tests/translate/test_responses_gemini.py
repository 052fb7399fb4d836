"""OpenAI Responses <-> Gemini through the pivot: golden requests, answers, streams (also fed as SSE bytes split
at every byte), request errors and upstream error bodies; every produced event and object is read by the openai
SDK's own types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.genai import types
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from keymux.errors import BadRequest
from keymux.translate.clients import openai_responses
from keymux.translate.providers import gemini as gemini_provider
from keymux.translate.sse import SSEDecoder, decode_all

from .compose_responses import StreamFromGemini, request_to_gemini, response_from_gemini

FIXTURES = Path(__file__).parent / "fixtures"
REQUESTS = sorted((FIXTURES / "responses_request_to_gemini").glob("*.json"))
ANSWERS = sorted((FIXTURES / "responses_from_gemini").glob("*.json"))
STREAMS = sorted((FIXTURES / "responses_stream_from_gemini").glob("*.json"))
ERRORS = json.loads((FIXTURES / "responses_request_errors.json").read_text())
ERROR_BODIES = json.loads((FIXTURES / "responses_error_bodies.json").read_text())
EVENT = TypeAdapter(ResponseStreamEvent)


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_request_golden(path: Path) -> None:
    case = load(path)
    body = request_to_gemini(case["input"], drop_params=case["drop_params"])
    assert body == case["expected"], case["description"]
    for content in body["contents"]:
        types.Content.model_validate(content)
    if "generationConfig" in body:
        types.GenerationConfig.model_validate(body["generationConfig"])
    for tool in body.get("tools", []):
        types.Tool.model_validate(tool)


@pytest.mark.parametrize("case", ERRORS, ids=[c["name"] for c in ERRORS])
def test_request_errors_name_the_field(case: dict[str, Any]) -> None:
    with pytest.raises(BadRequest) as err:
        request_to_gemini(case["input"], drop_params=case.get("drop_params", False))
    assert err.value.status == 400
    assert err.value.param == case["error"]["param"]
    for piece in case["error"]["message_contains"]:
        assert piece in err.value.message


def test_drop_params_drops_built_in_tools_and_unknown_fields() -> None:
    body = request_to_gemini({"model": "m", "input": "x", "tools": [{"type": "web_search"}], "logit_bias": {}},
                             drop_params=True)
    assert "tools" not in body and body["contents"] == [{"role": "user", "parts": [{"text": "x"}]}]


@pytest.mark.parametrize("path", ANSWERS, ids=[p.stem for p in ANSWERS])
def test_answer_golden(path: Path) -> None:
    case = load(path)
    doc = response_from_gemini(case["input"], **case["options"])
    assert doc == case["expected"], case["description"]
    Response.model_validate(doc)


def test_a_signature_goes_out_and_comes_back_unchanged() -> None:
    case = load(FIXTURES / "responses_from_gemini" / "thought_then_signed_calls.json")
    out = case["expected"]["output"]
    history = [{"role": "user", "content": "weather?"}, *out,
               {"type": "function_call_output", "call_id": out[1]["call_id"], "output": "21"}]
    model_turn = request_to_gemini({"input": history})["contents"][1]["parts"]
    signed = {p["functionCall"]["name"]: p.get("thoughtSignature") for p in model_turn if "functionCall" in p}
    assert signed == {"get_weather": "Ym98iZajsL3K1+Tx/gsYJTI/TFk=", "now": None}
    assert model_turn[0] == {"text": "Let me check.", "thought": True, "thoughtSignature": "c2lnMQ=="}


def _stream(case: dict[str, Any], payloads: list[bytes]) -> list[dict[str, Any]]:
    stream = StreamFromGemini(**case["options"])
    out = [e for payload in payloads for e in stream.feed(payload)]
    if "error" in case:
        return out + stream.error(case["error"]["status"], case["error"]["message"])
    return out + stream.finish()


@pytest.mark.parametrize("path", STREAMS, ids=[p.stem for p in STREAMS])
def test_stream_golden(path: Path) -> None:
    case = load(path)
    events = _stream(case, [orjson.dumps(c) for c in case["input"]])
    assert events == case["expected"], case["description"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        EVENT.validate_python(event)


@pytest.mark.parametrize("path", STREAMS, ids=[p.stem for p in STREAMS])
def test_stream_split_at_every_byte(path: Path) -> None:
    """Gemini's SSE bytes cut at each position give the same events (CRLF framing, as Gemini sends it)."""
    case = load(path)
    wire = b"".join(b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in case["input"])
    for cut in range(1, len(wire)):
        decoder = SSEDecoder()
        payloads = decoder.feed(wire[:cut]) + decoder.feed(wire[cut:]) + decoder.flush()
        assert _stream(case, payloads) == case["expected"], cut


def test_stream_bytes_are_named_events_the_sdk_reads() -> None:
    case = load(FIXTURES / "responses_stream_from_gemini" / "text_split.json")
    encoder = openai_responses.StreamEncoder("g", response_id="resp_abc", created=12)
    decoder = gemini_provider.StreamDecoder()
    frames: list[bytes] = []
    for chunk in case["input"]:
        delta = decoder.feed(orjson.dumps(chunk))
        frames += encoder.feed(delta) if delta is not None else []
    frames += encoder.finish()
    for frame in frames:
        name, data = frame.split(b"\n")[:2]
        assert name.startswith(b"event: ") and data.startswith(b"data: ") and frame.endswith(b"\n\n")
        assert json.loads(data[6:])["type"] == name[7:].decode()
    payloads = decode_all(frames)
    assert [orjson.loads(p) for p in payloads] == _stream(case, [orjson.dumps(c) for c in case["input"]])


def test_cached_body_and_stream_describe_the_same_answer() -> None:
    case = load(FIXTURES / "responses_stream_from_gemini" / "thoughts_text_call.json")
    frames = [b"".join(openai_responses.StreamEncoder("g", response_id="resp_abc", created=12).finish())]
    assert openai_responses.body_from_stream(frames) is not None  # an empty answer still completes
    stream = StreamFromGemini(**case["options"])
    events = [e for c in case["input"] for e in stream.feed(orjson.dumps(c))] + stream.finish()
    wire = [b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events]
    body = openai_responses.body_from_stream(wire)
    assert body is not None and orjson.loads(body) == events[-1]["response"]
    replayed = [orjson.loads(p) for p in decode_all(openai_responses.stream_from_body(body))]
    assert replayed[-1]["response"]["output"] == events[-1]["response"]["output"]
    # The same events, each item's text in one delta rather than in the upstream's pieces.
    assert _collapsed([e["type"] for e in replayed]) == _collapsed([e["type"] for e in events])


def _collapsed(kinds: list[str]) -> list[str]:
    return [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]]


@pytest.mark.parametrize("case", ERROR_BODIES, ids=[c["name"] for c in ERROR_BODIES])
def test_upstream_error_bodies_in_openai_shape(case: dict[str, Any]) -> None:
    message, code = gemini_provider.error_details(orjson.dumps(case["upstream"]))
    body = openai_responses.encode_error(case["status"], message or "", code)
    assert orjson.loads(body) == case["expected"]


def test_fixtures_exist() -> None:
    assert len(REQUESTS) >= 3 and len(ANSWERS) >= 4 and len(STREAMS) >= 5 and len(ERRORS) >= 15
