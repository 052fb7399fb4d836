"""The same ledger on the real PostgreSQL server (127.0.0.1:5432, database `test`), one schema per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg  # noqa: E402  (test extra)
import pytest

from keymux.ledger import LedgerUnavailable
from keymux.ledger.sql import SCHEMA_VERSION

from ..conftest import MASTER, OpsFactory, group
from .test_ledger import KEYS, mixed_doc, run_mix

PG = os.environ.get("KEYMUX_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    try:
        conn = await asyncpg.connect(PG, timeout=3)
    except (OSError, asyncpg.PostgresError) as e:
        pytest.fail(f"PostgreSQL not reachable at {PG} ({e}): start it (.ci/run does)")
    schema = f"keymux_test_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{PG}?schema={schema}"
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def _fetch(url: str, query: str) -> list:
    base, _, schema = url.partition("?schema=")
    conn = await asyncpg.connect(base, server_settings={"search_path": schema})
    try:
        return [dict(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


async def test_postgres_rows_after_a_mix_and_a_clean_stop(ops_stack: OpsFactory, pg_url: str) -> None:
    stack = await ops_stack(mixed_doc(pg_url), KEYS)
    assert stack.gateway.ledger.store.dialect == "postgres"
    await run_mix(stack)
    status, usage = await stack.admin("GET", "/admin/usage?by=group")
    assert status == 200
    by_group = {r["group"]: r for r in usage["data"]}
    assert by_group["chat"]["requests"] == 4 and by_group["tight"]["errors"] == 1
    assert usage["total"]["requests"] == 8
    await stack.server.close()
    rows = await _fetch(pg_url, "SELECT * FROM requests")
    assert len(rows) == 8
    outcomes = sorted(r["outcome"] for r in rows)
    assert outcomes == ["failed", "ok", "ok", "ok", "ok", "ok", "ok", "refused"]
    paid = next(r for r in rows if r["grp"] == "paid")
    assert paid["cost"] > 0 and paid["free_tier"] == 0
    assert (await _fetch(pg_url, "SELECT version FROM schema_version")) == [{"version": SCHEMA_VERSION}]
    text = repr(rows) + repr(await _fetch(pg_url, "SELECT * FROM attempts"))
    for secret in (*KEYS, MASTER):
        assert secret not in text


async def test_runtime_keys_survive_a_restart_on_postgres(ops_stack: OpsFactory, pg_url: str) -> None:
    doc = {"model_list": group("chat", ["AIzaSyLedgerGood1"]), "general_settings": {"database_url": pg_url}}
    stack = await ops_stack(doc, KEYS)
    status, body = await stack.admin("POST", "/admin/keys", {"group": "chat", "api_key": "AIzaSyLedgerGood2"})
    assert status == 201
    await stack.server.close()
    again = await ops_stack(doc, reuse=stack)
    assert {d.fingerprint for d in again.gateway.pool.groups["chat"]} == {
        d.fingerprint for d in again.config.deployments} | {body["key"]}


async def test_requests_keep_succeeding_when_postgres_is_unreachable(ops_stack: OpsFactory) -> None:
    stack = await ops_stack({"model_list": group("chat", ["AIzaSyLedgerGood1"]),
                             "general_settings": {"database_url": "postgresql://postgres@127.0.0.1:1/test"}}, KEYS)
    for _ in range(3):
        assert (await stack.ask()).choices[0].message.content
    ledger = stack.gateway.ledger
    assert len(ledger.buffer) == 3 and not ledger.available
    with pytest.raises(LedgerUnavailable):
        await ledger.flush()
    status, body = await stack.admin("GET", "/admin/requests")
    assert status == 503 and body["error"]["type"] == "api_error"
    status, keys = await stack.admin("GET", "/admin/keys")
    assert status == 200 and keys["ledger_error"] and keys["data"][0]["today"] is None
