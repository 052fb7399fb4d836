"""Requests that waited in the queue for the key a resource pinned them to (a pipeline observer).

A request naming an interaction, file, cache or batch can only go to the key that owns it; when that key
is cooling, the request waits for it rather than going elsewhere. This counts those waits per key and keeps
the latest, for the dashboard and `GET /admin/pins`. In this process only: each replica counts its own.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from keymux.request import Trace

KEEP = 50


class PinWaits:
    def __init__(self, keep: int = KEEP) -> None:
        self.counts: dict[str, int] = {}  # key fingerprint -> requests that waited for it
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)

    def __call__(self, trace: Trace) -> None:
        key = trace.pinned
        if key is None or trace.queue_wait <= 0:
            return
        self.counts[key] = self.counts.get(key, 0) + 1
        r = trace.request
        kind = r.resources[0].split("/", 1)[0] if r.resources else ""
        self.recent.appendleft({"at": trace.at, "key": key, "kind": kind, "operation": r.operation,
                                "wait": round(trace.queue_wait, 3), "status": trace.status,
                                "outcome": trace.outcome})
