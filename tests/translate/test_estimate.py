"""Prompt-size estimates: the documented rule, media at a fixed price, no serialisation."""

from __future__ import annotations

import base64
import json

import orjson
import pytest

from keymux.translate.estimate import estimate_gemini_prompt_tokens, estimate_prompt_tokens

from .compose import request_to_gemini


def test_text_is_chars_over_four_rounded_up_plus_overheads() -> None:
    # ceil(5 / 4) = 2, one message = 4, priming = 3
    assert estimate_prompt_tokens({"messages": [{"role": "user", "content": "abcde"}]}) == 9
    assert estimate_prompt_tokens({"messages": [{"role": "user", "content": "abcd"}]}) == 8
    two = {"messages": [{"role": "system", "content": "ab"}, {"role": "user", "content": [{"type": "text", "text": "cd"}]}]}
    assert estimate_prompt_tokens(two) == 1 + 8 + 3


def test_an_image_costs_258_whatever_its_size() -> None:
    small = "data:image/png;base64,QUJD"
    big = "data:image/png;base64," + "A" * 4_000_000
    for url in (small, big, "https://example.com/x.png"):
        body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]}
        assert estimate_prompt_tokens(body) == 258 + 4 + 3
    gemini = {"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "A" * 4_000_000}}]}]}
    assert estimate_gemini_prompt_tokens(gemini) == 258 + 4 + 3


def test_audio_is_priced_by_size() -> None:
    audio = base64.b64encode(b"\0" * 160_000).decode()  # ~10 s at 16 kB/s -> 320 tokens
    body = {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": audio, "format": "mp3"}}]}]}
    assert estimate_prompt_tokens(body) == 320 + 4 + 3
    gemini = {"contents": [{"parts": [{"inline_data": {"mime_type": "audio/mp3", "data": audio}}]}]}
    assert estimate_gemini_prompt_tokens(gemini) == 320 + 4 + 3


def test_tools_tool_calls_and_reasoning_count() -> None:
    base = {"messages": [{"role": "user", "content": "x"}]}
    tools = [{"type": "function", "function": {"name": "lookup", "description": "d" * 400, "parameters": {"type": "object"}}}]
    assert estimate_prompt_tokens({**base, "tools": tools}) >= estimate_prompt_tokens(base) + 100
    call = {"role": "assistant", "reasoning_content": "r" * 40,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"q\": \"" + "z" * 80 + "\"}"}}]}
    assert estimate_prompt_tokens({"messages": [base["messages"][0], call]}) >= estimate_prompt_tokens(base) + 4 + 30


def test_openai_and_gemini_estimates_agree_on_a_translated_body() -> None:
    body = {"messages": [
        {"role": "system", "content": "You are helpful." * 10},
        {"role": "user", "content": [{"type": "text", "text": "Describe this picture in detail."},
                                     {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}}]},
        {"role": "assistant", "content": "It is a cat." * 5},
    ]}
    assert estimate_prompt_tokens(body) == estimate_gemini_prompt_tokens(request_to_gemini(body, drop_params=False))


def test_odd_bodies_do_not_crash() -> None:
    assert estimate_prompt_tokens({}) == 3
    assert estimate_prompt_tokens({"messages": "nope"}) == 3
    assert estimate_prompt_tokens({"messages": [None, {"role": "user", "content": None}, {"content": [1, None]}]}) == 3 + 8
    assert estimate_gemini_prompt_tokens({"contents": [{"parts": None}, "x"], "systemInstruction": {"parts": [{"text": "abcd"}]}}) == 3 + 8 + 1


def test_no_serialisation(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("the estimate must not serialise the body")

    monkeypatch.setattr(orjson, "dumps", boom)
    monkeypatch.setattr(json, "dumps", boom)
    body = {"messages": [{"role": "user", "content": "hello"}], "tools": [{"type": "function", "function": {"name": "f"}}],
            "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}}
    assert estimate_prompt_tokens(body) > 0
    assert estimate_gemini_prompt_tokens({"contents": [{"parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]}]}) > 0


def test_a_responses_body_counts_its_text_and_images_but_not_ids_or_encrypted_reasoning() -> None:
    from keymux.translate.clients.openai_responses import estimate_tokens

    text = {"instructions": "abcd", "input": [{"role": "user", "content": [{"type": "input_text", "text": "efgh"}]}]}
    assert estimate_tokens(text) == -(-len("abcd" "user" "efgh") // 4) + 4 + 3
    assert estimate_tokens({"input": "abcdefgh"}) == 2 + 4 + 3
    blob = "x" * 40_000
    carried = {"input": [
        {"type": "reasoning", "id": "rs_" + blob, "encrypted_content": blob, "summary": []},
        {"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64," + blob}]},
    ]}
    assert estimate_tokens(carried) == 1 + 258 + 2 * 4 + 3  # "user" (1), one image, two items
