"""OpenAI embeddings requests -> Gemini batchEmbedContents and back: inputs, options, order, base64."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest

from keymux.errors import BadRequest
from keymux.translate import embeddings as E


def test_a_request_becomes_one_batch_entry_per_input_in_order() -> None:
    doc = orjson.loads(E.gemini_request({"input": ["a", "b"], "dimensions": 3}, "gemini-embedding-001"))
    assert doc == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 3},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 3}]}


def test_the_answer_keeps_order_and_base64_is_little_endian_float32() -> None:
    raw = orjson.dumps({"embeddings": [{"values": [0.5, -1.0]}, {"values": [0.25, 2.0]}]})
    body, usage = E.from_gemini(raw, {"input": ["x", "y"], "encoding_format": "base64"}, "embed", 2)
    doc = orjson.loads(body)
    assert [d["index"] for d in doc["data"]] == [0, 1] and doc["model"] == "embed"
    assert struct.unpack("<2f", base64.b64decode(doc["data"][1]["embedding"])) == (0.25, 2.0)
    assert (usage.prompt, usage.total) == (2, 2) and doc["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


def test_an_answer_with_a_different_count_is_unreadable() -> None:
    raw = orjson.dumps({"embeddings": [{"values": [0.5]}]})
    with pytest.raises(ValueError):
        E.from_gemini(raw, {"input": ["x", "y"]}, "embed", 2)


def test_slices_merge_with_indexes_renumbered() -> None:
    parts = [{"data": [{"object": "embedding", "index": 0, "embedding": [1.0]}], "model": "m",
              "usage": {"prompt_tokens": 1, "total_tokens": 1}},
             {"data": [{"object": "embedding", "index": 0, "embedding": [2.0]}], "model": "m",
              "usage": {"prompt_tokens": 3, "total_tokens": 3}}]
    doc = orjson.loads(E.merge(parts, "embed"))
    assert [(d["index"], d["embedding"]) for d in doc["data"]] == [(0, [1.0]), (1, [2.0])]
    assert doc["usage"] == {"prompt_tokens": 4, "total_tokens": 4}


@pytest.mark.parametrize(("body", "param"), [
    ({"input": ""}, "input"), ({"input": []}, "input"), ({"input": [1, "a"]}, "input"), ({"input": ["a", ""]}, "input"),
    ({"input": "a", "dimensions": 0}, "dimensions"), ({"input": "a", "encoding_format": "int8"}, "encoding_format"),
])
def test_bad_requests_name_their_field(body: dict[str, object], param: str) -> None:
    with pytest.raises(BadRequest) as err:
        E.inputs(body)
        E.check_options(body)
    assert err.value.param == param


def test_token_arrays_count_exactly_and_text_by_characters() -> None:
    assert E.estimate_tokens([[1, 2, 3], [4]]) == 4
    assert E.estimate_tokens(["abcde", "x"]) == 3
