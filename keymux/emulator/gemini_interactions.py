"""The emulator's Interactions API (google-genai 3.x `client.interactions`), with Google's ownership rule:
an interaction belongs to the project of the key that created it; any other project's key gets 404.

Answers follow the SDK's types (_gaos/types/interactions): an Interaction `{id, status, model, steps[],
usage{total_input_tokens, total_output_tokens, total_tokens}, created, updated, previous_interaction_id}`;
a stream is SSE `event: <type>` / `data: {..., "event_type": <type>, "event_id": ...}`: interaction.created,
step.start, step.delta (text), step.stop, interaction.completed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from keymux.emulator import gemini_wire as W

JSON_CT = "application/json; charset=UTF-8"


@dataclass
class StoredInteraction:
    owner: str  # the project (or key) that created it
    doc: dict[str, Any]
    turns: int  # how many turns the chain holds, this one included
    events: list[dict[str, Any]] = field(default_factory=list)


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, headers={"Content-Type": JSON_CT})


def _text_of(node: Any) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return " ".join(_text_of(n) for n in node)
    if isinstance(node, dict):
        if isinstance(node.get("text"), str):
            return node["text"]
        return _text_of(node.get("content", []))
    return ""


def _not_found(rid: str) -> web.Response:
    return _json(W.status_body(404, "NOT_FOUND", f"Interaction '{rid}' not found."), 404)


class Interactions:
    """Mounted on the Gemini emulator: `auth(request)` -> (key, owner) or an error response."""

    def __init__(self, auth: Callable[[web.Request], tuple[str, str] | web.Response],
                 log: Callable[[str, str, int, str, bool, str], None], now: Callable[[], float]) -> None:
        self._auth = auth
        self._log = log
        self._now = now
        self.stored: dict[str, StoredInteraction] = {}
        self._seq = 0

    def owned_by(self, owner: str) -> list[str]:
        return [rid for rid, s in self.stored.items() if s.owner == owner]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/interactions", self._create)
        app.router.add_get("/v1beta/interactions/{id}", self._get)
        app.router.add_delete("/v1beta/interactions/{id}", self._delete)
        app.router.add_post("/v1beta/interactions/{id}/cancel", self._cancel)

    def _stamp(self) -> str:
        return datetime.fromtimestamp(self._now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def _create(self, request: web.Request) -> web.StreamResponse:
        who = self._auth(request)
        if isinstance(who, web.Response):
            return who
        key, owner = who
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _json(W.bad_request(W.MSG_BAD_JSON), 400)
        model = str(body.get("model") or "")
        if not model or "input" not in body:
            self._log(key, model, 400, "bad_request", False, "interactions.create")
            return _json(W.bad_request("model and input are required."), 400)
        turns = 1
        previous = body.get("previous_interaction_id")
        if previous:
            prev = self.stored.get(previous)
            if prev is None or prev.owner != owner:  # another project's interaction is unknown here
                self._log(key, model, 404, "not_found", False, "interactions.create")
                return _not_found(previous)
            turns = prev.turns + 1
        self._seq += 1
        rid = f"v1_emu{self._seq:08d}"
        prompt = _text_of(body.get("input"))
        answer = f"turn {turns}: {prompt[:60]}".strip()
        tokens_in = max(1, len(prompt) // 4)
        tokens_out = max(1, len(answer) // 4)
        background = body.get("background") is True
        doc: dict[str, Any] = {
            "id": rid, "model": model, "status": "in_progress" if background else "completed",
            "created": self._stamp(), "updated": self._stamp(), "role": "model",
            "steps": [{"type": "model_output", "content": [{"type": "text", "text": answer}]}],
            "usage": {"total_input_tokens": tokens_in, "total_output_tokens": tokens_out,
                      "total_tokens": tokens_in + tokens_out},
        }
        if previous:
            doc["previous_interaction_id"] = previous
        if body.get("store", True) is not False:
            self.stored[rid] = StoredInteraction(owner, doc, turns)
        stream = body.get("stream") is True
        self._log(key, model, 200, "ok", stream, "interactions.create")
        if not stream:
            shown = dict(doc)
            if background:
                shown.pop("steps")
                doc["status"] = "completed"  # done by the time it is polled
            return _json(shown)
        return await self._stream(request, doc, answer)

    async def _stream(self, request: web.Request, doc: dict[str, Any], answer: str) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        head = {k: v for k, v in doc.items() if k not in ("steps", "usage")} | {"status": "in_progress"}
        words = answer.split(" ")
        events: list[dict[str, Any]] = [{"event_type": "interaction.created", "interaction": head},
                                        {"event_type": "step.start", "index": 0,
                                         "step": {"type": "model_output"}}]
        for i, word in enumerate(words):
            events.append({"event_type": "step.delta", "index": 0,
                           "delta": {"type": "text", "text": word if i == 0 else " " + word}})
        events += [{"event_type": "step.stop", "index": 0},
                   {"event_type": "interaction.completed", "interaction": doc}]
        for n, event in enumerate(events):
            event["event_id"] = f"evt_{n}"
            await resp.write(b"event: " + event["event_type"].encode() + b"\ndata: " + orjson.dumps(event)
                             + b"\n\n")
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp

    def _mine(self, request: web.Request, what: str) -> tuple[str, StoredInteraction] | web.Response:
        who = self._auth(request)
        if isinstance(who, web.Response):
            return who
        key, owner = who
        rid = request.match_info["id"]
        found = self.stored.get(rid)
        if found is None or found.owner != owner:
            self._log(key, "", 404, "not_found", False, what)
            return _not_found(rid)
        self._log(key, str(found.doc.get("model", "")), 200, "ok", False, what)
        return rid, found

    async def _get(self, request: web.Request) -> web.StreamResponse:
        mine = self._mine(request, "interactions.get")
        if isinstance(mine, web.Response):
            return mine
        _, found = mine
        if request.query.get("stream") == "true":
            answer = _text_of(found.doc["steps"][-1]["content"])
            return await self._stream(request, found.doc, answer)
        return _json(found.doc)

    async def _delete(self, request: web.Request) -> web.Response:
        mine = self._mine(request, "interactions.delete")
        if isinstance(mine, web.Response):
            return mine
        del self.stored[mine[0]]
        return _json({})

    async def _cancel(self, request: web.Request) -> web.Response:
        mine = self._mine(request, "interactions.cancel")
        if isinstance(mine, web.Response):
            return mine
        doc = mine[1].doc
        if doc["status"] == "in_progress":
            doc["status"] = "cancelled"
        return _json(doc)
