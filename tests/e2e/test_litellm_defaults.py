"""Per-deployment default params (litellm_params.max_tokens, ...) are defaults the client overrides:
through the OpenAI passthrough, the translating exchange and the Gemini passthrough alike."""

from __future__ import annotations

import pytest
from google.genai import types

from keymux.emulator import EmuKey

from .conftest import StackFactory

MSG = [{"role": "user", "content": "tell me a long story about keys and quotas and pools"}]


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "gemini/gemini-2.5-flash"])
async def test_max_tokens_default_applies_unless_the_client_sets_its_own(make_stack: StackFactory, model: str) -> None:
    doc = {"model_list": [{"model_name": "m", "litellm_params": {"model": model, "api_key": "dk", "max_tokens": 2,
                                                                  "temperature": 0.1}}]}
    stack = await make_stack(doc, gemini_keys={"dk": EmuKey()}, openai_keys={"dk": EmuKey()})
    client = stack.openai()
    capped = await client.chat.completions.create(model="m", messages=MSG)
    assert capped.choices[0].finish_reason == "length"
    assert capped.usage is not None and capped.usage.completion_tokens <= 2
    free = await client.chat.completions.create(model="m", messages=MSG, max_tokens=500)
    assert free.choices[0].finish_reason == "stop"


async def test_gemini_passthrough_gets_the_default_and_the_client_overrides(make_stack: StackFactory) -> None:
    doc = {"model_list": [{"model_name": "flash", "litellm_params": {"model": "gemini/gemini-2.5-flash",
                                                                      "api_key": "dk", "max_tokens": 2}}]}
    stack = await make_stack(doc, gemini_keys={"dk": EmuKey()})
    aio = stack.genai().aio
    capped = await aio.models.generate_content(model="flash", contents=MSG[0]["content"])
    assert capped.candidates and capped.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    free = await aio.models.generate_content(model="flash", contents=MSG[0]["content"],
                                             config=types.GenerateContentConfig(max_output_tokens=500))
    assert free.candidates and free.candidates[0].finish_reason == types.FinishReason.STOP


async def test_a_deployment_without_defaults_is_unchanged(make_stack: StackFactory) -> None:
    doc = {"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "dk"}}]}
    stack = await make_stack(doc, openai_keys={"dk": EmuKey()})
    answer = await stack.openai().chat.completions.create(model="m", messages=MSG)
    assert answer.choices[0].finish_reason == "stop"
