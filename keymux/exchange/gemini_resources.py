"""Gemini client -> Gemini key, for Google's stateful resources (interactions, files, cachedContents,
batches, operations): the body passes through untouched, and the answer tells which resources it created
(`created`), so the relay can pin each to the key that answered, or which it deleted (`deleted`).

Interactions stream as SSE events `{"event_type": "interaction.created" | "step.start" | "step.delta" |
"step.stop" | "interaction.status_update" | "interaction.completed" | "error", ...}`; the last is
`interaction.completed` (or an `error`), whose interaction carries the usage.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from keymux.config.schema import DeploymentConfig
from keymux.errors import StreamBroken
from keymux.exchange.base import Usage
from keymux.exchange.shapes import gemini_error
from keymux.providers import gemini
from keymux.providers.base import Verdict
from keymux.translate.estimate import estimate_gemini_prompt_tokens
from keymux.translate.sse import sse_event

# How long Google keeps each kind (what a pin lasts): interactions are kept 55 days on the paid tier
# (1 day free); files 48 h; caches and batches until their own expiry (read from the answer when given).
LIFETIMES = {"interactions": 55 * 86400.0, "files": 48 * 3600.0, "cachedContents": 3600.0,
             "batches": 7 * 86400.0, "operations": 7 * 86400.0}


def interaction_usage(doc: Any) -> Usage | None:
    usage = doc.get("usage") if isinstance(doc, dict) else None
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("total_input_tokens") or 0)
    thoughts = int(usage.get("total_thought_tokens") or 0)
    completion = int(usage.get("total_output_tokens") or 0) + thoughts
    total = int(usage.get("total_tokens") or prompt + completion)
    return Usage(prompt=prompt, completion=completion, reasoning=thoughts, total=total,
                 cached=int(usage.get("total_cached_tokens") or 0))


def created_by(doc: Any, kind: str) -> list[tuple[str, float, float | None]]:
    """The resources an answer names as created: (resource name, lifetime in seconds, or the epoch second it
    expires when the answer says: a cache's expireTime, which the relay measures against its own clock)."""
    if not isinstance(doc, dict):
        return []
    if kind == "interactions":
        rid = doc.get("id")
        return [(f"interactions/{rid}", LIFETIMES[kind], None)] if isinstance(rid, str) and rid else []
    if kind == "files":
        doc = doc.get("file", doc)
    name = doc.get("name") if isinstance(doc, dict) else None
    if not isinstance(name, str) or "/" not in name:
        return []
    ttl = LIFETIMES.get(name.split("/", 1)[0], LIFETIMES["files"])
    expires = doc.get("expireTime") or doc.get("expirationTime")
    at: float | None = None
    if isinstance(expires, str):  # a cache's own expiry
        try:
            at = datetime.fromisoformat(expires.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return [(name, ttl, at)]


_HEAD = b'{"event_type":"'
_WATCHED = (b"interaction.created", b"interaction.completed", b"error")


def _event_type(payload: bytes) -> bytes | None:
    """The event's type, read off the front of its compact JSON (where Google puts it), without parsing."""
    if payload.startswith(_HEAD):
        end = payload.find(b'"', len(_HEAD))
        if end > 0:
            return payload[len(_HEAD):end]
    return None


class _InteractionStream:
    """Each event goes on as Google framed it (`event: <event_type>` then its data); only the created,
    completed and error events are parsed."""

    def __init__(self, owner: GeminiResource) -> None:
        self.usage: Usage | None = None
        self.complete = False
        self._owner = owner

    def feed(self, payload: bytes) -> list[bytes]:
        named = _event_type(payload)
        watched = named in _WATCHED if named is not None else any(w in payload for w in _WATCHED)
        if watched:
            doc = orjson.loads(payload)
            kind = doc.get("event_type") if isinstance(doc, dict) else None
            if kind == "error":
                err = doc.get("error") or {}
                raise StreamBroken(int(err.get("code") or 500), str(err.get("message") or "error event"))
            interaction = doc.get("interaction") if isinstance(doc, dict) else None
            if kind == "interaction.created" and self._owner.stores:
                self._owner.created += created_by(interaction, "interactions")
            elif kind == "interaction.completed":
                self.complete = True
                self.usage = interaction_usage(interaction)
        return [sse_event(payload, event=named)]

    def finish(self) -> list[bytes]:
        return []

    def error(self, status: int, message: str) -> bytes:
        return sse_event(orjson.dumps({"event_type": "error", "error": {"code": status, "message": message}}),
                         event=b"error")


class GeminiResource:
    """One call on a Gemini resource path, e.g. POST interactions, GET files/abc, DELETE cachedContents/x."""

    provider = "gemini"

    def __init__(self, body: dict[str, Any], raw: bytes, path: str, http_method: str) -> None:
        self._raw = raw
        self._body = body
        self._asked = body.get("model") if isinstance(body.get("model"), str) else None
        self._bodies: dict[str, bytes] = {}  # per upstream model, when it is not the name the client asked
        self.path = path
        self.http_method = http_method
        self.kind = path.split("/", 1)[0].split(":", 1)[0]
        # store=false: Google keeps nothing, so there is nothing to pin
        self.stores = body.get("store", True) is not False
        self.estimated_tokens = estimate_gemini_prompt_tokens(body) if "contents" in body else \
            max(1, len(raw) // 4)
        self.created: list[tuple[str, float, float | None]] = []
        self.deleted: list[str] = []
        self.ended: list[dict[str, Any]] = []  # batches (long-running operations) the answer shows done

    def request(self, dep: DeploymentConfig, stream: bool) -> tuple[str, dict[str, str], bytes]:
        headers = gemini.auth_headers(dep.api_key)
        if stream:
            headers = {**headers, "accept": "text/event-stream"}
        path = self.path.replace("{model}", dep.model)  # models/{model}:batchGenerateContent
        return f"{gemini.base_url(dep.api_base)}/{path}", headers, self._data(dep.model)

    def _data(self, model: str) -> bytes:
        """The body names a model (interactions.create, caches.create): the deployment's, not the group's."""
        asked = self._asked
        if asked is None or asked in (model, f"models/{model}"):
            return self._raw
        data = self._bodies.get(model)
        if data is None:
            named = model if not asked.startswith("models/") else f"models/{model}"
            data = self._bodies[model] = orjson.dumps({**self._body, "model": named})
        return data

    def response(self, raw: bytes) -> tuple[bytes, Usage | None]:
        doc = orjson.loads(raw) if raw.strip() else {}
        if self.http_method == "DELETE":
            self.deleted.append(self.path.split(":", 1)[0])
            return raw, None
        if self.http_method == "POST" and self.stores and (self.kind != "interactions" or "/" not in self.path):
            self.created += created_by(doc, self.kind)
        if self.http_method == "GET" and isinstance(doc, dict) and doc.get("done") is True:
            self.ended.append(doc)
        usage = interaction_usage(doc) if self.kind == "interactions" else None
        return raw, usage

    def answered(self, raw: bytes) -> bool:
        return True  # resource answers have no generate shape to check; a JSON body is read in `response`

    def stream(self) -> _InteractionStream:
        return _InteractionStream(self)

    def error(self, status: int, raw: bytes, verdict: Verdict) -> bytes:
        if gemini.error_object(raw):
            return raw
        return gemini_error(status, verdict.reason or f"upstream answered {status}")

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes, now: float) -> Verdict:
        return gemini.classify(status, raw, now)
