"""Image output and service tiers reach the ledger, /admin/requests and /metrics as the provider prices
them: OpenAI clients over paid Gemini keys (openai SDK) and Gemini clients passed through (google-genai)."""

from __future__ import annotations

import base64

import pytest
from google import genai
from google.genai import types

from keymux.emulator import EmuKey
from keymux.emulator.gemini_answer import MEDIA_TOKENS
from keymux.emulator.gemini_wire import IMAGE_TOKENS

from ..conftest import MASTER, OpsFactory


def paid(name: str, model: str) -> list[dict]:
    return [{"model_name": name, "litellm_params": {"model": f"gemini/{model}", "api_key": "k1"},
             "model_info": {"tier": "paid"}}]


def doc(tmp_path, model_list: list[dict]) -> dict:  # type: ignore[no-untyped-def]
    return {"model_list": model_list, "general_settings": {"database_url": f"sqlite:///{tmp_path / 'cost.db'}"}}


async def rows(stack) -> list[dict]:  # type: ignore[no-untyped-def]
    await stack.gateway.ledger.flush()
    status, page = await stack.admin("GET", "/admin/requests?limit=10")
    assert status == 200, page
    return page["data"]


async def test_generated_image_is_priced_at_the_image_rate_and_shown_apart(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack(doc(tmp_path, paid("img", "gemini-3-pro-image-preview")), {"k1": EmuKey()})
    answer = await stack.ask("img", modalities=["text", "image"])
    assert answer.choices[0].message.model_extra["images"]
    text_in, text_out = answer.usage.prompt_tokens, answer.usage.completion_tokens - IMAGE_TOKENS
    row = (await rows(stack))[0]
    image_usd = IMAGE_TOKENS * 120e-6  # Gemini 3 Pro Image: $120 per million image tokens
    assert row["modal_cost"] == {"output_image": pytest.approx(image_usd)}
    assert row["cost"] == pytest.approx(text_in * 2e-6 + text_out * 12e-6 + image_usd)
    status, text = await stack.admin("GET", "/metrics", raw=True)
    metric = [ln for ln in text.decode().splitlines() if ln.startswith("keymux_modality_value_usd_total{")]
    assert len(metric) == 1 and 'modality="output_image"' in metric[0]
    assert float(metric[0].rsplit(" ", 1)[1]) == pytest.approx(image_usd)


async def test_openai_service_tier_reaches_gemini_and_flex_costs_half(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack(doc(tmp_path, paid("fast", "gemini-3.5-flash")), {"k1": EmuKey()})
    for tier in (None, "flex", "priority"):
        await stack.ask("fast", **({"service_tier": tier} if tier else {}))
        stack.clock.advance(1)  # rows come back newest first
    # the emulator says back the tier it was sent (usageMetadata.serviceTier): a tier lost on the way is priced standard
    priority, flex, standard = await rows(stack)  # newest first
    assert standard["cost"] == pytest.approx(standard["prompt_tokens"] * 1.5e-6 + standard["completion_tokens"] * 9e-6)
    assert flex["cost"] == pytest.approx(standard["cost"] / 2)
    assert priority["cost"] == pytest.approx(standard["cost"] * 2)
    assert standard["modal_cost"] is None  # text only: nothing priced apart


async def test_an_unknown_service_tier_is_a_400_naming_the_field(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from openai import BadRequestError

    stack = await ops_stack(doc(tmp_path, paid("fast", "gemini-3.5-flash")), {"k1": EmuKey()})
    with pytest.raises(BadRequestError) as err:
        await stack.ask("fast", service_tier="turbo")
    assert "service_tier" in err.value.message and stack.gemini.calls == []


async def test_audio_input_is_priced_at_the_audio_rate(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack(doc(tmp_path, paid("ears", "gemini-2.5-flash")), {"k1": EmuKey()})
    audio = base64.b64encode(b"RIFF\x24\x00\x00\x00WAVEfmt ").decode()
    answer = await stack.openai().chat.completions.create(model="ears", messages=[{"role": "user", "content": [
        {"type": "text", "text": "transcribe"}, {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}}]}])
    row = (await rows(stack))[0]
    audio_tokens = MEDIA_TOKENS  # what the emulator, like Google, lists as AUDIO in promptTokensDetails
    text_in = answer.usage.prompt_tokens - audio_tokens
    assert row["modal_cost"] == {"input_audio": pytest.approx(audio_tokens * 1.00e-6)}
    assert row["cost"] == pytest.approx(text_in * 0.30e-6 + audio_tokens * 1.00e-6
                                        + answer.usage.completion_tokens * 2.50e-6)


async def test_gemini_sdk_flex_stream_passes_through_and_is_priced_as_flex(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack(doc(tmp_path, paid("fast", "gemini-3.5-flash")), {"k1": EmuKey()})
    client = genai.Client(api_key=MASTER, http_options=types.HttpOptions(base_url=stack.base, api_version="v1beta"))
    for tier in (None, "flex"):
        config = types.GenerateContentConfig(service_tier=tier) if tier else None
        text = "".join([c.text or "" async for c in await client.aio.models.generate_content_stream(
            model="fast", contents="hello there", config=config)])
        assert text.startswith("Echo:")
        stack.clock.advance(1)
    flex, standard = await rows(stack)
    assert standard["cost"] > 0 and flex["cost"] == pytest.approx(standard["cost"] / 2)
