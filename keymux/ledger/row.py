"""One ledger row: what one client request did and cost. Built from the request's finished `Trace`."""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from keymux.ids import new_id
from keymux.pricing import Cost
from keymux.request import Trace

COLUMNS = ("id", "at", "sec", "request_id", "surface", "client", "grp", "key", "upstream_model", "status",
           "outcome", "attempts", "n_attempts", "prompt_tokens", "completion_tokens", "reasoning_tokens",
           "total_tokens", "cost", "value", "free_tier", "latency", "ttfb", "stream", "detail", "queue_wait")
ATTEMPT_COLUMNS = ("row_id", "seq", "at", "key", "outcome")
DETAIL_MAX = 300


class Row(NamedTuple):
    id: str  # unique per row (request ids come from clients and may repeat): writes are idempotent
    at: float  # clock time the request arrived
    request_id: str
    surface: str
    client: str
    group: str
    key: str | None  # fingerprint of the key that answered (None: refused, or every attempt failed)
    upstream_model: str | None
    status: int
    outcome: str  # ok | client_error | refused | failed | broken
    attempts: tuple[tuple[str, str], ...]  # (fingerprint, upstream outcome), in order
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    total_tokens: int
    cost: float  # USD charged
    value: float  # USD at list price (free tier: what it would have cost)
    free_tier: bool
    latency: float | None
    ttfb: float | None
    stream: bool
    detail: str = ""
    queue_wait: float = 0.0  # seconds spent queued for a key (migration 2)

    @classmethod
    def from_trace(cls, trace: Trace, cost: Cost) -> Row:
        r, u = trace.request, trace.usage
        return cls(id=new_id(), at=trace.at, request_id=r.request_id, surface=r.surface,
                   client=r.client, group=r.group, key=trace.key, upstream_model=trace.upstream_model,
                   status=trace.status, outcome=trace.outcome, attempts=tuple(trace.attempts),
                   prompt_tokens=u.prompt if u else 0, completion_tokens=u.completion if u else 0,
                   reasoning_tokens=u.reasoning if u else 0, total_tokens=u.total if u else 0,
                   cost=cost.cost, value=cost.value, free_tier=cost.free, latency=trace.latency, ttfb=trace.ttfb,
                   stream=r.stream, detail=trace.detail[:DETAIL_MAX], queue_wait=trace.queue_wait)

    def values(self) -> tuple[Any, ...]:
        return (self.id, self.at, int(self.at), self.request_id, self.surface, self.client, self.group, self.key,
                self.upstream_model, self.status, self.outcome, orjson.dumps(self.attempts).decode(),
                len(self.attempts), self.prompt_tokens, self.completion_tokens, self.reasoning_tokens,
                self.total_tokens, self.cost, self.value, int(self.free_tier), self.latency, self.ttfb,
                int(self.stream), self.detail, self.queue_wait)

    def attempt_values(self) -> list[tuple[Any, ...]]:
        """Rows for the `attempts` table: the failed attempts only. Nothing reads the successful ones from
        there (`attempts` above holds the whole list), and most requests have only a successful one."""
        return [(self.id, i, self.at, fp, outcome) for i, (fp, outcome) in enumerate(self.attempts)
                if outcome != "ok"]


def row_dict(values: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
    """A row read back from the database, as the admin API shows it."""
    d = dict(zip(COLUMNS, values))
    d.pop("sec", None)
    d["group"] = d.pop("grp")
    d["attempts"] = orjson.loads(d["attempts"]) if d["attempts"] else []
    d["free_tier"] = bool(d["free_tier"])
    d["stream"] = bool(d["stream"])
    return d
