"""general_settings.database_url and metrics_auth are active settings now."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from keymux.config.fields import ConfigError
from keymux.config.load import parse_config
from keymux.ledger import make_store, sqlite_path
from keymux.ledger.postgres import PostgresStore, _split_schema

ENTRY = {"model_name": "g", "litellm_params": {"model": "gemini/gemini-2.5-flash", "api_key": "k"}}


def cfg(**general):  # type: ignore[no-untyped-def]
    return parse_config({"model_list": [ENTRY], "general_settings": general}, env={"DB": "postgresql://u:pw@db/x"})


def test_sqlite_paths() -> None:
    assert sqlite_path(cfg()) == ":memory:"
    assert sqlite_path(replace(cfg(), source=Path("/etc/keymux/config.yaml"))) == "/etc/keymux/keymux.db"
    assert sqlite_path(replace(cfg(database_url="sqlite:///usage.db"), source=Path("/srv/c.yaml"))) == "/srv/usage.db"
    assert sqlite_path(cfg(database_url="sqlite:////var/lib/keymux.db")) == "/var/lib/keymux.db"
    assert sqlite_path(cfg(database_url="sqlite://")) == ":memory:"


def test_postgres_url_from_the_environment_is_never_shown() -> None:
    config = cfg(database_url="os.environ/DB")
    assert "pw" not in repr(config) and not config.inactive
    store = make_store(config)
    assert isinstance(store, PostgresStore) and "pw" not in store.where
    assert _split_schema("postgresql://u@h/db?schema=s1&sslmode=disable") == ("postgresql://u@h/db?sslmode=disable", "s1")


def test_bad_database_url_and_metrics_auth() -> None:
    with pytest.raises(ConfigError) as err:
        cfg(database_url="mysql://x")
    assert "sqlite:///" in str(err.value)
    assert cfg(metrics_auth=False).metrics_auth is False and cfg().metrics_auth is True
