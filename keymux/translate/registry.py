"""Every client API and every provider the pivot connects: adding one is its module plus one line here.

Keys are the surface names (keymux/surfaces) and the provider names of the config (`gemini/...`,
`openai/...`). The annotations make mypy check each module against its protocol (codecs.py).
"""

from __future__ import annotations

from keymux.translate.clients import anthropic as anthropic_client
from keymux.translate.clients import gemini as gemini_client
from keymux.translate.clients import openai_chat, openai_responses
from keymux.translate.codecs import ClientCodec, ProviderCodec
from keymux.translate.providers import anthropic as anthropic_provider
from keymux.translate.providers import gemini as gemini_provider
from keymux.translate.providers import openai as openai_provider
from keymux.translate.providers import vertex as vertex_provider

CLIENTS: dict[str, ClientCodec] = {
    "openai": openai_chat,
    "gemini": gemini_client,
    "openai_responses": openai_responses,
    "anthropic": anthropic_client,
}
PROVIDERS: dict[str, ProviderCodec] = {
    "gemini": gemini_provider,
    "openai": openai_provider,
    "anthropic": anthropic_provider,
    "vertex_ai": vertex_provider,
}
