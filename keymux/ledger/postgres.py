"""PostgreSQL ledger store (asyncpg, the `keymux[postgres]` extra): one connection, reopened when lost.

`database_url: postgresql://user:pass@host:5432/db?schema=NAME` — the `schema` query parameter (a keymux
addition) puts the tables in that schema (created if missing) instead of `public`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from keymux.config.report import safe_url
from keymux.ledger import sql
from keymux.ledger.row import Row
from keymux.ledger.store import LedgerUnavailable, RowRejected

CONNECT_TIMEOUT = 5.0
QUERY_TIMEOUT = 5.0  # seconds one call may take, waiting for the connection included (a hung server, a lock)


def _split_schema(url: str) -> tuple[str, str | None]:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), schema


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresStore:
    dialect = "postgres"

    def __init__(self, url: str) -> None:
        self._url, self.schema = _split_schema(url)
        self.where = f"postgresql {safe_url(self._url)}" + (f" schema {self.schema}" if self.schema else "")
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self.timeout = QUERY_TIMEOUT

    async def _connection(self) -> Any:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        import asyncpg

        settings = {"search_path": _quote(self.schema)} if self.schema else None
        conn = await asyncpg.connect(self._url, timeout=CONNECT_TIMEOUT, server_settings=settings)
        try:
            if self.schema:
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(self.schema)}")
            await conn.execute(sql.VERSION_TABLE)
            current = await conn.fetchval("SELECT max(version) FROM schema_version") or 0
            for version, statements in sql.MIGRATIONS["postgres"]:
                if version <= current:
                    continue
                async with conn.transaction():
                    await conn.execute("LOCK TABLE schema_version")  # replicas migrate one at a time
                    if (await conn.fetchval("SELECT max(version) FROM schema_version") or 0) >= version:
                        continue
                    for statement in statements:
                        await conn.execute(statement)
                    await conn.execute("DELETE FROM schema_version")
                    await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        return conn

    async def _call(self, fn: Any) -> Any:
        try:
            import asyncpg
        except ImportError:
            raise LedgerUnavailable("database_url is postgresql:// but asyncpg is not installed "
                                    "(pip install 'keymux[postgres]')") from None
        try:  # another call holds the connection (a write stuck behind a lock): do not queue forever
            await asyncio.wait_for(self._lock.acquire(), self.timeout)
        except TimeoutError:
            raise LedgerUnavailable(f"{self.where}: no answer within {self.timeout:g} s (busy)") from None
        try:
            # Statements carry asyncpg's own timeout (it cancels them on the server); this bounds the rest
            # (connecting, migrating, a server that answers nothing at all).
            async with asyncio.timeout(self.timeout + CONNECT_TIMEOUT):
                conn = await self._connection()
                return await fn(conn)
        except TimeoutError:
            await self._drop()
            raise LedgerUnavailable(f"{self.where}: no answer within {self.timeout:g} s") from None
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            await self._drop()
            raise LedgerUnavailable(f"{self.where}: {type(e).__name__}: {e}") from None
        finally:
            self._lock.release()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def open(self) -> None:
        async def go(conn: Any) -> None:
            return None

        await self._call(go)

    async def write(self, rows: Sequence[Row]) -> None:
        requests = [r.values() for r in rows]
        attempts = [a for r in rows for a in r.attempt_values()]

        async def go(conn: Any) -> None:
            import asyncpg

            try:
                async with conn.transaction():
                    await conn.executemany(sql.insert_requests(), requests, timeout=self.timeout)
                    if attempts:
                        await conn.executemany(sql.insert_attempts(), attempts, timeout=self.timeout)
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, OverflowError, UnicodeError) as e:
                # The rows are at fault (NUL in text, a number past 64 bits), not the connection: it stays.
                raise RowRejected(f"{type(e).__name__}: {e}") from None

        await self._call(go)

    async def fetch(self, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async def go(conn: Any) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in await conn.fetch(sql.numbered(query), *args, timeout=self.timeout)]

        return await self._call(go)

    async def execute(self, query: str, args: Sequence[Any] = ()) -> None:
        async def go(conn: Any) -> None:
            await conn.execute(sql.numbered(query), *args, timeout=self.timeout)

        await self._call(go)

    async def close(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    await asyncio.wait_for(conn.close(), 5)
                except (TimeoutError, OSError):
                    conn.terminate()
