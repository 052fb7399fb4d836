"""What a client API module and a provider module provide (modules satisfy these protocols; mypy checks
them in keymux/translate/registry.py). Adding one is one module plus one line in that registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from keymux.providers.base import Addressed, Verdict
from keymux.translate import pivot as p


class StreamDecoder(Protocol):
    # The upstream sent the event that ends an answer: what keymux.providers.ENDS_STREAM says of the raw
    # payloads, read from the decoded ones (no second scan of each payload; tests hold the two equal).
    ended: bool

    def feed(self, payload: bytes) -> p.Delta | None: ...

    def finish(self) -> p.Delta | None: ...


class StreamEncoder(Protocol):
    usage: p.Usage | None

    def feed(self, delta: p.Delta) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...

    def error(self, status: int, message: str) -> bytes: ...


class Target(Protocol):
    """What a client decoder asks of the provider it translates for, so that its errors name the
    client's own field (`contents[0].parts[1].inlineData.mimeType`)."""

    label: str

    def takes_inline(self, mime: str) -> bool: ...

    def takes_url(self, url: str, mime: str) -> bool: ...


class ProviderCodec(Protocol):
    """Pivot <-> one upstream API (keymux/translate/providers/*)."""

    name: str  # the keymux.providers module that classifies answers
    label: str  # how an error about what it cannot take names it

    def takes_inline(self, mime: str) -> bool: ...

    def takes_url(self, url: str, mime: str) -> bool: ...

    def address(self, dep: Addressed, stream: bool) -> tuple[str, dict[str, str]]:
        """The URL and auth headers of a call on this deployment (its provider module's addressing)."""
        ...

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes, now: float) -> Verdict: ...

    def error_details(self, raw: bytes) -> tuple[str | None, str | None]: ...

    def encode_request(self, req: p.Request, model: str, stream: bool) -> bytes: ...

    def decode_response(self, raw: bytes) -> p.Response: ...

    def StreamDecoder(self) -> StreamDecoder: ...  # noqa: N802 - the module's class


class ClientCodec(Protocol):
    """One client API <-> pivot (keymux/translate/clients/*)."""

    def decode_request(self, body: Any, *, drop_params: bool, target: ProviderCodec) -> p.Request: ...

    def estimate_tokens(self, body: Any) -> int: ...

    def encode_response(self, resp: p.Response, model: str) -> bytes: ...

    def encode_error(self, status: int, message: str, code: str | None) -> bytes: ...

    def StreamEncoder(self, model: str, include_usage: bool) -> StreamEncoder: ...  # noqa: N802

    def stream_from_body(self, body: bytes, include_usage: bool) -> list[bytes]: ...

    def body_from_stream(self, events: list[bytes], usage: p.Usage | None = None) -> bytes | None: ...
