"""StreamToOpenAI: golden chunk sequences, also fed as SSE bytes split at every byte boundary,
and accumulated by the openai SDK's own stream state."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from keymux.translate.sse import SSEDecoder, sse_event

from .compose import StreamToOpenAI

GOLDEN = sorted((Path(__file__).parent / "fixtures" / "stream_to_openai").glob("*.json"))
IDS = [p.stem for p in GOLDEN]


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def translate(case: dict[str, Any], chunks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], StreamToOpenAI]:
    stream = StreamToOpenAI(**case["options"])
    out: list[dict[str, Any]] = []
    for chunk in chunks:
        out.extend(stream.feed(chunk))
    out.extend(stream.finish())
    return out, stream


def sse_bytes(chunks: list[dict[str, Any]], separator: bytes = b"\n\n") -> bytes:
    # Gemini's framing: one data line per event; the last event may lack its blank line.
    return b"".join(b"data: " + orjson.dumps(c) + separator for c in chunks)


def decode(pieces: list[bytes]) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    events = [e for piece in pieces for e in decoder.feed(piece)] + decoder.flush()
    return [orjson.loads(e) for e in events]


@pytest.mark.parametrize("path", GOLDEN, ids=IDS)
def test_golden(path: Path) -> None:
    case = load(path)
    out, stream = translate(case, case["input"])
    assert out == case["expected"], case["description"]
    assert stream.usage == case["expected_usage"]
    for chunk in out:
        ChatCompletionChunk.model_validate(chunk)


def test_golden_fixtures_exist() -> None:
    assert len(GOLDEN) >= 6


@pytest.mark.parametrize("path", GOLDEN, ids=IDS)
def test_openai_sdk_accumulates_the_stream(path: Path) -> None:
    case = load(path)
    out, _ = translate(case, case["input"])
    state = ChatCompletionStreamState()
    for chunk in out:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    choice = state.current_completion_snapshot.choices[0]  # get_final_completion raises on length/content_filter
    want = case["final_message"]
    assert choice.message.content == want["content"]
    assert choice.finish_reason == want["finish_reason"]
    names = [c.function.name for c in choice.message.tool_calls or []]  # type: ignore[union-attr]
    assert names == want.get("tool_call_names", [])


@pytest.mark.parametrize("path", GOLDEN, ids=IDS)
@pytest.mark.parametrize("separator", [b"\n\n", b"\r\n\r\n", b"\r\r"], ids=["lf", "crlf", "cr"])
def test_sse_bytes_split_at_every_boundary(path: Path, separator: bytes) -> None:
    case = load(path)
    raw = sse_bytes(case["input"], separator)
    for cut in range(len(raw) + 1):
        chunks = decode([raw[:cut], raw[cut:]])
        assert chunks == case["input"], f"split at byte {cut}"
    out, _ = translate(case, decode([raw]))
    assert out == case["expected"]


@pytest.mark.parametrize("path", GOLDEN, ids=IDS)
def test_sse_bytes_in_random_pieces_without_final_blank_line(path: Path) -> None:
    case = load(path)
    raw = sse_bytes(case["input"]).removesuffix(b"\n\n")  # Gemini closes after the last event
    rng = random.Random(path.stem)
    for _ in range(50):
        cuts = sorted(rng.sample(range(len(raw) + 1), k=min(12, len(raw))))
        pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
        out, _ = translate(case, decode(pieces))
        assert out == case["expected"]


def test_round_trip_through_sse_event_framing() -> None:
    case = load(GOLDEN[0])
    out, _ = translate(case, case["input"])
    framed = b"".join(sse_event(orjson.dumps(c)) for c in out)
    assert decode([framed]) == out
    assert framed.count(b"\n\n") == len(out)


def test_stream_matches_the_non_stream_translation() -> None:
    """Concatenated deltas of a stream say what response_from_gemini says for the merged response."""
    from tests.translate.compose import response_from_gemini

    case = load(next(p for p in GOLDEN if p.stem == "tool_calls"))
    out, _ = translate(case, case["input"])
    merged_parts = [p for c in case["input"] for p in c["candidates"][0]["content"]["parts"]]
    whole = response_from_gemini({"candidates": [{"content": {"parts": merged_parts}, "finishReason": "STOP"}]},
                                 model="g", response_id="chatcmpl-stream1", created=12)
    streamed_calls = [{k: v for k, v in c.items() if k != "index"}
                      for chunk in out for c in chunk["choices"][0]["delta"].get("tool_calls", [])]
    assert streamed_calls == whole["choices"][0]["message"]["tool_calls"]


def test_include_usage_without_any_usage_metadata() -> None:
    stream = StreamToOpenAI(model="g", response_id="r", created=1, include_usage=True)
    out = stream.feed({"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]})
    assert [c["choices"][0]["finish_reason"] for c in out] == ["stop"]
    assert stream.usage is None
    assert stream.finish() == [{"id": "r", "object": "chat.completion.chunk", "created": 1, "model": "g",
                                "choices": [], "usage": None}]


def test_garbage_chunks_yield_nothing() -> None:
    stream = StreamToOpenAI(model="g", response_id="r", created=1, include_usage=False)
    for junk in ([], "x", {"candidates": "nope"}, {"candidates": [None, 3]}, {"usageMetadata": "x"}):
        assert stream.feed(junk) == []  # type: ignore[arg-type]
    assert stream.finish() == []
