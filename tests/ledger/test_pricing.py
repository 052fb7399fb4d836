"""Prices ship with keymux; free-tier Gemini costs 0 but keeps its value; deployments can override."""

from __future__ import annotations

import pytest

from keymux.config.load import parse_config
from keymux.config.schema import DeploymentConfig
from keymux.exchange import Usage
from keymux.pricing import cost_of, is_free_tier, list_price


def dep(model: str = "gemini-2.5-flash", provider: str = "gemini", **kw) -> DeploymentConfig:  # type: ignore[no-untyped-def]
    return DeploymentConfig(id="d", group="g", provider=provider, model=model, api_key="x", fingerprint="gem:1", **kw)


def test_longest_prefix_wins_and_snapshots_take_their_family_price() -> None:
    assert list_price("gemini", "gemini-2.5-flash-lite").input == 0.10
    assert list_price("gemini", "gemini-2.5-flash-preview-09-2025").input == 0.30
    assert list_price("gemini", "models/gemini-2.5-flash-image-preview").modal_output["image"] == 30.0
    assert list_price("openai", "gpt-4o-mini-2024-07-18").input == 0.15
    assert list_price("openai", "gpt-4o-2024-08-06").input == 2.50
    assert list_price("anthropic", "claude-sonnet-4-5-20250929").output == 15.0
    assert list_price("openai", "claude-3-5-haiku-latest").input == 0.80  # an OpenAI-compatible server
    assert list_price("gemini", "unknown-model") is None


def test_gemini_2_5_pro_is_tiered_above_200k_prompt_tokens() -> None:
    paid = dep("gemini-2.5-pro", tier="paid")
    small = cost_of(paid, None, Usage(prompt=200_000, completion=1_000, total=201_000))
    large = cost_of(paid, None, Usage(prompt=200_001, completion=1_000, total=201_001))
    assert small.cost == pytest.approx(200_000 * 1.25e-6 + 1_000 * 10e-6)
    assert large.cost == pytest.approx(200_001 * 2.50e-6 + 1_000 * 15e-6)


def test_free_tier_rule() -> None:
    usage = Usage(prompt=1_000, completion=1_000, total=2_000)
    free = cost_of(dep(), None, usage)
    assert free.free and free.cost == 0 and free.value == pytest.approx(1_000 * 0.30e-6 + 1_000 * 2.50e-6)
    assert not is_free_tier(dep(tier="paid")) and is_free_tier(dep("gpt-4o", "openai", tier="free"))
    assert not is_free_tier(dep("gpt-4o", "openai"))
    override = cost_of(dep(input_cost_per_token=1e-6, output_cost_per_token=2e-6), None, usage)
    assert not override.free and override.cost == pytest.approx(0.003)
    assert cost_of(dep(), None, None).cost == 0 and cost_of(None, "x", usage).value == 0


def test_tier_and_costs_come_from_the_litellm_config() -> None:
    config = parse_config({"model_list": [
        {"model_name": "g", "litellm_params": {"model": "gemini/gemini-2.5-pro", "api_key": "k"},
         "model_info": {"tier": "paid"}},
        {"model_name": "h", "litellm_params": {"model": "gemini/gemini-2.5-pro", "api_key": "k2",
                                               "input_cost_per_token": 1e-6}}]}, env={})
    g, h = config.deployments
    assert g.tier == "paid" and not is_free_tier(g)
    assert h.tier is None and not is_free_tier(h)
