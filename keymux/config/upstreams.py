"""Which upstream a deployment's `model` names: the wire API keymux speaks to it, the upstream model, the
vendor behind it and where it lives. The YAML loader (config/litellm.py) and the admin API
(config/deployment.py `from_admin`) both resolve a model here, so the same spellings mean the same upstream.

`groq/llama-3.3-70b` is the openai provider at Groq's base URL (config/compatible.py); `azure/<deployment>`
and `azure_ai/<model>` are the openai provider at Azure's addresses with its api-version (providers/azure.py);
`vertex_ai/<gemini model>` is Gemini on Vertex AI (config/vertex.py); `gemini/*` is a wildcard the live
snapshot makes concrete groups from.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from keymux.config import vertex
from keymux.config.compatible import VENDORS, Vendor, vendor_base
from keymux.config.fields import ConfigError, Fields
from keymux.config.fields import show_value as sv
from keymux.providers import azure

SUPPORTED_PROVIDERS = ("gemini", "openai", "anthropic", "vertex_ai")
URL_WHAT = "a URL starting with http:// or https://"
_OPENAI_BARE = ("gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-", "dall-e-", "tts-", "whisper-",
                "omni-moderation")
_GEMINI_BARE = ("gemini-", "gemma-", "learnlm-")
_ANTHROPIC_BARE = ("claude-",)
# azure/ and azure_ai/: where LiteLLM finds the endpoint and the key when the entry does not say.
_AZURE_BASE_ENV = {"azure": "AZURE_API_BASE", "azure_ai": "AZURE_AI_API_BASE"}
AZURE = {"azure": Vendor("azure", None, ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY")),
         "azure_ai": Vendor("azure_ai", None, ("AZURE_AI_API_KEY",))}


@dataclass(frozen=True)
class Upstream:
    provider: str  # the wire API: one of SUPPORTED_PROVIDERS, or the name of one keymux does not serve ("" unknown)
    model: str  # the upstream model ("" when the entry names none)
    api_base: str | None
    vendor: Vendor | None = None  # an OpenAI-compatible vendor or Azure, served as the openai provider
    api_version: str | None = None  # azure/, azure_ai/: the api-version query parameter

    @property
    def served(self) -> bool:
        return self.provider in SUPPORTED_PROVIDERS


def split_model(model: str, api_base: str | None, custom_provider: str | None) -> tuple[str, str]:
    """(provider, upstream model). The provider may be one keymux does not support, or "" when unknown."""
    if custom_provider:
        prefix, _, rest = model.partition("/")
        if prefix == custom_provider and rest:
            model = rest
        return custom_provider, model
    prefix, slash, rest = model.partition("/")
    if slash:
        return prefix, rest
    if api_base:
        return "openai", model
    if model.startswith(_OPENAI_BARE):
        return "openai", model
    if model.startswith(_GEMINI_BARE):
        return "gemini", model
    if model.startswith(_ANTHROPIC_BARE):
        return "anthropic", model
    return "", model


def resolve(f: Fields, model: str, api_base: str | None, custom: str | None, api_version: object,
            *, base_path: str, version_path: str) -> Upstream:
    """The upstream `model` names. A vendor or Azure without a base URL anywhere is a ConfigError at `base_path`."""
    provider, upstream = split_model(model, api_base, custom)
    if provider in vertex.PREFIXES:  # Gemini on Vertex AI: its addressing is config/vertex.py's
        return Upstream("vertex_ai", upstream, api_base)
    if provider in azure.KINDS:
        if not upstream:  # LiteLLM's `azure/` for image generation: no chat deployment to call
            return Upstream(provider, "", api_base)
        api_base = api_base or _env_url(f, _AZURE_BASE_ENV[provider])
        if api_base is None:
            raise f.error(base_path, URL_WHAT, message=f"missing: {provider}/ models need an api_base "
                          f"(your resource's endpoint) or the environment variable {_AZURE_BASE_ENV[provider]}")
        version = _api_version(api_version, version_path, f)
        if version is None and provider == "azure":
            version = f.env.get("AZURE_API_VERSION") or azure.DEFAULT_API_VERSION
        return Upstream("openai", upstream, api_base, AZURE[provider], version)  # OpenAI's wire format
    vendor = VENDORS.get(provider)
    if vendor is None:
        return Upstream(provider, upstream, api_base)
    base = vendor_base(vendor, api_base, f.env)
    if base is None:
        raise f.error(base_path, URL_WHAT, message=f"missing: {vendor.name}/ models need an api_base "
                      f"(the server's OpenAI-compatible URL) or the environment variable {vendor.base_env[0]}")
    return Upstream("openai", upstream, base, vendor)


def _api_version(value: object, path: str, f: Fields) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime.date):  # YAML reads an unquoted 2024-10-21 as a date
        value = value.isoformat()
    return f.string(value, path, what="an API version like 2024-10-21")


def _env_url(f: Fields, var: str) -> str | None:
    value = f.env.get(var, "").strip().rstrip("/")
    return value or None


def not_served(f: Fields, path: str, model: str, up: Upstream) -> ConfigError:
    """Why an upstream cannot be served, phrased as for a YAML entry (the admin API turns it into a 400)."""
    if up.provider in azure.KINDS:
        return f.error(path, "azure/<deployment name>",
                       message=f"'{sv(model)}' names no deployment (image generation is not served)")
    if up.provider:
        return f.error(path, "a provider keymux serves", message=f"provider '{sv(up.provider)}' is not supported "
                       "(gemini/, openai/, anthropic/, azure/, azure_ai/, vertex_ai/ and the OpenAI-compatible vendors)")
    return f.error(path, "provider/model, e.g. gemini/gemini-2.5-flash",
                   message=f"cannot tell which provider serves '{sv(model)}'")


__all__ = ["AZURE", "SUPPORTED_PROVIDERS", "URL_WHAT", "Upstream", "not_served", "resolve", "split_model"]
