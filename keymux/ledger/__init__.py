"""Usage ledger: one row per client request (what it cost, which keys it tried), in SQLite or PostgreSQL.

    open_ledger(config) -> Ledger       store chosen by general_settings.database_url
    Row.from_trace(trace, cost)         what the pipeline observer (ledger/recorder.py) appends
"""

from __future__ import annotations

from pathlib import Path

from keymux.config.schema import Config
from keymux.ledger.row import Row
from keymux.ledger.secret_box import SecretBox
from keymux.ledger.sqlite import MEMORY, SQLiteStore
from keymux.ledger.store import LedgerStore, LedgerUnavailable
from keymux.ledger.writer import Ledger

DEFAULT_FILE = "keymux.db"
PG_KEY_FILE = "keymux-secret.key"  # PostgreSQL: the generated key file sits beside the config file


def sqlite_path(config: Config) -> str:
    url = config.database_url
    if url is None:
        # Beside the config file; a config with no file (tests, embedding) keeps its ledger in memory.
        return str(config.source.parent / DEFAULT_FILE) if config.source is not None else MEMORY
    path = url.removeprefix("sqlite://")
    if path in ("", "/", "/:memory:"):
        return MEMORY
    path = path.removeprefix("/")  # sqlite:///rel.db -> rel.db; sqlite:////abs.db -> /abs.db
    if not Path(path).is_absolute() and config.source is not None:
        path = str(config.source.parent / path)
    return path


def make_store(config: Config) -> LedgerStore:
    url = config.database_url
    if url is not None and url.startswith(("postgresql://", "postgres://")):
        from keymux.ledger.postgres import PostgresStore

        return PostgresStore(url)
    return SQLiteStore(sqlite_path(config))


def key_file(config: Config, store: LedgerStore) -> Path | None:
    """Where the generated secret for run-time keys lives (when KEYMUX_SECRET_KEY is not set)."""
    if store.dialect == "sqlite":
        path = sqlite_path(config)
        return None if path == MEMORY else Path(f"{path}.key")
    return config.source.parent / PG_KEY_FILE if config.source is not None else None


def open_ledger(config: Config) -> Ledger:
    """The ledger for this config (not started: `await ledger.start()` inside the event loop)."""
    store = make_store(config)
    return Ledger(store, secrets=SecretBox(key_file(config, store)))


__all__ = ["Ledger", "LedgerStore", "LedgerUnavailable", "Row", "make_store", "open_ledger", "sqlite_path"]
