"""Prometheus metrics at `/metrics`, in the text exposition format (version 0.0.4).

Hand-written rather than prometheus-client: a few counters and histograms keyed by label tuples, one
registry per gateway (tests run several in one process), and gauges read from the pool and the
ledger at scrape time. Counters come from the same ledger rows that are written to the database, so
the two always agree. Keys appear only as fingerprints.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import orjson

from keymux.pool.store import State

if TYPE_CHECKING:
    from keymux.ledger import Ledger, Row
    from keymux.pool import Pool

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
WAIT_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
Labels = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Labels, values: Iterable[object]) -> str:
    pairs = ",".join(f'{n}="{_escape(str(v))}"' for n, v in zip(names, values))
    return "{" + pairs + "}" if pairs else ""


def _num(v: float) -> str:
    f = float(v)
    if f == math.inf:
        return "+Inf"
    return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)


class Counter:
    def __init__(self, name: str, help: str, labels: Labels) -> None:
        self.name, self.help, self.labels = name, help, labels
        self.values: dict[tuple[object, ...], float] = {}

    def inc(self, key: tuple[object, ...], amount: float = 1.0) -> None:
        values = self.values
        values[key] = values.get(key, 0.0) + amount

    def render(self, out: list[str]) -> None:
        out.append(f"# HELP {self.name} {self.help}")
        out.append(f"# TYPE {self.name} counter")
        for key, v in sorted(self.values.items(), key=lambda kv: tuple(map(str, kv[0]))):
            out.append(f"{self.name}{_labels(self.labels, key)} {_num(v)}")


class Histogram:
    def __init__(self, name: str, help: str, labels: Labels, buckets: tuple[float, ...]) -> None:
        self.name, self.help, self.labels, self.buckets = name, help, labels, buckets
        self.values: dict[tuple[object, ...], list[float]] = {}  # per label set: bucket counts..., sum, count

    def observe(self, key: tuple[object, ...], value: float) -> None:
        v = self.values.get(key)
        if v is None:
            v = self.values[key] = [0.0] * (len(self.buckets) + 2)
        i = bisect.bisect_left(self.buckets, value)
        if i < len(self.buckets):
            v[i] += 1
        v[-2] += value
        v[-1] += 1

    def render(self, out: list[str]) -> None:
        out.append(f"# HELP {self.name} {self.help}")
        out.append(f"# TYPE {self.name} histogram")
        names = self.labels + ("le",)
        for key, v in sorted(self.values.items(), key=lambda kv: tuple(map(str, kv[0]))):
            running = 0.0
            for bound, n in zip(self.buckets, v):
                running += n
                out.append(f"{self.name}_bucket{_labels(names, (*key, _num(bound)))} {_num(running)}")
            out.append(f"{self.name}_bucket{_labels(names, (*key, '+Inf'))} {_num(v[-1])}")
            out.append(f"{self.name}_sum{_labels(self.labels, key)} {_num(v[-2])}")
            out.append(f"{self.name}_count{_labels(self.labels, key)} {_num(v[-1])}")


def _gauge(out: list[str], name: str, help: str, labels: Labels, samples: Iterable[tuple[tuple[object, ...], float]]) -> None:
    out.append(f"# HELP {name} {help}")
    out.append(f"# TYPE {name} gauge")
    for key, v in samples:
        out.append(f"{name}{_labels(labels, key)} {_num(v)}")


class Metrics:
    def __init__(self) -> None:
        self.requests = Counter("keymux_requests_total",
                                "Client requests by model group, surface, operation, status and outcome.",
                                ("group", "surface", "operation", "status", "outcome"))
        self.upstream = Counter("keymux_upstream_calls_total", "Upstream calls by key fingerprint, model and outcome.",
                                ("key", "model", "outcome"))
        self.tokens = Counter("keymux_tokens_total", "Tokens by key fingerprint, model and type.",
                              ("key", "model", "type"))
        self.cost = Counter("keymux_cost_usd_total", "USD charged, by key fingerprint and model (free tier: 0).",
                            ("key", "model"))
        self.value = Counter("keymux_value_usd_total", "USD at list price, by key fingerprint and model.",
                             ("key", "model"))
        self.modal_value = Counter("keymux_modality_value_usd_total",
                                   "USD at list price of tokens priced by their modality (output_image, "
                                   "input_audio ...), by key fingerprint and model: part of keymux_value_usd_total.",
                                   ("key", "model", "modality"))
        self.duration = Histogram("keymux_request_duration_seconds", "Time from request to its last byte.",
                                  ("group",), DURATION_BUCKETS)
        self.ttfb = Histogram("keymux_time_to_first_byte_seconds", "Time from request to its first byte.",
                              ("group",), DURATION_BUCKETS)
        self.queue_wait = Histogram("keymux_queue_wait_seconds", "Time requests waited in the queue for a key.",
                                    (), WAIT_BUCKETS)
        # Gateway keys (keymux/clients): per client name; the master key and an open gateway are not counted.
        self.client_requests = Counter("keymux_client_requests_total", "Requests per gateway key and outcome "
                                       "(refused: its own scope, rate limit or budget).", ("client", "outcome"))
        self.client_tokens = Counter("keymux_client_tokens_total", "Tokens per gateway key.", ("client",))
        self.client_cost = Counter("keymux_client_cost_usd_total", "USD charged per gateway key.", ("client",))
        self.extra: list[Callable[[list[str]], None]] = []  # more gauges (gateway keys' budgets), told at render
        # (key, model) -> [prompt, completion, reasoning tokens, USD charged, USD at list price, priced at all]:
        # what `tokens`, `cost` and `value` show, folded into them when rendered.
        self._usage: dict[tuple[str, str], list[float]] = {}

    def observe(self, row: Row, model_of: Callable[[str, str], str]) -> None:
        """One finished request (the same row the ledger writes). The two counters every request
        moves are written out rather than through Counter.inc: this runs once per request, and each call is a frame."""
        requests = self.requests.values
        shape = (row.group, row.surface, row.operation, row.status, row.outcome)
        requests[shape] = requests.get(shape, 0.0) + 1.0
        if row.client not in ("master", "open"):
            self.client_requests.inc((row.client, row.outcome))
            if row.total_tokens:
                self.client_tokens.inc((row.client,), row.total_tokens)
            if row.cost:
                self.client_cost.inc((row.client,), row.cost)
        attempts = row.attempts
        key = row.key
        upstream = self.upstream.values
        if len(attempts) == 1 and key is not None and attempts[0][0] == key and row.upstream_model:
            call = (key, row.upstream_model, attempts[0][1])  # the common request: one attempt
            upstream[call] = upstream.get(call, 0.0) + 1.0
        else:
            last = len(attempts) - 1
            for i, (fp, outcome) in enumerate(attempts):
                last_ok = i == last and row.upstream_model and fp == row.key
                model = row.upstream_model if last_ok else model_of(row.group, fp)
                self.upstream.inc((fp, model or "", outcome))
        if key is not None:
            model = row.upstream_model or ""
            # Tokens, cost and value of one (key, model) in one cell: one lookup per request, not five.
            cell = self._usage.get((key, model))
            if cell is None:
                cell = self._usage[(key, model)] = [0, 0, 0, 0.0, 0.0, 0]
            cell[0] += row.prompt_tokens
            cell[1] += row.completion_tokens
            cell[2] += row.reasoning_tokens
            if row.cost or row.value:
                cell[3] += row.cost
                cell[4] += row.value
                cell[5] = 1
            if row.modal_cost:
                for modality, usd in orjson.loads(row.modal_cost).items():
                    self.modal_value.inc((key, model, modality), usd)
        if row.latency is not None:
            self.duration.observe((row.group,), row.latency)
        if row.ttfb is not None:
            self.ttfb.observe((row.group,), row.ttfb)

    def observe_wait(self, seconds: float) -> None:
        self.queue_wait.observe((), seconds)

    def _fold_usage(self) -> None:
        tokens, cost, value = self.tokens.values, self.cost.values, self.value.values
        for (key, model), (prompt, completion, reasoning, usd, list_usd, priced) in self._usage.items():
            for kind, n in (("prompt", prompt), ("completion", completion), ("reasoning", reasoning)):
                if n:
                    tokens[(key, model, kind)] = float(n)
            if priced:
                cost[(key, model)], value[(key, model)] = usd, list_usd

    def render(self, pool: Pool, ledger: Ledger, now: float) -> str:
        self._fold_usage()
        out: list[str] = []
        for m in (self.requests, self.upstream, self.tokens, self.cost, self.value, self.modal_value,
                  self.client_requests, self.client_tokens, self.client_cost):
            m.render(out)
        for render in self.extra:
            render(out)
        states: list[tuple[tuple[object, ...], float]] = []
        seen: set[str] = set()
        for deployments in pool.groups.values():
            for d in deployments:
                if d.id in seen:
                    continue
                seen.add(d.id)
                current = pool.store.view(d, now).state
                states += [((d.fingerprint, d.model, d.id, s.value), 1.0 if s is current else 0.0) for s in State]
        _gauge(out, "keymux_key_state", "1 for the state each key/model deployment is in.",
               ("key", "model", "deployment", "state"), states)
        out.append("# HELP keymux_upstream_429_causes_total 429s whose cause is not a plain per-key rate, by key "
                   "and cause (spend_cap, prepay_depleted, tier_drop, no_details).")
        out.append("# TYPE keymux_upstream_429_causes_total counter")
        for (fp, cause), n in sorted(pool.causes.items()):
            out.append(f"keymux_upstream_429_causes_total{_labels(('key', 'cause'), (fp, cause))} {_num(n)}")
        egress = pool.egress_status(now)
        _gauge(out, "keymux_egress_backoff_seconds",
               "Seconds a provider stays backed off as a whole (most of its keys got 429s at once: egress IP limit).",
               ("provider",), [((p,), float(e["until_in"])) for p, e in sorted(egress.items())])  # type: ignore[arg-type]
        _gauge(out, "keymux_queue_depth", "Requests waiting for a key.", (), [((), pool.queue_depth())])
        self.queue_wait.render(out)
        self.duration.render(out)
        self.ttfb.render(out)
        _gauge(out, "keymux_ledger_buffer_rows", "Ledger rows not yet written to the database.", (),
               [((), len(ledger.buffer))])
        _gauge(out, "keymux_ledger_up", "1 when the last ledger write succeeded.", (),
               [((), 1.0 if ledger.available else 0.0)])
        for name, help, v in (("keymux_ledger_written_rows_total", "Ledger rows written.", ledger.written),
                              ("keymux_ledger_dropped_rows_total", "Ledger rows dropped: buffer full.", ledger.dropped),
                              ("keymux_ledger_rejected_rows_total",
                               "Ledger rows dropped: the database refused a value in them.", ledger.rejected)):
            out.append(f"# HELP {name} {help}")
            out.append(f"# TYPE {name} counter")
            out.append(f"{name} {_num(v)}")
        return "\n".join(out) + "\n"


__all__ = ["Metrics"]
