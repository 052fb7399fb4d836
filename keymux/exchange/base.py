"""The contract between the relay and a (client API, provider) adapter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from keymux.config.schema import DeploymentConfig
from keymux.errors import StreamBroken
from keymux.providers.base import Verdict
from keymux.translate.pivot import Usage

__all__ = ["Exchange", "StreamBroken", "StreamTranslator", "Usage"]


class StreamTranslator(Protocol):
    """Turns upstream SSE `data:` payloads into client-framed bytes."""

    @property
    def usage(self) -> Usage | None:
        """The last usage the upstream reported; None until one arrived."""
        ...

    @property
    def complete(self) -> bool:
        """The upstream sent the event that ends an answer (keymux.providers.ENDS_STREAM)."""
        ...

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

    def answered(self, raw: bytes) -> bool:
        """A successful upstream body holds a whole answer (keymux.providers.ANSWERED for generate calls)."""
        ...

    def stream(self) -> StreamTranslator: ...

    def error(self, status: int, raw: bytes, verdict: Verdict) -> bytes:
        """An upstream error body -> an error body in the client's shape."""
        ...

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes, now: float) -> Verdict: ...
