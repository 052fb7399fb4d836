"""The one translating exchange: a client codec and a provider codec meeting at the pivot.

client body -> client.decode_request -> pivot Request -> provider.encode_request -> upstream body
upstream answer -> provider.decode_response / StreamDecoder -> pivot -> client.encode_response / StreamEncoder

The request is decoded once; the upstream body is encoded once per (upstream model, stream) and
reused by every retry on another key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keymux.config.schema import DeploymentConfig
from keymux.providers import ANSWERED
from keymux.providers.base import Verdict
from keymux.translate import defaults
from keymux.translate.codecs import ClientCodec, ProviderCodec, StreamDecoder, StreamEncoder
from keymux.translate.pivot import Usage


class TranslatingStream:
    __slots__ = ("_decoder", "_encoder")

    def __init__(self, decoder: StreamDecoder, encoder: StreamEncoder) -> None:
        self._decoder = decoder
        self._encoder = encoder

    @property
    def usage(self) -> Usage | None:
        return self._encoder.usage

    @property
    def complete(self) -> bool:
        return self._decoder.ended

    def feed(self, payload: bytes) -> list[bytes]:
        delta = self._decoder.feed(payload)
        return self._encoder.feed(delta) if delta is not None else []

    def finish(self) -> list[bytes]:
        leftover = self._decoder.finish()
        out: list[bytes] = self._encoder.feed(leftover) if leftover is not None else []
        return out + self._encoder.finish()

    def error(self, status: int, message: str) -> bytes:
        return self._encoder.error(status, message)


class TranslatingExchange:
    __slots__ = ("provider", "estimated_tokens", "_client", "_codec", "_req", "_model", "_include_usage",
                 "_encoded")

    def __init__(self, client: ClientCodec, codec: ProviderCodec, body: Any, *, model: str, drop_params: bool,
                 include_usage: bool) -> None:
        self._client = client
        self._codec = codec
        self._req = client.decode_request(body, drop_params=drop_params, target=codec)
        self._model = model  # the name the client asked for, echoed in translated answers
        self._include_usage = include_usage
        self._encoded: dict[tuple[str, bool], bytes] = {}
        self.provider: str = codec.name
        self.estimated_tokens: int = client.estimate_tokens(body)

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        key = (dep.id if dep.defaults else dep.model, stream)  # default params: a body per deployment
        data = self._encoded.get(key)
        if data is None:
            req = defaults.pivot_request(self._req, dep.defaults) if dep.defaults else self._req
            data = self._encoded[key] = self._codec.encode_request(req, dep.model, stream)
        url, auth = self._codec.address(dep, stream)
        return url, defaults.headers(dep.defaults, auth), data

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        resp = self._codec.decode_response(raw)
        return self._client.encode_response(resp, self._model), resp.usage

    def stream(self) -> TranslatingStream:
        return TranslatingStream(self._codec.StreamDecoder(),
                                 self._client.StreamEncoder(self._model, self._include_usage))

    def answered(self, raw: bytes) -> bool:
        return ANSWERED[self._codec.name](raw)

    def error(self, status: int, raw: bytes, verdict: Verdict) -> bytes:
        message, code = self._codec.error_details(raw)
        return self._client.encode_error(status, message or verdict.reason or f"upstream answered {status}", code)

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes, now: float) -> Verdict:
        return self._codec.classify(status, headers, raw, now)
