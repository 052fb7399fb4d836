"""How far this process's resident memory rose while something streamed (sampled every 10 ms)."""

from __future__ import annotations

import asyncio


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class RssWatch:
    """Started on creation (inside a running loop); `stop()` ends the sampling; `grown` is peak minus start."""

    def __init__(self) -> None:
        self.base = self.peak = rss()
        self._task = asyncio.ensure_future(self._sample())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss())
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        self._task.cancel()

    @property
    def grown(self) -> int:
        return self.peak - self.base
