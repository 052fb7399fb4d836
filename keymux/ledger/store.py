"""The seam between the ledger and its database: SQLite (default) or PostgreSQL.

A store speaks `?`-placeholder SQL from keymux/ledger/sql.py and maps its driver's failures to
`LedgerUnavailable` at the edge, so the writer handles one error whatever the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from keymux.ledger.row import Row


class LedgerUnavailable(Exception):
    """The database cannot be reached or written (full disk, lost connection, bad path)."""


class RowRejected(Exception):
    """The database refused the rows themselves (a value it cannot store), not the connection: writing
    them again will fail again, so the writer finds the row at fault and drops it."""


class LedgerStore(Protocol):
    dialect: str  # "sqlite" | "postgres"
    where: str  # for logs and the admin API; never contains a password

    async def open(self) -> None:
        """Connect and bring the schema up to date. Safe to call again after a failure."""
        ...

    async def write(self, rows: Sequence[Row]) -> None:
        """Insert rows in one transaction; rows already present (same id) are skipped. Raises
        LedgerUnavailable (try again later) or RowRejected (a value in these rows cannot be stored)."""
        ...

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> None: ...

    async def close(self) -> None: ...
