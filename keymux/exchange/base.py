"""The contract between the relay and a (client API, provider) adapter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from keymux.config.schema import DeploymentConfig
from keymux.providers.base import Verdict


@dataclass
class Usage:
    prompt: int = 0
    completion: int = 0
    reasoning: int = 0
    total: int = 0

    @classmethod
    def from_openai(cls, u: Mapping[str, Any] | None) -> Usage | None:
        if not u:
            return None
        details = u.get("completion_tokens_details") or {}
        prompt = int(u.get("prompt_tokens") or 0)
        completion = int(u.get("completion_tokens") or 0)
        return cls(prompt, completion, int(details.get("reasoning_tokens") or 0),
                   int(u.get("total_tokens") or prompt + completion))

    @classmethod
    def from_gemini(cls, m: Mapping[str, Any] | None) -> Usage | None:
        if not m:
            return None
        prompt = int(m.get("promptTokenCount") or 0)
        thoughts = int(m.get("thoughtsTokenCount") or 0)
        completion = int(m.get("candidatesTokenCount") or 0) + thoughts
        return cls(prompt, completion, thoughts, int(m.get("totalTokenCount") or prompt + completion))


class StreamTranslator(Protocol):
    """Turns upstream SSE `data:` payloads into client-framed bytes."""

    usage: Usage | None

    def feed(self, payload: bytes) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...

    def error(self, status: int, message: str) -> bytes:
        """A client-framed error event for a stream that broke after its first byte."""
        ...


class Exchange(Protocol):
    provider: str  # which provider module classifies the answer
    estimated_tokens: int

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        """URL, headers (incl. the key), body for one attempt on `dep`."""
        ...

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        """A successful upstream body -> the client's body."""
        ...

    def stream(self) -> StreamTranslator: ...

    def error(self, status: int, raw: bytes, verdict: Verdict) -> bytes:
        """An upstream error body -> an error body in the client's shape."""
        ...

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes, now: float) -> Verdict: ...
