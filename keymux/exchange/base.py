"""The contract between the relay and a (client API, provider) adapter."""

from __future__ import annotations

from typing import Mapping, Protocol

from keymux.config.schema import DeploymentConfig
from keymux.providers.base import Verdict
from keymux.translate.pivot import Usage

__all__ = ["Exchange", "StreamBroken", "StreamTranslator", "Usage"]


class StreamBroken(Exception):
    """The upstream sent an error object inside a 200 stream."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
