"""A Gemini batch's usage in the ledger, once the batch has ended.

A batch created through keymux (`models/{m}:batchGenerateContent`) has its ledger row at creation, with no
tokens (Google has not run it yet), and is remembered in the state store (`track_job`). Its usage is
written when keymux learns it has ended: a client's GET of the batch that shows it done, or the watcher,
which every `interval` seconds asks the owning key about each batch still remembered. Whoever removes the
job from the store (`untrack_job`, atomic in Redis) writes the row, so it is written once across replicas;
the row's id is the batch's name, so a second write (a replica that lost Redis meanwhile) is a no-op.

The row: operation `batches.usage`, the client that created the batch, the sum of its inlined responses'
usageMetadata, priced at the Batch tier (half price). A batch whose output is a file (`responsesFile`)
carries no usage in its answer: it is recorded with none.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from keymux.clock import Clock, Timer
from keymux.errors import KeymuxError, NotFound
from keymux.exchange import Exchange, Usage
from keymux.ids import new_id
from keymux.pool import Pool
from keymux.request import Handler, Observer, Reply, Request, Trace
from keymux.translate.providers.gemini import usage as gemini_usage

log = logging.getLogger("keymux.batches")

POLL_EVERY = 60.0  # seconds between the watcher's rounds


def batch_usage(doc: dict[str, Any]) -> Usage | None:
    """The summed usage of a done batch's inlined responses (None: it has none, e.g. a file output)."""
    output = (doc.get("metadata") or {}).get("output") or doc.get("response") or {}
    items = (output.get("inlinedResponses") or {}).get("inlinedResponses") if isinstance(output, dict) else None
    if not isinstance(items, list):
        return None
    total = Usage(tier="batch")
    for item in items:
        u = gemini_usage(((item or {}).get("response") or {}).get("usageMetadata"))
        if u is None:
            continue
        total.prompt += u.prompt
        total.completion += u.completion
        total.reasoning += u.reasoning
        total.total += u.total
        total.cached += u.cached
        for mine, theirs in (("prompt_modalities", u.prompt_modalities),
                             ("completion_modalities", u.completion_modalities)):
            if theirs:
                merged = getattr(total, mine) or {}
                for k, n in theirs.items():
                    merged[k] = merged.get(k, 0) + n
                setattr(total, mine, merged)
    return total


class BatchUsage:
    def __init__(self, pool: Pool, handler: Handler, observers: list[Observer], clock: Clock,
                 interval: float = POLL_EVERY) -> None:
        self.pool = pool
        self.handler = handler  # the relay: the watcher's polls are keymux's own, not clients' requests
        self.observers = observers  # the pipeline's: the usage row goes where every request's row goes
        self.clock = clock
        self.interval = interval
        self.polling: asyncio.Task[int] | None = None  # the round in progress (tests await it)
        self._timer: Timer | None = None
        self._stopped = False

    async def observe(self, request: Request, ex: Exchange, fingerprint: str) -> None:
        """Told by the relay of every resource call a key answered."""
        if request.operation == "batchGenerateContent":
            model = next((d.model for d in self.pool.pinned_candidates(request.group, fingerprint)), request.model)
            for name, _, _ in getattr(ex, "created", ()):
                if name.startswith("batches/"):
                    info = {"group": request.group, "model": request.model, "upstream_model": model,
                            "client": request.client, "request_id": request.request_id}
                    await self.pool.store.track_job(name, orjson.dumps(info).decode())
        for doc in getattr(ex, "ended", ()):
            await self.ended(doc, fingerprint)

    async def ended(self, doc: dict[str, Any], fingerprint: str) -> bool:
        """Record a done batch's usage, if it is ours and nobody recorded it yet."""
        name = doc.get("name")
        if not isinstance(name, str) or not name.startswith("batches/"):
            return False
        found = await self.pool.store.untrack_job(name)
        if found is None:
            return False
        info = orjson.loads(found)
        request = Request(surface="gemini", operation="batches.usage", group=info["group"], model=info["model"],
                          body={}, raw=b"", stream=False, request_id=info["request_id"], client=info["client"],
                          metered=False, path=name, http_method="GET", resources=(name,))
        trace = Trace(request, self.clock.time(), self.observers)
        trace.row_id = f"batch:{name}"
        trace.usage = batch_usage(doc)
        trace.answered_by(fingerprint, info["upstream_model"])
        state = (doc.get("metadata") or {}).get("state", "")
        trace.finish(200, "ok", f"{name} ended: {state}" if state else f"{name} ended")
        return True

    # -- the watcher ---------------------------------------------------------------------------
    def start(self) -> None:
        if not self._stopped:
            self._timer = self.clock.call_at(self.clock.time() + self.interval, self._round)

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
        if self.polling is not None:
            self.polling.cancel()

    def _round(self) -> None:
        if self.polling is not None and not self.polling.done():
            self.start()
            return
        self.polling = asyncio.ensure_future(self._guarded())
        self.polling.add_done_callback(lambda _: self.start())

    async def _guarded(self) -> int:
        try:
            return await self.poll()
        except Exception:  # noqa: BLE001 - a bug in one round must not stop the next ones
            log.exception("batch watcher round failed")
            return 0

    async def poll(self) -> int:
        """Ask each remembered batch's key about it once; how many were asked."""
        asked = 0
        for name in await self.pool.store.tracked_jobs():
            request = Request(surface="gemini", operation="batches.get", group="", model="", body={}, raw=b"",
                              stream=False, request_id=new_id(), client="keymux", metered=False, path=name,
                              http_method="GET", resources=(name,))
            asked += 1
            try:
                reply = await self.handler(request, Trace(request, self.clock.time(), []))
            except NotFound:  # its pin expired: nobody can ask about it any more
                await self.pool.store.untrack_job(name)
                continue
            except KeymuxError as e:  # its key is cooling or disabled: next round
                log.info("batch %s not polled: %s", name, e.message)
                continue
            if isinstance(reply, Reply) and reply.status == 404:  # deleted upstream
                await self.pool.store.untrack_job(name)
        return asked
