"""SQLite ledger store: one file, WAL mode, every call on one dedicated thread (never the event loop)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from keymux.ledger import sql
from keymux.ledger.row import Row
from keymux.ledger.store import LedgerUnavailable

T = TypeVar("T")
MEMORY = ":memory:"


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
        if self.path != MEMORY and not os.path.exists(self.path):
            # Run-time keys are stored here: the file is readable by its owner only.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            if self.path != MEMORY:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute(sql.VERSION_TABLE)
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
            current = row[0] or 0
            for version, statements in sql.MIGRATIONS["sqlite"]:
                if version <= current:
                    continue
                conn.execute("BEGIN")
                for statement in statements:
                    conn.execute(statement)
                conn.execute("DELETE FROM schema_version")
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                conn.execute("COMMIT")
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
                conn.executemany(sql.insert_requests("sqlite"), requests)
                conn.executemany(sql.insert_attempts("sqlite"), attempts)
                conn.execute("COMMIT")
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
