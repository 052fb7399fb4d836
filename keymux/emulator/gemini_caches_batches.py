"""The emulator's context caches (`cachedContents` CRUD) and Batch mode (`models/{m}:batchGenerateContent`,
`batches/{id}` get / cancel / delete, list), each owned by the project of the key that created it: another
project's key gets 403 PERMISSION_DENIED on caches (and on a generateContent naming one), 404 on batches.

A batch runs on the emulator's clock as Google's do: BATCH_STATE_PENDING, then BATCH_STATE_RUNNING after
`BATCH_STARTS` seconds, then BATCH_STATE_SUCCEEDED after `BATCH_TAKES` (`done: true`, each inlined response
with its usageMetadata, in `metadata.output` and `response`). A cancel before then ends it
BATCH_STATE_CANCELLED (done, with a CANCELLED error and no output).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from keymux.emulator import gemini_wire as W
from keymux.emulator.paging import page
from keymux.providers.durations import parse_go_duration

JSON_CT = "application/json; charset=UTF-8"
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
BATCH_STARTS = 5.0  # seconds pending
BATCH_TAKES = 120.0  # seconds from creation to done


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, headers={"Content-Type": JSON_CT})


def _texts(node: Any) -> str:
    if isinstance(node, dict):
        return " ".join([node["text"]] if isinstance(node.get("text"), str) else
                        [_texts(v) for v in node.values() if isinstance(v, (dict, list))])
    if isinstance(node, list):
        return " ".join(_texts(n) for n in node)
    return ""


class CachesAndBatches:
    def __init__(self, auth: Callable[[web.Request], tuple[str, str] | web.Response],
                 log: Callable[[str, str, int, str, bool, str], None], now: Callable[[], float]) -> None:
        self._auth, self._log, self._now = auth, log, now
        self.caches: dict[str, tuple[str, dict[str, Any]]] = {}  # name -> (owner, CachedContent)
        self.batches: dict[str, tuple[str, dict[str, Any]]] = {}  # name -> (owner, Operation)
        self._ids = itertools.count(1)

    def caches_of(self, owner: str) -> list[str]:
        return [n for n, (o, _) in self.caches.items() if o == owner]

    def batches_of(self, owner: str) -> list[str]:
        return [n for n, (o, _) in self.batches.items() if o == owner]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/cachedContents", self._create_cache)
        app.router.add_get("/v1beta/cachedContents", self._list_caches)
        app.router.add_get("/v1beta/cachedContents/{id}", self._get_cache)
        app.router.add_patch("/v1beta/cachedContents/{id}", self._patch_cache)
        app.router.add_delete("/v1beta/cachedContents/{id}", self._delete_cache)
        app.router.add_get("/v1beta/batches", self._list_batches)
        app.router.add_get("/v1beta/batches/{id}", self._get_batch)
        app.router.add_post("/v1beta/batches/{id}:cancel", self._cancel_batch)
        app.router.add_delete("/v1beta/batches/{id}", self._delete_batch)

    def _stamp(self, t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")

    # -- caches ----------------------------------------------------------------------------
    def refused(self, request_body: Any, owner: str, model: str) -> web.Response | None:
        name = request_body.get("cachedContent") if isinstance(request_body, dict) else None
        if not isinstance(name, str):
            return None
        found = self.caches.get(name)
        if found is None or found[0] != owner:
            return _json(W.status_body(403, "PERMISSION_DENIED",
                                       f"CachedContent not found (or permission denied): {name}"), 403)
        if found[1]["model"] != f"models/{model}":
            return _json(W.bad_request(f"Model used by GenerateContent request (models/{model}) and "
                                       f"CachedContent ({found[1]['model']}) has to be the same."), 400)
        return None

    def cached_tokens(self, name: str) -> int:
        found = self.caches.get(name)
        return int(found[1]["usageMetadata"]["totalTokenCount"]) if found else 0

    async def _create_cache(self, request: web.Request) -> web.Response:
        who = self._auth(request)
        if isinstance(who, web.Response):
            return who
        key, owner = who
        body = orjson.loads(await request.read() or b"{}")
        model = body.get("model")
        if not isinstance(model, str) or not model.startswith("models/"):
            return _json(W.bad_request("model is required, as models/{model}."), 400)
        ttl = parse_go_duration(str(body.get("ttl", "3600s"))) or 3600.0
        now = self._now()
        name = f"cachedContents/emucache{next(self._ids):04d}"
        doc = {"name": name, "model": model, "displayName": body.get("displayName", ""),
               "usageMetadata": {"totalTokenCount": max(1, len(_texts(body.get("contents"))) // 4)},
               "createTime": self._stamp(now), "updateTime": self._stamp(now), "expireTime": self._stamp(now + ttl)}
        self.caches[name] = (owner, doc)
        self._log(key, model.removeprefix("models/"), 200, "ok", False, "cachedContents.create")
        return _json(doc)

    def _my_cache(self, request: web.Request, what: str) -> tuple[str, dict[str, Any]] | web.Response:
        who = self._auth(request)
        if isinstance(who, web.Response):
            return who
        key, owner = who
        name = f"cachedContents/{request.match_info['id']}"
        found = self.caches.get(name)
        if found is None or found[0] != owner:
            self._log(key, "", 403, "denied", False, what)
            return _json(W.status_body(403, "PERMISSION_DENIED",
                                       f"CachedContent not found (or permission denied): {name}"), 403)
        self._log(key, "", 200, "ok", False, what)
        return name, found[1]

    async def _get_cache(self, request: web.Request) -> web.Response:
        mine = self._my_cache(request, "cachedContents.get")
        return mine if isinstance(mine, web.Response) else _json(mine[1])

    async def _patch_cache(self, request: web.Request) -> web.Response:
        mine = self._my_cache(request, "cachedContents.patch")
        if isinstance(mine, web.Response):
            return mine
        body = orjson.loads(await request.read() or b"{}")
        doc = mine[1]
        if "ttl" in body:
            doc["expireTime"] = self._stamp(self._now() + (parse_go_duration(str(body["ttl"])) or 0))
        doc["updateTime"] = self._stamp(self._now())
        return _json(doc)

    async def _delete_cache(self, request: web.Request) -> web.Response:
        mine = self._my_cache(request, "cachedContents.delete")
        if isinstance(mine, web.Response):
            return mine
        del self.caches[mine[0]]
        return _json({})

    async def _list_caches(self, request: web.Request) -> web.Response:
        who = self._auth(request)
        if isinstance(who, web.Response):
            return who
        return _json(*page([doc for o, doc in self.caches.values() if o == who[1]], "cachedContents",
                           request, 50, 1000))

    # -- batches ---------------------------------------------------------------------------
    def create_batch(self, key: str, owner: str, model: str, body: Any) -> web.Response:
        batch = body.get("batch") if isinstance(body, dict) else None
        inline = (((batch or {}).get("inputConfig") or {}).get("requests") or {}).get("requests")
        if not isinstance(inline, list) or not inline:
            return _json(W.bad_request("batch.inputConfig.requests.requests is required."), 400)
        responses = []
        for item in inline:
            prompt = _texts((item or {}).get("request"))
            tokens = max(1, len(prompt) // 4)
            responses.append({"response": {
                "candidates": [{"content": {"parts": [{"text": f"batch answer: {prompt[:40]}"}], "role": "model"},
                                "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": tokens, "candidatesTokenCount": tokens,
                                  "totalTokenCount": 2 * tokens}, "modelVersion": model},
                **({"metadata": item["metadata"]} if isinstance(item, dict) and "metadata" in item else {})})
        name = f"batches/emubatch{next(self._ids):04d}"
        self.batches[name] = (owner, {"name": name, "created": self._now(), "responses": responses,
                                      "model": f"models/{model}", "cancelled": None,
                                      "displayName": (batch or {}).get("displayName", "")})
        self._log(key, model, 200, "ok", False, "batchGenerateContent")
        return _json(self._operation(name))

    def _operation(self, name: str) -> dict[str, Any]:
        """The batch's Operation as Google answers it now."""
        job = self.batches[name][1]
        created, responses, now = job["created"], job["responses"], self._now()
        n = str(len(responses))
        meta: dict[str, Any] = {"@type": BATCH_TYPE, "model": job["model"], "displayName": job["displayName"],
                                "createTime": self._stamp(created), "name": name}
        cancelled: float | None = job["cancelled"]
        ended = cancelled if cancelled is not None else created + BATCH_TAKES if now >= created + BATCH_TAKES else None
        if cancelled is not None:
            meta |= {"state": "BATCH_STATE_CANCELLED", "updateTime": self._stamp(cancelled),
                     "endTime": self._stamp(cancelled),
                     "batchStats": {"requestCount": n, "pendingRequestCount": n}}
            return {"name": name, "metadata": meta, "done": True,
                    "error": {"code": 1, "message": "The batch was cancelled."}}
        if ended is None:
            running = now >= created + BATCH_STARTS
            meta |= {"state": "BATCH_STATE_RUNNING" if running else "BATCH_STATE_PENDING",
                     "updateTime": self._stamp(created + BATCH_STARTS if running else created),
                     "batchStats": {"requestCount": n, "pendingRequestCount": n}}
            return {"name": name, "metadata": meta}
        output = {"inlinedResponses": {"inlinedResponses": responses}}
        meta |= {"state": "BATCH_STATE_SUCCEEDED", "updateTime": self._stamp(ended), "endTime": self._stamp(ended),
                 "output": output, "batchStats": {"requestCount": n, "successfulRequestCount": n}}
        return {"name": name, "metadata": meta, "done": True, "response": {"@type": BATCH_TYPE + "Output", **output}}

    def _my_batch(self, request: web.Request, what: str) -> tuple[str, dict[str, Any]] | web.Response:
        who = self._auth(request)
        if isinstance(who, web.Response):
            return who
        key, owner = who
        name = f"batches/{request.match_info['id']}"
        found = self.batches.get(name)
        if found is None or found[0] != owner:
            self._log(key, "", 404, "not_found", False, what)
            return _json(W.status_body(404, "NOT_FOUND", f"Batch {name} not found."), 404)
        self._log(key, "", 200, "ok", False, what)
        return name, found[1]

    async def _get_batch(self, request: web.Request) -> web.Response:
        mine = self._my_batch(request, "batches.get")
        return mine if isinstance(mine, web.Response) else _json(self._operation(mine[0]))

    async def _cancel_batch(self, request: web.Request) -> web.Response:
        mine = self._my_batch(request, "batches.cancel")
        if isinstance(mine, web.Response):
            return mine
        if not self._operation(mine[0]).get("done"):
            mine[1]["cancelled"] = self._now()
        return _json({})

    async def _delete_batch(self, request: web.Request) -> web.Response:
        mine = self._my_batch(request, "batches.delete")
        if isinstance(mine, web.Response):
            return mine
        del self.batches[mine[0]]
        return _json({})

    async def _list_batches(self, request: web.Request) -> web.Response:
        who = self._auth(request)
        if isinstance(who, web.Response):
            return who
        return _json(*page([self._operation(name) for name, (o, _) in self.batches.items() if o == who[1]],
                           "operations", request, 50, 1000))
