"""The ledger: rows appended on the request path, written in batches by one task off it.

    observer -> append(row) -> bounded buffer -> writer task -> store.write(batch)

A failed write (full disk, database gone) leaves the rows in the buffer and is retried with backoff;
the client's request has long been answered. When the buffer is full, new rows are dropped and
counted (`dropped`), never blocking a request. `close()` writes what is left (app cleanup).

Every row is cleaned at this edge (row.clean_row: valid UTF-8, no NUL, bounded lengths) before a database
sees it; a row the database still refuses (RowRejected) is found, dropped, counted (`rejected`) and logged,
and the rows around it are written: one bad row never stops the writer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from decimal import Decimal
from typing import Any

from keymux.ledger import sql
from keymux.ledger.row import Row, clean_row, clean_text, row_dict
from keymux.ledger.secret_box import SecretBox, SecretUnavailable
from keymux.ledger.store import LedgerStore, LedgerUnavailable, RowRejected

log = logging.getLogger("keymux.ledger")

BATCH = 500
INTERVAL = 1.0  # seconds between writes when the buffer holds less than a batch
MAX_BUFFER = 100_000
BACKOFF_CAP = 30.0


def _num(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    return v


class Ledger:
    def __init__(self, store: LedgerStore, *, batch: int = BATCH, interval: float = INTERVAL,
                 max_buffer: int = MAX_BUFFER, secrets: SecretBox | None = None) -> None:
        self.store = store
        self.secrets = secrets or SecretBox(None)  # run-time keys' api_key, encrypted at rest
        self.batch = batch
        self.interval = interval
        self.max_buffer = max_buffer
        self.buffer: deque[Row] = deque()
        self.dropped = 0
        self.rejected = 0  # rows the database refused even after cleaning
        self.written = 0
        self._available = False
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._opened = False

    # -- the request path ------------------------------------------------------------------
    def append(self, row: Row) -> None:
        if len(self.buffer) >= self.max_buffer:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("ledger buffer full (%d rows, database: %s): %d row(s) dropped", self.max_buffer,
                          self.last_error or "slow", self.dropped)
            return
        self.buffer.append(row)
        if len(self.buffer) >= self.batch:
            self._wake.set()

    # -- the writer ------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            await self._open()
        except LedgerUnavailable as e:
            log.error("ledger database unavailable, rows are kept in memory and retried: %s", e)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="keymux-ledger-writer")

    async def _open(self) -> None:
        if not self._opened:
            await self.store.open()
            self._opened = True
            self._available = True

    @property
    def available(self) -> bool:
        """The last write succeeded and the writer is running (keymux_ledger_up)."""
        return self._available and (self._task is None or not self._task.done())

    @available.setter
    def available(self, value: bool) -> None:
        self._available = value

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                # Only what is buffered now: chasing the rows that arrive during a write would turn one
                # write per interval into a stream of small transactions competing with requests for the GIL.
                await self.flush(len(self.buffer))
                failures = 0
            except LedgerUnavailable:
                failures += 1
                await asyncio.sleep(min(BACKOFF_CAP, 0.5 * 2 ** failures))
            except Exception:  # noqa: BLE001 - a bug in a store must not end the writer: log, retry later
                log.exception("ledger write failed unexpectedly, %d row(s) kept for retry", len(self.buffer))
                self._available = False
                failures += 1
                await asyncio.sleep(min(BACKOFF_CAP, 0.5 * 2 ** failures))

    async def flush(self, rows: int | None = None) -> None:
        """Write every buffered row now (or the first `rows`). Raises LedgerUnavailable (they stay buffered)."""
        async with self._lock:
            left = len(self.buffer) if rows is None else min(rows, len(self.buffer))
            while left > 0 and self.buffer:
                batch = [clean_row(self.buffer[i]) for i in range(min(self.batch, left, len(self.buffer)))]
                try:
                    await self._write(batch)
                    for _ in batch:
                        self.buffer.popleft()
                    self.written += len(batch)
                except RowRejected:
                    await self._write_one_by_one(batch)
                left -= len(batch)

    async def _write(self, batch: list[Row]) -> None:
        try:
            await self._open()
            await self.store.write(batch)
        except LedgerUnavailable as e:
            if self._available or self.last_error != str(e):
                log.error("ledger write failed, %d row(s) kept for retry: %s", len(self.buffer), e)
            self._available, self.last_error = False, str(e)
            raise
        if not self._available:
            log.info("ledger database is back (%s)", self.store.where)
        self._available, self.last_error = True, None

    async def _write_one_by_one(self, batch: list[Row]) -> None:
        """A batch the database refused: each row alone, so only the one at fault is dropped. The batch
        is the head of the buffer, in order; LedgerUnavailable leaves the rest of it buffered."""
        for row in batch:
            try:
                await self._write([row])
                self.written += 1
            except RowRejected as e:
                self.rejected += 1
                log.error("ledger row for request %s dropped, the database refused it: %s",
                          clean_text(ascii(row.request_id)[1:-1], 80), clean_text(str(e), 200))
            self.buffer.popleft()

    async def close(self, timeout: float = 10.0) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except (TimeoutError, LedgerUnavailable) as e:
            log.error("ledger: %d row(s) could not be written at shutdown: %s", len(self.buffer), e or "timeout")
        except Exception:  # noqa: BLE001 - shutdown goes on (the store must still be closed)
            log.exception("ledger: %d row(s) could not be written at shutdown", len(self.buffer))
        try:
            await self.store.close()
        except LedgerUnavailable:
            pass

    # -- reading ---------------------------------------------------------------------------
    async def _fetch(self, query: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._available:  # a database that just failed is not waited for twice
            try:
                await self.flush()  # best effort: what was just served should show
            except LedgerUnavailable:
                pass
        await self._open()
        return [tuple(_num(v) for v in r) for r in await self.store.fetch(query, args)]

    async def usage(self, by: str | None, since: float, until: float, bucket: str | None,
                    metrics: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
        """Sums per (by, bucket); `metrics` adds `outcomes` (requests per outcome class) and/or
        `latency` (latency_p50/p95, queue_wait_p50/p95/max, seconds; None where no request had one)."""
        outcomes = "outcomes" in metrics
        n = (by is not None) + (bucket is not None)
        rows = await self._fetch(sql.usage_sql(by, bucket, outcomes), (since, until))
        out: dict[tuple[Any, ...], dict[str, Any]] = {}
        for r in rows:
            item: dict[str, Any] = {}
            if by is not None:
                item[by] = r[0]
            if bucket is not None:
                item["bucket"] = r[n - 1]
            sums = [v or 0 for v in r[n:]]
            item.update(zip(sql.SUM_NAMES, sums))
            if outcomes:
                item["outcomes"] = dict(zip(sql.OUTCOME_NAMES, sums[len(sql.SUM_NAMES):]))
            out[tuple(r[:n])] = item
        if "latency" in metrics:
            for item in out.values():
                item.update(dict.fromkeys(sql.LATENCY_NAMES))
            for column in sql.LATENCY_COLUMNS:
                for r in await self._fetch(sql.percentile_sql(column, by, bucket), (since, until)):
                    found = out.get(tuple(r[:n]))
                    if found is None:
                        continue
                    for p, v in zip(sql.PERCENTILES, r[n:]):
                        found[f"{column}_p{p}"] = v
                    if column == "queue_wait":
                        found["queue_wait_max"] = r[-1]
        return list(out.values())

    async def recent(self, limit: int, before: float) -> list[dict[str, Any]]:
        return [row_dict(r) for r in await self._fetch(sql.RECENT, (before, limit))]

    async def key_totals(self, since: float) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for key, n, tokens, cost, value in await self._fetch(sql.KEY_TOTALS, (since,)):
            out[key] = {"requests": n, "errors": 0, "tokens": tokens or 0, "cost": cost or 0.0, "value": value or 0.0}
        for key, n in await self._fetch(sql.KEY_ERRORS, (since,)):
            out.setdefault(key, {"requests": 0, "errors": 0, "tokens": 0, "cost": 0.0, "value": 0.0})["errors"] = n
        return out

    # -- keys added at run time (stored with the ledger so they survive a restart) ----------
    async def runtime_keys(self) -> list[dict[str, Any]]:
        """The stored keys with their api_key in clear, as they were added. One that cannot be decrypted
        (secret missing or changed) is left out and logged by fingerprint; rows stored before encryption
        are encrypted now."""
        await self._open()
        rows = await self.store.fetch(sql.LIST_KEYS)
        out = []
        plain = 0
        for r in rows:
            record = dict(zip(sql.KEY_COLUMNS, r))
            stored = record["api_key"]
            if not self.secrets.encrypted(stored):
                plain += await self._encrypt_stored(record)
                out.append(record)
                continue
            try:
                record["api_key"] = self.secrets.decrypt(stored)
            except SecretUnavailable as e:
                log.error("stored run-time key %s skipped: %s", record["fingerprint"], e)
                continue
            out.append(record)
        if plain:
            log.info("%d run-time key(s) stored in plain text by an older keymux are now encrypted", plain)
        return out

    async def _encrypt_stored(self, record: dict[str, Any]) -> int:
        try:
            await self.store.execute(sql.ENCRYPT_KEY, (self.secrets.encrypt(record["api_key"]), record["id"]))
        except SecretUnavailable as e:
            log.error("stored run-time key %s stays in plain text: %s", record["fingerprint"], e)
            return 0
        return 1

    async def add_runtime_key(self, record: dict[str, Any]) -> None:
        await self._open()
        stored = {**record, "api_key": self.secrets.encrypt(record["api_key"])}
        await self.store.execute(sql.ADD_KEY, tuple(stored[c] for c in sql.KEY_COLUMNS))

    async def remove_runtime_key(self, fingerprint: str) -> None:
        await self._open()
        await self.store.execute(sql.DELETE_KEY, (fingerprint,))

    # -- keys an operator disabled (they stay disabled across a restart) ----------------------
    async def disabled_keys(self) -> dict[str, str]:
        """fingerprint -> the reason given when it was disabled."""
        await self._open()
        return {fp: reason for fp, reason in await self.store.fetch(sql.LIST_DISABLES)}

    async def set_disabled(self, fingerprint: str, reason: str, at: float) -> None:
        await self._open()
        await self.store.execute(sql.SET_DISABLE, (fingerprint, reason, at))

    async def clear_disabled(self, fingerprint: str) -> None:
        await self._open()
        await self.store.execute(sql.CLEAR_DISABLE, (fingerprint,))

    # -- gateway keys made at run time (keymux/clients): documents holding a key's hash, never the key -----
    async def gateway_clients(self) -> list[str]:
        await self._open()
        return [doc for (doc,) in await self.store.fetch(sql.LIST_CLIENTS)]

    async def save_gateway_client(self, name: str, doc: str, at: float) -> None:
        await self._open()
        await self.store.execute(sql.SAVE_CLIENT, (name, doc, at))

    async def delete_gateway_client(self, name: str) -> None:
        await self._open()
        await self.store.execute(sql.DELETE_CLIENT, (name,))

    async def client_spend(self, name: str, since: float) -> float:
        """USD a gateway client spent since `since` (its budget period's start), from the rows written."""
        rows = await self._fetch(sql.CLIENT_SPEND, (since, name))
        return float(rows[0][1] or 0.0) if rows else 0.0
