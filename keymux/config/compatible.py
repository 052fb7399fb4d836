"""LiteLLM's OpenAI-compatible providers: a model prefix (`groq/llama-3.3-70b-versatile`) that names a vendor
speaking the OpenAI wire format at its own base URL, with its own key variable.

keymux serves each of them as the "openai" provider with that base URL, pooled and classified like any other
key; the vendor is kept for the report and the ledger's readers. Names follow LiteLLM's provider list
(`litellm.types.utils.LlmProviders`); `openai_compatible` and `zhipu` are accepted spellings users write.
The base URL is `api_base` when given, else the environment variable LiteLLM reads (`GROQ_API_BASE`, ...),
else the vendor's public endpoint (local servers: their usual local port).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Vendor:
    name: str
    base: str | None  # the public (or usual local) OpenAI-compatible base URL; None: api_base is required
    key_env: tuple[str, ...]  # where LiteLLM looks for the key when api_key is not given
    base_env: tuple[str, ...] = ()
    keyless: bool = False  # a local server that takes no key
    suffix: str = ""  # appended to a user's api_base that lacks it (Ollama's OpenAI endpoint is under /v1)


def _v(name: str, base: str | None, *key_env: str, base_env: tuple[str, ...] = (), keyless: bool = False,
       suffix: str = "") -> Vendor:
    return Vendor(name, base, key_env, base_env or (f"{name.upper()}_API_BASE",), keyless, suffix)


_OLLAMA = dict(base_env=("OLLAMA_API_BASE",), keyless=True, suffix="/v1")
VENDORS: dict[str, Vendor] = {v.name: v for v in (
    _v("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    _v("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    _v("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    _v("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", "OR_API_KEY"),
    _v("together_ai", "https://api.together.xyz/v1", "TOGETHERAI_API_KEY", "TOGETHER_API_KEY", "TOGETHER_AI_TOKEN"),
    _v("fireworks_ai", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY",
       "FIREWORKSAI_API_KEY"),
    _v("xai", "https://api.x.ai/v1", "XAI_API_KEY"),
    _v("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
    _v("perplexity", "https://api.perplexity.ai", "PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"),
    _v("hosted_vllm", None, "HOSTED_VLLM_API_KEY", keyless=True),
    _v("openai_compatible", None, "OPENAI_API_KEY", keyless=True),
    _v("lm_studio", "http://localhost:1234/v1", "LM_STUDIO_API_KEY", keyless=True),
    _v("ollama", "http://localhost:11434/v1", "OLLAMA_API_KEY", **_OLLAMA),  # type: ignore[arg-type]
    _v("ollama_chat", "http://localhost:11434/v1", "OLLAMA_API_KEY", **_OLLAMA),  # type: ignore[arg-type]
    _v("nvidia_nim", "https://integrate.api.nvidia.com/v1", "NVIDIA_NIM_API_KEY"),
    _v("sambanova", "https://api.sambanova.ai/v1", "SAMBANOVA_API_KEY"),
    _v("github", "https://models.inference.ai.azure.com", "GITHUB_API_KEY"),
    _v("zai", "https://api.z.ai/api/paas/v4", "ZAI_API_KEY"),
    _v("zhipu", "https://open.bigmodel.cn/api/paas/v4", "ZHIPU_API_KEY", "ZHIPUAI_API_KEY"),
    _v("siliconflow", "https://api.siliconflow.cn/v1", "SILICONFLOW_API_KEY"),
    _v("dashscope", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "DASHSCOPE_API_KEY"),
    _v("moonshot", "https://api.moonshot.ai/v1", "MOONSHOT_API_KEY"),
    _v("volcengine", "https://ark.cn-beijing.volces.com/api/v3", "VOLCENGINE_API_KEY", "ARK_API_KEY"),
)}


def vendor_base(vendor: Vendor, api_base: str | None, env: Mapping[str, str]) -> str | None:
    """The base URL a deployment of this vendor calls (None: the vendor needs an api_base and has none)."""
    base = api_base or next((env[n].rstrip("/") for n in vendor.base_env if env.get(n)), None)
    if base is None:
        return vendor.base
    if vendor.suffix and not base.endswith(vendor.suffix):
        base += vendor.suffix
    return base


__all__ = ["VENDORS", "Vendor", "vendor_base"]
