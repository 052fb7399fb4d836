"""One ledger row: what one client request did and cost. Built from the request's finished `Trace`."""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from keymux.ids import new_id
from keymux.pricing import Cost
from keymux.request import Trace

COLUMNS = ("id", "at", "sec", "request_id", "surface", "client", "grp", "key", "upstream_model", "status",
           "outcome", "attempts", "n_attempts", "prompt_tokens", "completion_tokens", "reasoning_tokens",
           "total_tokens", "cost", "value", "free_tier", "latency", "ttfb", "stream", "detail", "queue_wait",
           "modal_cost", "operation")
ATTEMPT_COLUMNS = ("row_id", "seq", "at", "key", "outcome")
DETAIL_MAX = 300
TEXT_MAX = 200  # request ids, client names, groups: anything longer is cut (ids come from clients)
TEXT_FIELDS = ("request_id", "surface", "client", "group", "key", "upstream_model", "outcome")


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
    modal_cost: str | None = None  # JSON {"output_image": USD, ...}: tokens priced by modality (migration 4)
    operation: str = ""  # the request's operation (Request.operation; migration 6)

    @classmethod
    def from_trace(cls, trace: Trace, cost: Cost) -> Row:
        r, u = trace.request, trace.usage
        modal = orjson.dumps(cost.modal).decode() if cost.modal else None
        # Positional, in field order: a NamedTuple built from keywords costs twice as much, once per request.
        if u is None:
            tokens: tuple[int, int, int, int] = (0, 0, 0, 0)
        else:
            tokens = (u.prompt, u.completion, u.reasoning, u.total)
        return tuple.__new__(cls, (trace.row_id or new_id(), trace.at, r.request_id, r.surface, r.client, r.group,
                                   trace.key, trace.upstream_model, trace.status, trace.outcome, tuple(trace.attempts),
                                   *tokens, cost.cost, cost.value, cost.free, trace.latency, trace.ttfb,
                                   r.stream, trace.detail[:DETAIL_MAX], trace.queue_wait, modal, r.operation))

    def values(self) -> tuple[Any, ...]:
        return (self.id, self.at, int(self.at), self.request_id, self.surface, self.client, self.group, self.key,
                self.upstream_model, self.status, self.outcome, orjson.dumps(self.attempts).decode(),
                len(self.attempts), self.prompt_tokens, self.completion_tokens, self.reasoning_tokens,
                self.total_tokens, self.cost, self.value, int(self.free_tier), self.latency, self.ttfb,
                int(self.stream), self.detail, self.queue_wait, self.modal_cost, self.operation)

    def attempt_values(self) -> list[tuple[Any, ...]]:
        """Rows for the `attempts` table: the failed attempts only. Nothing reads the successful ones from
        there (`attempts` above holds the whole list), and most requests have only a successful one."""
        return [(self.id, i, self.at, fp, outcome) for i, (fp, outcome) in enumerate(self.attempts)
                if outcome != "ok"]


def clean_text(text: str, limit: int = TEXT_MAX) -> str:
    """Text any database takes: valid UTF-8 (bytes a client sent that were not, and lone surrogates, as
    `\\xff` / `\\ud800` escapes), no NUL (PostgreSQL refuses it), at most `limit` characters."""
    if text.isascii():
        if "\x00" not in text and len(text) <= limit:
            return text
    else:
        try:
            text.encode()
        except UnicodeEncodeError:
            try:  # aiohttp keeps undecodable header bytes as surrogate escapes: show the bytes
                text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            except UnicodeEncodeError:
                text = text.encode("utf-8", "backslashreplace").decode()
    return text.replace("\x00", "\\x00")[:limit]


def clean_row(row: Row) -> Row:
    """The ledger's edge: every text field cleaned (see clean_text) before a database sees it. A row that
    needs nothing (nearly all) is returned as it is after one check of the fields text from outside can
    reach (the client's request id and model name, upstream error text); the rest is keymux's own words
    (fingerprints, outcomes, surface names), cleaned too whenever a row is."""
    rid, client, group, model, detail = row.request_id, row.client, row.group, row.upstream_model or "", row.detail
    try:
        joined = rid + client + group + model + detail
    except TypeError:  # a field that is not text: cleaned one by one below
        joined = "\x00"
    if (joined.isascii() and "\x00" not in joined and len(rid) <= TEXT_MAX and len(client) <= TEXT_MAX
            and len(group) <= TEXT_MAX and len(model) <= TEXT_MAX and len(detail) <= DETAIL_MAX):
        return row
    changes: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = getattr(row, name)
        if value is None and name in ("key", "upstream_model"):
            continue
        cleaned = clean_text(value if isinstance(value, str) else str(value))
        if cleaned is not value:
            changes[name] = cleaned
    detail = clean_text(row.detail if isinstance(row.detail, str) else str(row.detail), DETAIL_MAX)
    if detail is not row.detail:
        changes["detail"] = detail
    attempts = tuple((clean_text(str(fp)), clean_text(str(outcome))) for fp, outcome in row.attempts)
    if attempts != row.attempts:
        changes["attempts"] = attempts
    return row._replace(**changes) if changes else row


def row_dict(values: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
    """A row read back from the database, as the admin API shows it."""
    d = dict(zip(COLUMNS, values))
    d.pop("sec", None)
    d["group"] = d.pop("grp")
    d["attempts"] = orjson.loads(d["attempts"]) if d["attempts"] else []
    d["free_tier"] = bool(d["free_tier"])
    d["stream"] = bool(d["stream"])
    d["modal_cost"] = orjson.loads(d["modal_cost"]) if d.get("modal_cost") else None
    d["operation"] = d.get("operation") or ""
    return d
