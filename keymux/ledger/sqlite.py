"""SQLite ledger store: one file, WAL mode, every call on one dedicated thread (never the event loop)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from typing import Any, TypeVar

from keymux.ledger import sql
from keymux.ledger.row import ATTEMPT_COLUMNS, COLUMNS, Row
from keymux.ledger.store import LedgerUnavailable, RowRejected

T = TypeVar("T")
MEMORY = ":memory:"


# Bound variables per statement: SQLite's limit is 32766 since 3.32, 999 before.
MAX_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
# The largest multi-row statement; smaller ones come in powers of two (see _insert). Each size is parsed
# once and cached: a 128-row statement took ~1.4 M instructions to prepare and its program stays in memory;
# at 32 the six sizes cost a quarter of that, and a 500-row batch is 16 statements, still one step each.
CHUNK_ROWS = 32
OPEN_RETRIES = 20  # about 10 s of waiting for a concurrent opener, in growing steps
# What SQLite (or binding a value for it) raises when a value is at fault, not the database: an integer
# past 64 bits, text that cannot be encoded, a constraint.
_VALUE_ERRORS = (OverflowError, UnicodeError, sqlite3.DataError, sqlite3.IntegrityError, sqlite3.InterfaceError)
# Binding None looks for an adapter and, finding none, raises and drops two AttributeErrors (`__adapt__`,
# `__conform__`): ~0.9 us per NULL column of every row. An adapter that maps None to itself (a C call)
# binds the same NULL at a third of that.
sqlite3.register_adapter(type(None), {None: None}.get)


class SQLiteStore:
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self.where = "sqlite (in memory)" if path == MEMORY else f"sqlite {path}"
        self._conn: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keymux-ledger")

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, fn)
        except (sqlite3.Error, OSError) as e:
            raise LedgerUnavailable(f"{self.where}: {e}") from None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        # Switching a new file to WAL can answer "locked" without waiting for a concurrent opener (another
        # worker starting at the same moment); this runs on the ledger's own thread, so wait and retry.
        for attempt in range(OPEN_RETRIES):
            try:
                return self._open_once()
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or attempt == OPEN_RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _open_once(self) -> sqlite3.Connection:
        if self.path != MEMORY and not os.path.exists(self.path):
            # Run-time keys are stored here: the file is readable by its owner only.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            # First, so that every statement below waits for a concurrent opener (another worker) instead
            # of failing at once with "database is locked".
            conn.execute("PRAGMA busy_timeout=5000")
            if self.path != MEMORY:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(sql.VERSION_TABLE)
            for version, statements in sql.MIGRATIONS["sqlite"]:
                # One writer at a time, and the version read inside that lock: two processes opening the
                # same file never apply a migration twice (the second would also set the version back).
                conn.execute("BEGIN IMMEDIATE")
                try:
                    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
                    if (row[0] or 0) < version:
                        for statement in statements:
                            conn.execute(statement)
                        conn.execute("DELETE FROM schema_version")
                        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    async def open(self) -> None:
        await self._run(self._connect)

    async def write(self, rows: Sequence[Row]) -> None:
        requests = [r.values() for r in rows]
        attempts = [a for r in rows for a in r.attempt_values()]

        def go() -> None:
            conn = self._connect()
            conn.execute("BEGIN")
            try:
                _insert(conn, "requests", COLUMNS, requests)
                _insert(conn, "attempts", ATTEMPT_COLUMNS, attempts)
                conn.execute("COMMIT")
            except _VALUE_ERRORS as e:
                conn.execute("ROLLBACK")
                raise RowRejected(f"{type(e).__name__}: {e}") from None
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        await self._run(go)

    async def fetch(self, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._run(lambda: self._connect().execute(query, tuple(args)).fetchall())

    async def execute(self, query: str, args: Sequence[Any] = ()) -> None:
        await self._run(lambda: self._connect().execute(query, tuple(args)) and None)

    async def close(self) -> None:
        def go() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        try:
            await self._run(go)
        finally:
            self._thread.shutdown(wait=False)


def _insert(conn: sqlite3.Connection, table: str, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows in multi-row statements (see sql.insert_rows) of power-of-two sizes: a handful of distinct
    statements, so the connection's statement cache stays small (one per batch size grew it by megabytes)."""
    largest = max(1, min(CHUNK_ROWS, MAX_VARIABLES // len(columns)))
    start = 0
    while start < len(rows):
        size = 1 << (min(largest, len(rows) - start).bit_length() - 1)
        part = rows[start:start + size]
        conn.execute(sql.insert_rows(table, columns, size), list(chain.from_iterable(part)))  # flattened in C
        start += size
