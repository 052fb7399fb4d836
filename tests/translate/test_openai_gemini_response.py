"""response_from_gemini / usage_from_gemini: golden fixtures, checked against the openai SDK's types too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openai.types.chat import ChatCompletion

from .compose import response_from_gemini, usage_from_gemini

GOLDEN = sorted((Path(__file__).parent / "fixtures" / "response_from_gemini").glob("*.json"))


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden(path: Path) -> None:
    case = json.loads(path.read_text())
    out = response_from_gemini(case["input"], **case["options"])
    assert out == case["expected"], case["description"]
    parsed = ChatCompletion.model_validate(out)  # finish_reason, roles, tool call shapes are Literal-checked
    assert len(parsed.choices) == len(case["expected"]["choices"])


def test_golden_fixtures_exist() -> None:
    assert len(GOLDEN) >= 9


def test_sdk_reads_images_reasoning_and_tool_calls() -> None:
    case = json.loads((GOLDEN[0].parent / "image_output.json").read_text())
    message = ChatCompletion.model_validate(response_from_gemini(case["input"], **case["options"])).choices[0].message
    assert message.content == "Here is your cat:"
    images = message.model_extra["images"]  # type: ignore[index]
    assert [i["image_url"]["url"][:22] for i in images] == ["data:image/png;base64,", "data:image/jpeg;base64"]


@pytest.mark.parametrize("metadata,expected", [
    (None, None),
    ("garbage", None),
    ({}, {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
          "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}),
    ({"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 7},
     {"prompt_tokens": 10, "completion_tokens": 12, "total_tokens": 22,
      "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 7}}),
    ({"promptTokenCount": 10, "candidatesTokenCount": 5, "toolUsePromptTokenCount": 4, "totalTokenCount": 19},
     {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 19,
      "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}),
    ({"promptTokenCount": "10", "candidatesTokenCount": True},
     {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
      "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}),
])
def test_usage(metadata: object, expected: object) -> None:
    assert usage_from_gemini(metadata) == expected  # type: ignore[arg-type]


def test_response_is_not_mutated_and_ids_are_stable() -> None:
    resp = {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]}, "finishReason": "STOP"}]}
    snapshot = json.dumps(resp)
    a = response_from_gemini(resp, model="m", response_id="chatcmpl-A", created=1)
    b = response_from_gemini(resp, model="m", response_id="chatcmpl-A", created=1)
    c = response_from_gemini(resp, model="m", response_id="chatcmpl-B", created=1)
    assert json.dumps(resp) == snapshot
    ids = [r["choices"][0]["message"]["tool_calls"][0]["id"] for r in (a, b, c)]
    assert ids[0] == ids[1] != ids[2]
