"""Keys added at run time are encrypted at rest, restored after a restart, and a missing or changed
secret skips the key with a log line naming its fingerprint, never the key."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from keymux.fingerprint import fingerprint

from ..conftest import OpsFactory, group
from .test_ledger import KEYS
from .test_postgres import _fetch, pg_url  # noqa: F401  (fixture)

ADDED = "AIzaSyLedgerGood2"
SECRET = "correct horse battery staple, thirty-two+ chars"


def doc(url: str) -> dict:
    return {"model_list": group("chat", ["AIzaSyLedgerGood1"]), "general_settings": {"database_url": url}}


def stored_keys(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT api_key FROM runtime_keys")]
    finally:
        conn.close()


def serving(stack) -> set[str]:  # type: ignore[no-untyped-def]
    return {d.fingerprint for d in stack.gateway.pool.groups["chat"]}


async def test_a_key_added_at_run_time_is_stored_encrypted_and_restored(ops_stack: OpsFactory,
                                                                        tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    stack = await ops_stack(doc(f"sqlite:///{db}"), KEYS)
    status, body = await stack.admin("POST", "/admin/keys", {"group": "chat", "api_key": ADDED})
    assert status == 201
    [stored] = stored_keys(db)
    assert stored.startswith("fernet:") and ADDED not in stored
    key_file = tmp_path / "k.db.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    await stack.server.close()
    again = await ops_stack(doc(f"sqlite:///{db}"), reuse=stack)
    assert body["key"] in serving(again)
    [restored] = [d for d in again.gateway.changes.runtime if d.fingerprint == body["key"]]
    assert restored.api_key == ADDED  # what reload.py gets back is the key as it was added
    await again.admin("POST", f"/admin/keys/{fingerprint('AIzaSyLedgerGood1')}/disable")
    await again.ask()
    assert again.gemini.count(key=ADDED) == 1  # and it is used, with the right key


async def test_plain_text_rows_from_before_are_encrypted_at_start(ops_stack: OpsFactory, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "old.db"
    stack = await ops_stack(doc(f"sqlite:///{db}"), KEYS)
    status, body = await stack.admin("POST", "/admin/keys", {"group": "chat", "api_key": ADDED})
    assert status == 201
    await stack.server.close()
    conn = sqlite3.connect(db)  # as an older keymux stored it
    conn.execute("UPDATE runtime_keys SET api_key = ?", (ADDED,))
    conn.commit()
    conn.close()
    with caplog.at_level(logging.INFO, "keymux.ledger"):
        again = await ops_stack(doc(f"sqlite:///{db}"), reuse=stack)
    assert body["key"] in serving(again)
    [stored] = stored_keys(db)
    assert stored.startswith("fernet:") and ADDED not in stored
    assert "1 run-time key(s) stored in plain text" in caplog.text


async def test_a_changed_or_missing_secret_skips_the_key_naming_its_fingerprint(
        ops_stack: OpsFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "s.db"
    monkeypatch.setenv("KEYMUX_SECRET_KEY", SECRET)
    stack = await ops_stack(doc(f"sqlite:///{db}"), KEYS)
    status, body = await stack.admin("POST", "/admin/keys", {"group": "chat", "api_key": ADDED})
    assert status == 201
    assert not (tmp_path / "s.db.key").exists()  # the variable is the secret: no file is made
    await stack.server.close()
    again = await ops_stack(doc(f"sqlite:///{db}"), reuse=stack)
    assert body["key"] in serving(again)
    await again.server.close()

    monkeypatch.setenv("KEYMUX_SECRET_KEY", "another secret, also thirty-two characters long")
    with caplog.at_level(logging.ERROR, "keymux.ledger"):
        wrong = await ops_stack(doc(f"sqlite:///{db}"), reuse=again)
    assert serving(wrong) == {fingerprint("AIzaSyLedgerGood1")}  # the config's key serves; the stored one is out
    assert f"stored run-time key {body['key']} skipped" in caplog.text and "not the secret" in caplog.text
    await wrong.server.close()

    caplog.clear()
    monkeypatch.delenv("KEYMUX_SECRET_KEY")
    with caplog.at_level(logging.ERROR, "keymux.ledger"):
        missing = await ops_stack(doc(f"sqlite:///{db}"), reuse=wrong)
    assert body["key"] not in serving(missing)
    assert "KEYMUX_SECRET_KEY is not set" in caplog.text and body["key"] in caplog.text
    assert ADDED not in caplog.text and SECRET not in caplog.text
    assert not (tmp_path / "s.db.key").exists()  # reading never makes a key that could not decrypt anyway


async def test_a_too_short_secret_refuses_the_key_clearly(ops_stack: OpsFactory, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYMUX_SECRET_KEY", "short")
    stack = await ops_stack(doc(f"sqlite:///{tmp_path / 't.db'}"), KEYS)
    status, body = await stack.admin("POST", "/admin/keys", {"group": "chat", "api_key": ADDED})
    assert status == 503 and "KEYMUX_SECRET_KEY is too short" in body["error"]["message"]
    assert "short" not in body["error"]["message"].replace("too short", "")
    assert fingerprint(ADDED) not in serving(stack)


async def test_postgres_stores_the_key_encrypted(ops_stack: OpsFactory, pg_url: str,  # noqa: F811
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYMUX_SECRET_KEY", SECRET)
    stack = await ops_stack(doc(pg_url), KEYS)
    status, body = await stack.admin("POST", "/admin/keys", {"group": "chat", "api_key": ADDED})
    assert status == 201
    [row] = await _fetch(pg_url, "SELECT api_key FROM runtime_keys")
    assert row["api_key"].startswith("fernet:") and ADDED not in row["api_key"]
    await stack.server.close()
    again = await ops_stack(doc(pg_url), reuse=stack)
    assert body["key"] in serving(again)
