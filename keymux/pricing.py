"""What a request cost, in USD, from a price table shipped with keymux (never downloaded).

Prices are USD per million tokens, as published by each provider, **as of 2026-12-01** (sources beside each
block). A model id matches the longest table entry it starts with, so dated snapshots and previews
("gemini-3-pro-preview", "gpt-4o-2024-08-06") take the price of their family; `ALIASES` first maps moving
names (`gemini-flash-latest`) to the model they served when the table was written.

Per modality: where the provider breaks usage down by modality (Gemini's promptTokensDetails /
candidatesTokensDetails, in `Usage.prompt_modalities` / `completion_modalities`), tokens of a modality with
its own price are priced at it: image output at the image rate ($30 / $60 / $120 per million, i.e. $0.039 /
$0.067 / $0.134 a 1K image), audio input at the audio rate. The rest is priced as text. `Cost.modal` keeps
what the differently priced tokens cost, so the ledger, metrics and dashboard can show it.

Service tier (Gemini `serviceTier`, priced by what the answer's usageMetadata says served it, since Google
moves priority traffic over its limit to standard): flex is half price (blog.google, "Introducing Flex and
Priority inference", 2026-04); priority is "75-100% more" than standard per the same announcement, and no
per-model priority price could be confirmed, so keymux prices it at the upper bound (x2) rather than
understate spend. OpenAI's flex / priority tiers are passed through but priced at the standard rate.
Gemini Batch mode (`batchGenerateContent`) is half the interactive price (ai.google.dev, Batch API, 2025-07):
keymux prices a finished batch's usage with the tier `batch`.

Not confirmed, so not in the table (such a model is unpriced: `known` is False, cost 0): gemini-3.6-flash
(GA 2026-07; no published price found), Claude Opus 4.6+/Sonnet 4.6+, GPT-5.5. gemini-3.1-flash-image: the
image output rate ($60/M) is confirmed, its text input/output rates are not (AI Studio and the API docs
disagree): the table uses gemini-3-flash's.

Free tier: Google AI Studio keys are free unless the deployment says otherwise. A Gemini deployment is
treated as paid when it declares `input_cost_per_token` / `output_cost_per_token`, or `model_info.tier: paid`.
OpenAI and Anthropic keys are paid unless `model_info.tier: free`. A free-tier request costs 0; what it would
have cost at list price is kept as its `value`, so the ledger shows what the free tier saved.
Per-deployment `input_cost_per_token` / `output_cost_per_token` (LiteLLM's names) replace the table (as one
price for every modality and tier).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

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
    # modality (lower case) -> its own price per million, where it differs from the text price
    modal_input: dict[str, float] = field(default_factory=dict)
    modal_output: dict[str, float] = field(default_factory=dict)

    def cost(self, prompt: int, completion: int) -> float:
        return self.priced(prompt, completion, None, None)[0]

    def priced(self, prompt: int, completion: int, prompt_modalities: dict[str, int] | None,
               completion_modalities: dict[str, int] | None) -> tuple[float, dict[str, float]]:
        """(USD, {"input_audio" | "output_image" ...: USD of the tokens priced at their modality's rate})."""
        inp, out = self.input, self.output
        if self.threshold is not None and prompt > self.threshold:
            inp = self.long_input if self.long_input is not None else inp
            out = self.long_output if self.long_output is not None else out
        modal: dict[str, float] = {}
        special_in = special_out = 0
        if prompt_modalities and self.modal_input:  # only the modalities with a price of their own
            for name, rate in self.modal_input.items():
                n = prompt_modalities.get(name, 0)
                if n > 0:
                    modal[f"input_{name}"] = n * rate / M
                    special_in += n
        if completion_modalities and self.modal_output:
            for name, rate in self.modal_output.items():
                n = completion_modalities.get(name, 0)
                if n > 0:
                    modal[f"output_{name}"] = n * rate / M
                    special_out += n
        text = (max(0, prompt - special_in) * inp + max(0, completion - special_out) * out) / M
        return (text + sum(modal.values()) if modal else text), modal


# (provider, model id prefix) -> price. Output prices include thinking / reasoning tokens, as billed.
AUDIO_1 = {"audio": 1.00}
PRICES: dict[tuple[str, str], Price] = {
    # Google Gemini API, paid tier list prices (standard tier). Sources: ai.google.dev/gemini-api/docs/pricing
    # as transcribed 2026-09-20 and 2026-10-07 (github.com/api-evangelist/gemini and .../deepmind,
    # plans/*-pricing.yml, quoted verbatim from the page), factquire.com's quote of the same page (2026-07-04)
    # for gemini-3-flash-preview; image output rates: the same page ($120/M = $0.134 per 1K/2K image for
    # 3 Pro Image), aifreeapi.com 2026-03 for 3.1 Flash Image ($60/M).
    ("gemini", "gemini-3.5-flash"): Price(1.50, 9.00),
    ("gemini", "gemini-3.5-flash-lite"): Price(0.30, 2.50),  # "text / image / video / audio": one rate
    ("gemini", "gemini-3.1-pro"): Price(2.00, 12.00, 200_000, 4.00, 18.00),
    ("gemini", "gemini-3-pro"): Price(2.00, 12.00, 200_000, 4.00, 18.00),
    ("gemini", "gemini-3-pro-image"): Price(2.00, 12.00, modal_output={"image": 120.00}),
    ("gemini", "gemini-3-flash"): Price(0.50, 3.00, modal_input=AUDIO_1),
    ("gemini", "gemini-3.1-flash-image"): Price(0.50, 3.00, modal_output={"image": 60.00}),  # text: unconfirmed
    ("gemini", "gemini-2.5-pro"): Price(1.25, 10.00, 200_000, 2.50, 15.00),
    ("gemini", "gemini-2.5-flash"): Price(0.30, 2.50, modal_input=AUDIO_1),
    ("gemini", "gemini-2.5-flash-lite"): Price(0.10, 0.40, modal_input={"audio": 0.30}),
    ("gemini", "gemini-2.5-flash-image"): Price(0.30, 2.50, modal_output={"image": 30.00}),  # $0.039 / image
    ("gemini", "gemini-2.0-flash"): Price(0.10, 0.40, modal_input={"audio": 0.70}),  # shut down 2026-06
    ("gemini", "gemini-2.5-flash-preview-tts"): Price(0.50, 10.00),  # audio output tokens (25 per second)
    ("gemini", "gemini-2.5-pro-preview-tts"): Price(1.00, 20.00),
    ("gemini", "gemini-2.0-flash-lite"): Price(0.075, 0.30),
    ("gemini", "gemini-1.5-flash"): Price(0.075, 0.30, 128_000, 0.15, 0.60),
    ("gemini", "gemini-1.5-pro"): Price(1.25, 5.00, 128_000, 2.50, 10.00),
    ("gemini", "gemini-embedding-001"): Price(0.15, 0.0),
    ("gemini", "gemini-embedding-2"): Price(0.20, 0.0),
    ("gemini", "text-embedding-004"): Price(0.0, 0.0),  # shut down 2026-01
    ("gemini", "gemma-"): Price(0.0, 0.0),  # free tier only
    # OpenAI (platform.openai.com/docs/pricing, standard tier; late 2025, not re-checked for 2026 models)
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
# Moving names -> the model they served as of the table's date. Google moved the `latest` aliases to
# Gemini 3 in 2026-01 (the wire reference's model churn notes); a later move was not confirmed.
ALIASES: dict[str, str] = {
    "gemini-pro-latest": "gemini-3-pro-preview",
    "gemini-flash-latest": "gemini-3-flash-preview",
    "gemini-flash-lite-latest": "gemini-2.5-flash-lite",
}
# Gemini service tiers -> multiplier of the standard price (see the module docstring)
TIERS: dict[str, float] = {"standard": 1.0, "flex": 0.5, "priority": 2.0, "batch": 0.5}
# (provider, model id prefix) -> USD per generated image, for models billed per image rather than per token.
IMAGE_PRICES: dict[tuple[str, str], float] = {
    ("gemini", "imagen-4.0-generate"): 0.04,
    ("gemini", "imagen-4.0-fast-generate"): 0.02,
    ("gemini", "imagen-4.0-ultra-generate"): 0.06,
    ("gemini", "imagen-3.0"): 0.03,
}
_FREE_BY_DEFAULT = frozenset(("gemini",))


class Cost(NamedTuple):  # one per request: a tuple is cheaper to build than a frozen dataclass
    cost: float  # USD charged
    value: float  # USD at list price (equals cost unless free tier)
    free: bool
    known: bool  # a price was found (table or deployment)
    modal: dict[str, float] | None = None  # USD at list price of tokens priced by modality ("output_image")


NO_COST = Cost(0.0, 0.0, False, False)


def _family(model: str) -> str:
    model = model.removeprefix("models/")
    for prefix in ("anthropic/", "gemini/", "openai/"):
        model = model.removeprefix(prefix)
    return ALIASES.get(model, model)


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


@lru_cache(maxsize=256)
def image_price(provider: str, model: str) -> float | None:
    """USD per image of a model billed per image (the longest matching prefix), or None."""
    model = _family(model)
    found = [(len(prefix), p) for (prov, prefix), p in IMAGE_PRICES.items()
             if prov == provider and model.startswith(prefix)]
    return max(found)[1] if found else None


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
    modal: dict[str, float] | None = None
    if d.input_cost_per_token is not None or d.output_cost_per_token is not None:
        value = prompt * (d.input_cost_per_token or 0.0) + completion * (d.output_cost_per_token or 0.0)
        known = True
    else:
        price = list_price(d.provider, model or d.model)
        known = price is not None
        value = 0.0
        if price is not None:
            value, found = price.priced(prompt, completion, usage.prompt_modalities, usage.completion_modalities)
            factor = TIERS.get(usage.tier or "standard", 1.0) if d.provider == "gemini" else 1.0
            value *= factor
            modal = ({k: v * factor for k, v in found.items()} if factor != 1.0 else found) if found else None
        if usage.images:
            per_image = image_price(d.provider, model or d.model)
            if per_image is not None:
                value += usage.images * per_image
                known = True
    free = is_free_tier(d)
    return Cost(0.0 if free else value, value, free, known, modal)


__all__ = ["ALIASES", "IMAGE_PRICES", "NO_COST", "PRICES", "TIERS", "Cost", "Price", "cost_of", "image_price",
           "is_free_tier", "list_price"]
