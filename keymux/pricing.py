"""What a request cost, in USD, from a price table shipped with keymux (never downloaded).

Prices are USD per million tokens, as published by each provider (late 2025). A model id matches the
longest table entry it starts with, so dated snapshots and previews ("gemini-2.5-flash-preview-09-2025",
"gpt-4o-2024-08-06") take the price of their family.

Free tier: Google AI Studio keys are free unless the deployment says otherwise. A Gemini deployment is
treated as paid when it declares `input_cost_per_token` / `output_cost_per_token`, or `model_info.tier: paid`.
OpenAI and Anthropic keys are paid unless `model_info.tier: free`. A free-tier request costs 0; what it would
have cost at list price is kept as its `value`, so the ledger shows what the free tier saved.
Per-deployment `input_cost_per_token` / `output_cost_per_token` (LiteLLM's names) replace the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from keymux.config.schema import DeploymentConfig
from keymux.exchange import Usage

M = 1_000_000


@dataclass(frozen=True)
class Price:
    """USD per million tokens; above `threshold` prompt tokens, the `long_*` prices apply to the whole request."""

    input: float
    output: float
    threshold: int | None = None
    long_input: float | None = None
    long_output: float | None = None

    def cost(self, prompt: int, completion: int) -> float:
        inp, out = self.input, self.output
        if self.threshold is not None and prompt > self.threshold:
            inp = self.long_input if self.long_input is not None else inp
            out = self.long_output if self.long_output is not None else out
        return (prompt * inp + completion * out) / M


# (provider, model id prefix) -> price. Output prices include thinking / reasoning tokens, as billed.
PRICES: dict[tuple[str, str], Price] = {
    # Google Gemini API (paid tier list prices)
    ("gemini", "gemini-3-pro"): Price(2.00, 12.00, 200_000, 4.00, 18.00),
    ("gemini", "gemini-2.5-pro"): Price(1.25, 10.00, 200_000, 2.50, 15.00),
    ("gemini", "gemini-2.5-flash"): Price(0.30, 2.50),
    ("gemini", "gemini-2.5-flash-lite"): Price(0.10, 0.40),
    ("gemini", "gemini-2.5-flash-image"): Price(0.30, 30.00),  # image output: $0.039 per 1290-token image
    ("gemini", "gemini-2.0-flash"): Price(0.10, 0.40),
    ("gemini", "gemini-2.0-flash-lite"): Price(0.075, 0.30),
    ("gemini", "gemini-1.5-flash"): Price(0.075, 0.30, 128_000, 0.15, 0.60),
    ("gemini", "gemini-1.5-pro"): Price(1.25, 5.00, 128_000, 2.50, 10.00),
    ("gemini", "gemini-embedding-001"): Price(0.15, 0.0),
    ("gemini", "text-embedding-004"): Price(0.0, 0.0),
    ("gemini", "gemma-"): Price(0.0, 0.0),
    # OpenAI
    ("openai", "gpt-5"): Price(1.25, 10.00),
    ("openai", "gpt-5-mini"): Price(0.25, 2.00),
    ("openai", "gpt-5-nano"): Price(0.05, 0.40),
    ("openai", "gpt-4.1"): Price(2.00, 8.00),
    ("openai", "gpt-4.1-mini"): Price(0.40, 1.60),
    ("openai", "gpt-4.1-nano"): Price(0.10, 0.40),
    ("openai", "gpt-4o"): Price(2.50, 10.00),
    ("openai", "gpt-4o-mini"): Price(0.15, 0.60),
    ("openai", "o1"): Price(15.00, 60.00),
    ("openai", "o1-mini"): Price(1.10, 4.40),
    ("openai", "o3"): Price(2.00, 8.00),
    ("openai", "o3-mini"): Price(1.10, 4.40),
    ("openai", "o3-pro"): Price(20.00, 80.00),
    ("openai", "o4-mini"): Price(1.10, 4.40),
    ("openai", "gpt-3.5-turbo"): Price(0.50, 1.50),
    ("openai", "text-embedding-3-small"): Price(0.02, 0.0),
    ("openai", "text-embedding-3-large"): Price(0.13, 0.0),
    ("openai", "text-embedding-ada-002"): Price(0.10, 0.0),
    # Anthropic: list prices as published on 2025-11-24 (Claude Opus 4.5 launch); Sonnet 4.5 / 4 above 200k prompt tokens
    ("anthropic", "claude-opus-4-5"): Price(5.00, 25.00),
    ("anthropic", "claude-opus-4"): Price(15.00, 75.00),
    ("anthropic", "claude-sonnet-4-5"): Price(3.00, 15.00, 200_000, 6.00, 22.50),
    ("anthropic", "claude-sonnet-4"): Price(3.00, 15.00, 200_000, 6.00, 22.50),
    ("anthropic", "claude-haiku-4-5"): Price(1.00, 5.00),
    ("anthropic", "claude-3-7-sonnet"): Price(3.00, 15.00),
    ("anthropic", "claude-3-5-sonnet"): Price(3.00, 15.00),
    ("anthropic", "claude-3-5-haiku"): Price(0.80, 4.00),
    ("anthropic", "claude-3-opus"): Price(15.00, 75.00),
    ("anthropic", "claude-3-haiku"): Price(0.25, 1.25),
}
_FREE_BY_DEFAULT = frozenset(("gemini",))


@dataclass(frozen=True)
class Cost:
    cost: float  # USD charged
    value: float  # USD at list price (equals cost unless free tier)
    free: bool
    known: bool  # a price was found (table or deployment)


NO_COST = Cost(0.0, 0.0, False, False)


def _family(model: str) -> str:
    model = model.removeprefix("models/")
    for prefix in ("anthropic/", "gemini/", "openai/"):
        model = model.removeprefix(prefix)
    return model


@lru_cache(maxsize=1024)
def list_price(provider: str, model: str) -> Price | None:
    """The table price of `model` (the longest matching prefix), or None."""
    model = _family(model)
    best: tuple[int, Price] | None = None
    for (prov, prefix), price in PRICES.items():
        if prov == provider and model.startswith(prefix) and (best is None or len(prefix) > best[0]):
            best = (len(prefix), price)
    if best is None:  # an OpenAI-compatible server may serve any vendor's models
        for (_, prefix), price in PRICES.items():
            if model.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), price)
    return best[1] if best else None


def is_free_tier(d: DeploymentConfig) -> bool:
    if d.tier is not None:
        return d.tier == "free"
    if d.input_cost_per_token is not None or d.output_cost_per_token is not None:
        return False
    return d.provider in _FREE_BY_DEFAULT


def cost_of(d: DeploymentConfig | None, model: str | None, usage: Usage | None) -> Cost:
    """Cost of one request served by deployment `d` with `usage` (no usage: nothing billed)."""
    if d is None or usage is None:
        return NO_COST
    prompt, completion = usage.prompt, usage.completion  # completion includes thinking tokens (both APIs)
    if d.input_cost_per_token is not None or d.output_cost_per_token is not None:
        value = prompt * (d.input_cost_per_token or 0.0) + completion * (d.output_cost_per_token or 0.0)
        known = True
    else:
        price = list_price(d.provider, model or d.model)
        known = price is not None
        value = price.cost(prompt, completion) if price is not None else 0.0
    free = is_free_tier(d)
    return Cost(0.0 if free else value, value, free, known)


__all__ = ["NO_COST", "PRICES", "Cost", "Price", "cost_of", "is_free_tier", "list_price"]
