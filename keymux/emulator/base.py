"""What both emulators share: key table, clock, quota book, call log, faults, serving."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, Self

import orjson
from aiohttp import web

from keymux.clock import Clock, SystemClock
from keymux.emulator import faults as wire_faults
from keymux.emulator.quota import Call, EmuKey, FaultQueue, QuotaBook

HANG_SECONDS = 3600.0


class EmulatorBase:
    """Serve with `await emu.serve()` (returns the base URL) or `async with emu:`."""

    def __init__(
        self,
        keys: dict[str, EmuKey],
        clock: Clock | None = None,
        models: list[str] | None = None,
        *,
        keep_calls: bool = True,
    ) -> None:
        self.keys: dict[str, EmuKey] = dict(keys)
        self.clock: Clock = clock or SystemClock()
        self.models: list[str] = list(models) if models else list(self.default_models())
        self.calls: list[Call] = []
        self.headers: list[dict[str, str]] = []  # each request's headers as received (names lower-cased)
        self.keep_calls = keep_calls  # False: only `stats` are kept (long benchmark runs)
        self.stats: Counter[str] = Counter()  # answers by kind, always kept
        self.status_stats: Counter[int] = Counter()  # answers by HTTP status, always kept
        self.latency: float = 0.0  # real seconds of delay before answering
        # hold(): answers wait until release(), so a test can keep a request in flight as long as it needs.
        self._gate: asyncio.Event | None = None
        self.held = 0  # requests that reached the gate so far
        self._arrived = asyncio.Condition()
        self.quota = QuotaBook()
        self.faults = FaultQueue()
        self.wire = wire_faults.WireFaults()  # broken answers on the wire: emulator/faults.py
        self.base_url: str | None = None
        self._runner: web.AppRunner | None = None
        self._hangs: set[asyncio.Future[Any]] = set()
        self._seq = 0

    # ------------------------------------------------------------ subclass hooks

    @staticmethod
    def default_models() -> list[str]:
        raise NotImplementedError

    def app(self) -> web.Application:
        raise NotImplementedError

    # ------------------------------------------------------------ public helpers

    def inject(self, key: str | None, *faults: str) -> None:
        """Queue one-shot faults for the next requests with `key` (None: any key).

        Faults: "503", "500", "bare429", "array429", "timeout", "midstream"; Gemini only: "spendcap", "prepay", "tierdrop" (the 2026 429 causes);
        OpenAI only: "content_policy" (a 400 safety refusal)."""
        self.faults.push(key, faults)

    def count(
        self,
        key: str | None = None,
        status: int | None = None,
        kind: str | None = None,
        *,
        model: str | None = None,
        endpoint: str | None = None,
        stream: bool | None = None,
    ) -> int:
        n = 0
        for c in self.calls:
            if (
                (key is None or c.key == key)
                and (status is None or c.status == status)
                and (kind is None or c.kind == kind)
                and (model is None or c.model == model)
                and (endpoint is None or c.endpoint == endpoint)
                and (stream is None or c.stream == stream)
            ):
                n += 1
        return n

    def hold(self) -> None:
        """From now on every answer waits until `release()`."""
        self._gate = asyncio.Event()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()
            self._gate = None

    async def wait_held(self, n: int = 1) -> None:
        """Until `n` requests are waiting at (or have passed) the gate."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: self.held >= n)

    def reset(self) -> None:
        """Forget calls, stats, quota counters and pending faults."""
        self.calls.clear()
        self.headers.clear()
        self.stats.clear()
        self.status_stats.clear()
        self.quota.reset()
        self.faults.clear()
        self.wire.clear()

    # ------------------------------------------------------------ serving

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._runner is not None:
            assert self.base_url is not None
            return self.base_url
        app = self.app()
        app.middlewares.append(self._record_headers)
        wire_faults.install(app, self)
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        sock_host, sock_port = runner.addresses[0][:2]
        shown = host if host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in shown:
            shown = f"[{shown}]"
        self.base_url = f"http://{shown}:{sock_port}"
        return self.base_url

    async def close(self) -> None:
        self.release()
        for fut in list(self._hangs):
            fut.cancel()
        self._hangs.clear()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        self.base_url = None

    async def __aenter__(self) -> Self:
        await self.serve()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ internals

    def _log(self, key: str, model: str, status: int, kind: str, stream: bool, endpoint: str) -> None:
        self.stats[kind] += 1
        self.status_stats[status] += 1
        if self.keep_calls:
            self.calls.append(Call(key, model, status, kind, stream, self.clock.time(), endpoint))

    @web.middleware
    async def _record_headers(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.keep_calls:
            self.headers.append({k.lower(): v for k, v in request.headers.items()})
        return await handler(request)

    def _next_id(self) -> int:
        self._seq += 1
        return self._seq

    async def _delay(self) -> None:
        gate = self._gate
        if gate is not None:
            async with self._arrived:
                self.held += 1
                self._arrived.notify_all()
            await gate.wait()
        if self.latency > 0:
            await asyncio.sleep(self.latency)

    async def _hang(self) -> None:
        """The "timeout" fault: hang (on the real loop) until the client gives up or we close."""
        fut = asyncio.ensure_future(asyncio.sleep(HANG_SECONDS))
        self._hangs.add(fut)
        try:
            await fut
        finally:
            self._hangs.discard(fut)

    async def _stats_handler(self, request: web.Request) -> web.Response:
        body = {
            "total": sum(self.stats.values()),
            "kinds": dict(self.stats),
            "statuses": {str(k): v for k, v in self.status_stats.items()},
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")
