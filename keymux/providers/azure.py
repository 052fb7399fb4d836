"""Azure OpenAI (`azure/<deployment>`) and Azure AI Foundry (`azure_ai/<model>`): the OpenAI wire format
at Azure's addresses, with the key in an `api-key` header. Answers are classified as OpenAI's (Azure's 429
carries retry-after-ms, which providers/openai.py reads first)."""

from __future__ import annotations

import functools
from urllib.parse import quote

DEFAULT_API_VERSION = "2024-10-21"  # the current GA data-plane version


def chat_url(kind: str, api_base: str, deployment: str, api_version: str | None) -> str:
    base = api_base.rstrip("/")
    if kind == "azure":
        return (f"{base}/openai/deployments/{quote(deployment, safe='')}/chat/completions"
                f"?api-version={quote(api_version or DEFAULT_API_VERSION, safe='')}")
    url = f"{base}/chat/completions"  # azure_ai: the model is in the body
    return f"{url}?api-version={quote(api_version, safe='')}" if api_version else url


@functools.lru_cache(maxsize=4096)
def auth_headers(api_key: str) -> dict[str, str]:
    return {"api-key": api_key, "content-type": "application/json"}


KINDS = ("azure", "azure_ai")
