"""Gemini 3.x prices, `latest` aliases, image and audio tokens priced by modality, service tiers priced."""

from __future__ import annotations

import pytest

from keymux.config.schema import DeploymentConfig
from keymux.exchange import Usage
from keymux.pricing import cost_of, list_price
from keymux.translate.providers.gemini import usage as gemini_usage


def paid(model: str) -> DeploymentConfig:
    return DeploymentConfig(id="d", group="g", provider="gemini", model=model, api_key="x", fingerprint="gem:1",
                            tier="paid")


def test_gemini_3_models_and_latest_aliases_have_prices() -> None:
    assert (list_price("gemini", "gemini-3.5-flash").input, list_price("gemini", "gemini-3.5-flash").output) == (1.50, 9.00)
    assert list_price("gemini", "gemini-3.5-flash-lite-preview").output == 2.50
    assert list_price("gemini", "gemini-3-flash-preview").input == 0.50
    assert list_price("gemini", "gemini-3.1-pro-preview").long_output == 18.00
    assert list_price("gemini", "gemini-flash-latest") == list_price("gemini", "gemini-3-flash-preview")
    assert list_price("gemini", "gemini/gemini-pro-latest") == list_price("gemini", "gemini-3-pro-preview")
    assert list_price("gemini", "gemini-3.6-flash") is None  # no published price found: unpriced, not guessed


def test_image_output_tokens_are_priced_as_images_not_text() -> None:
    # what Gemini 3 Pro Image answers for one 1K image and a line of text
    metadata = {"promptTokenCount": 12, "candidatesTokenCount": 1130, "totalTokenCount": 1142,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}],
                "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 10},
                                            {"modality": "IMAGE", "tokenCount": 1120}]}
    usage = gemini_usage(metadata)
    assert usage is not None and usage.completion_modalities == {"text": 10, "image": 1120}
    cost = cost_of(paid("gemini-3-pro-image-preview"), None, usage)
    image = 1120 * 120e-6
    assert cost.modal == {"output_image": pytest.approx(image)}
    assert cost.cost == pytest.approx(12 * 2e-6 + 10 * 12e-6 + image)
    assert cost.cost == pytest.approx(0.1345, abs=1e-3)  # Google: $0.134 per 1K image
    as_text = cost_of(paid("gemini-3-pro-image-preview"), None, Usage(12, 1130, 0, 1142))
    assert as_text.cost < cost.cost / 5 and as_text.modal is None


def test_audio_input_is_priced_as_audio_and_text_only_needs_no_breakdown() -> None:
    usage = gemini_usage({"promptTokenCount": 1100, "candidatesTokenCount": 10, "totalTokenCount": 1110,
                          "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 100},
                                                  {"modality": "AUDIO", "tokenCount": 1000}]})
    cost = cost_of(paid("gemini-2.5-flash"), None, usage)
    assert cost.modal == {"input_audio": pytest.approx(1000 * 1e-6)}
    assert cost.cost == pytest.approx(100 * 0.30e-6 + 1000 * 1e-6 + 10 * 2.50e-6)
    text = gemini_usage({"promptTokenCount": 5, "candidatesTokenCount": 5,
                         "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}]})
    assert text is not None and text.prompt_modalities is None


def test_service_tier_served_is_priced_flex_half_priority_double() -> None:
    base = {"promptTokenCount": 1000, "candidatesTokenCount": 1000, "totalTokenCount": 2000}
    standard = cost_of(paid("gemini-3.5-flash"), None, gemini_usage(base))
    flex = cost_of(paid("gemini-3.5-flash"), None, gemini_usage({**base, "serviceTier": "flex"}))
    priority = cost_of(paid("gemini-3.5-flash"), None, gemini_usage({**base, "serviceTier": "SERVICE_TIER_PRIORITY"}))
    assert standard.cost == pytest.approx(1000 * 1.5e-6 + 1000 * 9e-6)
    assert flex.cost == pytest.approx(standard.cost / 2) and priority.cost == pytest.approx(standard.cost * 2)
    odd = gemini_usage({**base, "serviceTier": "turbo"})
    assert odd is not None and odd.tier is None  # an unknown tier is not guessed at
