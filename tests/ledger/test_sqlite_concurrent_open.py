"""Several processes (forked workers, replicas on one host) open one SQLite ledger at the same moment."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from keymux.ledger.sql import SCHEMA_VERSION
from keymux.ledger.sqlite import SQLiteStore


def test_openers_racing_on_a_new_file_all_succeed_and_migrate_once(tmp_path: Path) -> None:
    for n in range(15):  # the race needs a fresh file each time
        path = tmp_path / f"ledger-{n}.db"
        stores = [SQLiteStore(str(path)) for _ in range(4)]
        start = threading.Barrier(len(stores))
        errors: list[BaseException] = []

        def open_one(store: SQLiteStore, start: threading.Barrier = start,
                     errors: list[BaseException] = errors) -> None:
            start.wait()
            try:
                store._connect()
            except BaseException as e:  # noqa: BLE001 - collected and asserted on below
                errors.append(e)

        threads = [threading.Thread(target=open_one, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        # One row at the latest version: no opener applied a migration again and set the version back.
        assert sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        for store in stores:
            assert store._conn is not None
            store._conn.close()
