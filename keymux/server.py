"""Running the app: event loop (uvloop when installed), listening socket, graceful stop."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from aiohttp import web

from keymux import logsetup
from keymux.app import GATEWAY, create_app
from keymux.config.schema import Config
from keymux.server_limits import LimitedSite

log = logging.getLogger("keymux")


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def _tune_gc() -> None:
    """Every request leaves objects (ledger rows, metrics) that live until the next batch write, so
    they survive young collections; full collections would then walk everything loaded at start.
    Freezing the start-up heap and collecting less eagerly is worth ~7% throughput (bench/RESULTS.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)  # young collections less often; old ones as usual


async def start(config: Config, host: str, port: int, *, reuse_port: bool = False, **kwargs: object) -> web.AppRunner:
    app = create_app(config, **kwargs)  # type: ignore[arg-type]
    # handler_cancellation: a client that disconnects cancels its request, so its upstream call and lease end too.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, handler_cancellation=True,
                           keepalive_timeout=config.server.keepalive_timeout)
    await runner.setup()
    site = LimitedSite(runner, config.server, host, port, reuse_address=True, reuse_port=reuse_port or None)
    await site.start()
    _tune_gc()
    groups = app[GATEWAY].live.snapshot.names
    log.info("keymux listening on http://%s:%d (%d groups: %s; %d keys)", host, port, len(groups),
             ", ".join(groups), len({d.fingerprint for d in config.deployments}))
    return runner


async def _serve(config: Config, host: str, port: int, reuse_port: bool = False, watch: bool = False) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before start-up: a stop during it still ends gracefully
        loop.add_signal_handler(sig, stop.set)
    runner = await start(config, host, port, reuse_port=reuse_port)
    live = runner.app[GATEWAY].changes  # config reload: SIGHUP, and --watch (polls the file's mtime)
    if hasattr(signal, "SIGHUP"):
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(live.reload()))
    if watch:
        live.watch()
    try:
        await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()


def run(config: Config, host: str, port: int, workers: int = 1, reuse_port: bool = False,
        watch: bool = False) -> None:
    if workers > 1:
        _run_workers(config, host, port, workers)
        return
    loop = new_loop()
    try:
        loop.run_until_complete(_serve(config, host, port, reuse_port, watch))
    finally:
        loop.close()
        logsetup.flush()


def _run_workers(config: Config, host: str, port: int, workers: int) -> None:
    """N forked processes, one port (SO_REUSEPORT: the kernel spreads connections). The caller (cli) has
    checked that key state is shared; a worker that dies takes the others down, so nothing half-runs."""
    import multiprocessing
    import os

    ctx = multiprocessing.get_context("fork")  # before any event loop exists in this process
    procs = [ctx.Process(target=run, args=(config, host, port, 1, True), name=f"keymux-worker-{i}", daemon=True)
             for i in range(workers)]
    for p in procs:
        p.start()
    log.info("%d workers on port %d (pids %s)", workers, port, ", ".join(str(p.pid) for p in procs))
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.is_alive() and p.pid:
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while any(p.is_alive() for p in procs):
        for p in procs:
            p.join(0.5)
            if not stopping and p.exitcode not in (None, 0):
                log.error("worker %s exited with %s; stopping the others", p.name, p.exitcode)
                stop()
