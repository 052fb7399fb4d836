"""The emulator's long-running operations under a model (`models/{m}:predictLongRunning`, Veo), each owned by
the project of the key that started it: another project's key gets 404 NOT_FOUND, as Google answers.

An operation runs on the emulator's clock: `{name}` alone while it runs, then after `VIDEO_TAKES` seconds
`done: true` with `response.generateVideoResponse.generatedSamples[].video.uri`. Google's Developer API has
no cancel or delete for these, and no top-level `operations` collection: neither has the emulator.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from keymux.emulator import gemini_wire as W

JSON_CT = "application/json; charset=UTF-8"
VIDEO_TAKES = 30.0  # seconds from start to done
RESPONSE_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, headers={"Content-Type": JSON_CT})


class Operations:
    def __init__(self, auth: Callable[[web.Request], tuple[str, str] | web.Response],
                 log: Callable[[str, str, int, str, bool, str], None], now: Callable[[], float],
                 base: Callable[[], str]) -> None:
        self._auth, self._log, self._now, self._base = auth, log, now, base
        self.ops: dict[str, tuple[str, float]] = {}  # name -> (owner, started at)
        self._ids = itertools.count(1)

    def owned_by(self, owner: str) -> list[str]:
        return [n for n, (o, _) in self.ops.items() if o == owner]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1beta/models/{model}/operations", self._list)
        app.router.add_get("/v1beta/models/{model}/operations/{id}", self._get)

    def start(self, key: str, owner: str, model: str, body: Any) -> web.Response:
        instances = body.get("instances") if isinstance(body, dict) else None
        if not isinstance(instances, list) or not instances or not isinstance(instances[0], dict) \
                or not instances[0].get("prompt"):
            self._log(key, model, 400, "bad_request", False, "predictLongRunning")
            return _json(W.bad_request("instances[0].prompt is required."), 400)
        name = f"models/{model}/operations/emuop{next(self._ids):04d}"
        self.ops[name] = (owner, self._now())
        self._log(key, model, 200, "ok", False, "predictLongRunning")
        return _json({"name": name})

    def _operation(self, name: str) -> dict[str, Any]:
        if self._now() < self.ops[name][1] + VIDEO_TAKES:
            return {"name": name}
        video = f"{self._base()}/v1beta/files/{name.rsplit('/', 1)[1]}:download?alt=media"
        return {"name": name, "done": True, "response": {"@type": RESPONSE_TYPE, "generateVideoResponse": {
            "generatedSamples": [{"video": {"uri": video}}]}}}

    async def _get(self, request: web.Request) -> web.Response:
        who = self._auth(request)
        if isinstance(who, web.Response):
            return who
        key, owner = who
        model = request.match_info["model"]
        name = f"models/{model}/operations/{request.match_info['id']}"
        found = self.ops.get(name)
        if found is None or found[0] != owner:
            self._log(key, model, 404, "not_found", False, "operations.get")
            return _json(W.status_body(404, "NOT_FOUND", f"Operation {name} not found."), 404)
        self._log(key, model, 200, "ok", False, "operations.get")
        return _json(self._operation(name))

    async def _list(self, request: web.Request) -> web.Response:
        who = self._auth(request)
        if isinstance(who, web.Response):
            return who
        prefix = f"models/{request.match_info['model']}/operations/"
        mine = [self._operation(n) for n, (o, _) in self.ops.items() if o == who[1] and n.startswith(prefix)]
        return _json({"operations": mine} if mine else {})
