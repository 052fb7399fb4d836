"""Gemini client -> Vertex AI deployment: the body passes through untouched (as to an AI Studio key), to
Vertex's address with the minted access token, and Vertex's answers are read by providers/vertex.py."""

from __future__ import annotations

from collections.abc import Mapping

from keymux.config.schema import DeploymentConfig
from keymux.exchange.gemini_gemini import GeminiPassthrough
from keymux.providers import vertex
from keymux.providers.base import Verdict
from keymux.translate import defaults


class VertexPassthrough(GeminiPassthrough):
    provider = "vertex_ai"

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        _, _, raw = super().request(dep, stream)
        method = "streamGenerateContent" if stream else self.method
        return vertex.model_url(dep.api_base, dep.model, method, stream), \
            defaults.headers(dep.defaults, vertex.auth_headers(dep.api_key)), raw

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes, now: float) -> Verdict:
        return vertex.classify(status, raw, now)
