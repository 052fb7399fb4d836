"""Running the app: event loop (uvloop when installed), listening socket, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from keymux.app import create_app
from keymux.config.schema import Config
from keymux.surfaces.common import GATEWAY

log = logging.getLogger("keymux")


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


async def start(config: Config, host: str, port: int, **kwargs: object) -> web.AppRunner:
    app = create_app(config, **kwargs)  # type: ignore[arg-type]
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    groups = app[GATEWAY].group_names()
    log.info("keymux listening on http://%s:%d (%d groups: %s; %d keys)", host, port, len(groups),
             ", ".join(groups), len({d.fingerprint for d in config.deployments}))
    return runner


async def _serve(config: Config, host: str, port: int) -> None:
    runner = await start(config, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()


def run(config: Config, host: str, port: int) -> None:
    loop = new_loop()
    try:
        loop.run_until_complete(_serve(config, host, port))
    finally:
        loop.close()
