"""request_to_gemini: golden fixtures, error cases, and the thought-signature round trip."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from google.genai import types

from keymux.errors import BadRequest

from .compose import request_to_gemini, response_from_gemini

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = sorted((FIXTURES / "request_to_gemini").glob("*.json"))
ERRORS = json.loads((FIXTURES / "request_to_gemini_errors.json").read_text())


def assert_valid_gemini_request(body: dict[str, Any]) -> None:
    """The official SDK's types (extra fields forbidden) accept every piece of the body."""
    for content in body["contents"]:
        types.Content.model_validate(content)
    if "systemInstruction" in body:
        types.Content.model_validate(body["systemInstruction"])
    for tool in body.get("tools", []):
        types.Tool.model_validate(tool)
    if "toolConfig" in body:
        types.ToolConfig.model_validate(body["toolConfig"])
    if "generationConfig" in body:
        types.GenerationConfig.model_validate(body["generationConfig"])
    assert set(body) <= {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig"}


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden(path: Path) -> None:
    case = json.loads(path.read_text())
    original = json.dumps(case["input"], sort_keys=True)
    out = request_to_gemini(case["input"], drop_params=case["drop_params"])
    assert out == case["expected"], case["description"]
    assert json.dumps(case["input"], sort_keys=True) == original, "the input body was mutated"
    assert_valid_gemini_request(out)


def test_golden_fixtures_exist() -> None:
    assert len(GOLDEN) >= 15


@pytest.mark.parametrize("case", ERRORS, ids=[c["name"] for c in ERRORS])
def test_errors(case: dict[str, Any]) -> None:
    with pytest.raises(BadRequest) as info:
        request_to_gemini(case["input"], drop_params=case["drop_params"])
    err = info.value
    assert err.status == 400
    assert err.param == case["error"]["param"]
    for fragment in case["error"]["message_contains"]:
        assert fragment in err.message


@pytest.mark.parametrize("param", ["logit_bias", "top_logprobs", "audio", "prediction", "web_search_options", "functions"])
def test_unsupported_param_dropped_only_with_drop_params(param: str) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], param: {"something": 1}}
    assert request_to_gemini(body, drop_params=True) == {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    with pytest.raises(BadRequest, match=f"'{param}'.*drop_params: true") as info:
        request_to_gemini(body, drop_params=False)
    assert info.value.param == param


@pytest.mark.parametrize("effort,budget", [("none", 0), ("minimal", 512), ("low", 1024), ("medium", 8192), ("high", 24576)])
def test_reasoning_effort_budgets(effort: str, budget: int) -> None:
    out = request_to_gemini({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": effort}, drop_params=False)
    thinking = out["generationConfig"]["thinkingConfig"]
    assert thinking["thinkingBudget"] == budget
    assert thinking.get("includeThoughts", False) is (effort != "none")


SIGNATURES = [
    "Ym98iZajsL3K1+Tx/gsYJTI/TFk=",  # padding, + and /
    "CiQBcsjafE3x+9o/AbCdEfGh",  # no padding
    "AAECAwQFBgcICQoL+/+/AA==",  # double padding
    base64.b64encode(bytes(range(256)) * 6 + b"!").decode(),  # Gemini signatures are long
]


@pytest.mark.parametrize("signature", SIGNATURES)
def test_thought_signature_survives_a_tool_round_trip(signature: str) -> None:
    # 1. Gemini answers with a signed function call (and an unsigned parallel one).
    gemini_answer = {
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"functionCall": {"name": "lookup", "args": {"q": "keys"}}, "thoughtSignature": signature},
                {"functionCall": {"name": "lookup", "args": {"q": "quota"}}},
            ]},
            "finishReason": "STOP",
        }],
    }
    completion = response_from_gemini(gemini_answer, model="g", response_id="chatcmpl-1", created=1)
    message = completion["choices"][0]["message"]
    assert completion["choices"][0]["finish_reason"] == "tool_calls"
    first, second = message["tool_calls"]
    assert first["id"].startswith("call_") and "__thought__" in first["id"]
    assert "__thought__" not in second["id"]
    assert set(first["id"]) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")

    # 2. The client sends the conversation back through JSON, as any client would.
    history = json.loads(json.dumps([
        {"role": "user", "content": "Find keys and quota"},
        message,
        {"role": "tool", "tool_call_id": first["id"], "content": "{\"hits\": 3}"},
        {"role": "tool", "tool_call_id": second["id"], "content": "none"},
    ]))
    body = request_to_gemini({"messages": history}, drop_params=False)

    # 3. Gemini gets the signature back on the same functionCall part, byte for byte.
    model_turn = body["contents"][1]
    assert model_turn["role"] == "model"
    signed, unsigned = model_turn["parts"]
    assert signed["thoughtSignature"] == signature
    assert signed["functionCall"]["args"] == {"q": "keys"}
    assert "thoughtSignature" not in unsigned
    responses = body["contents"][2]["parts"]
    assert [r["functionResponse"]["name"] for r in responses] == ["lookup", "lookup"]
    assert responses[0]["functionResponse"]["id"] == signed["functionCall"]["id"]
    assert responses[1]["functionResponse"]["id"] == unsigned["functionCall"]["id"]
    assert responses[0]["functionResponse"]["response"] == {"hits": 3}
    assert_valid_gemini_request(body)


def test_gemini_call_id_is_kept_as_the_base() -> None:
    answer = {"candidates": [{"content": {"parts": [
        {"functionCall": {"id": "gem-7", "name": "f", "args": {}}, "thoughtSignature": "c2ln"}]}}]}
    call = response_from_gemini(answer, model="g", response_id="r", created=1)["choices"][0]["message"]["tool_calls"][0]
    assert call["id"] == "gem-7__thought__c2ln"
    body = request_to_gemini({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [call]}]},
                             drop_params=False)
    assert body["contents"][1]["parts"][0] == {"functionCall": {"id": "gem-7", "name": "f", "args": {}}, "thoughtSignature": "c2ln"}


def test_large_inline_image_is_not_copied_or_decoded() -> None:
    data = "A" * 8_000_000
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + data}}]}]}
    part = request_to_gemini(body, drop_params=False)["contents"][0]["parts"][0]
    assert part["inlineData"]["data"] == data
