"""PostgreSQL as it fails in real life: rows it refuses, and a server that stops answering (a lock held by
another connection), against the real server."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest

from keymux.ledger import LedgerUnavailable

from ..conftest import OpsFactory, group
from .test_ledger import KEYS
from .test_poisoned_rows import POISON, raw_chat
from .test_postgres import _fetch, pg_url  # noqa: F401  (fixture)


def doc(url: str) -> dict:
    return {"model_list": group("chat", ["AIzaSyLedgerGood1"]), "general_settings": {"database_url": url}}


async def test_poisoned_rows_are_written_or_dropped_never_retried_forever(
        ops_stack: OpsFactory, pg_url: str, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    stack = await ops_stack(doc(pg_url), KEYS)
    ledger = stack.gateway.ledger
    ledger.interval = 3600
    for rid in POISON:
        assert await raw_chat(stack.server.port, rid) == 200
    await stack.ask()
    await stack.ask()
    ledger.buffer[-2] = ledger.buffer[-2]._replace(request_id="nul\x00inside", detail="also\x00here")
    ledger.buffer[-1] = ledger.buffer[-1]._replace(total_tokens=2 ** 70, request_id="req-too-big")
    with caplog.at_level(logging.ERROR, "keymux.ledger"):
        await ledger.flush()
    assert ledger.available and ledger.written == 4 and ledger.rejected == 1 and not ledger.buffer
    assert "req-too-big" in caplog.text
    ids = {r["request_id"] for r in await _fetch(pg_url, "SELECT request_id FROM requests")}
    assert {"\\xff\\xfe-not-utf8", "nul\\x00inside"} <= ids
    status, _ = await stack.admin("GET", "/admin/requests")
    assert status == 200


async def test_a_hung_postgres_answers_the_admin_api_with_a_prompt_503(ops_stack: OpsFactory,
                                                                       pg_url: str) -> None:  # noqa: F811
    stack = await ops_stack(doc(pg_url), KEYS)
    ledger = stack.gateway.ledger
    ledger.store.timeout = 0.5
    ledger.interval = 3600
    await stack.ask()
    await ledger.flush()
    base, _, schema = pg_url.partition("?schema=")
    holder = await asyncpg.connect(base, server_settings={"search_path": schema})
    loop = asyncio.get_running_loop()
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")
        assert (await stack.ask()).choices[0].message.content  # clients are served all along
        started = loop.time()
        with pytest.raises(LedgerUnavailable, match="within 0.5 s|canceling statement"):
            await ledger.flush()
        status, body = await stack.admin("GET", "/admin/usage")
        assert status == 503 and "ledger is unavailable" in body["error"]["message"]
        status, _ = await stack.admin("GET", "/admin/keys")
        assert status == 200  # the key list shows without today's totals
        assert loop.time() - started < 4.0
        status, text = await stack.admin("GET", "/metrics", raw=True)
        assert b"keymux_ledger_up 0" in text and b"keymux_ledger_buffer_rows 1" in text
        await tx.rollback()
    finally:
        await holder.close()
    await ledger.flush()
    assert ledger.written == 2 and ledger.available
    status, body = await stack.admin("GET", "/admin/usage")
    assert status == 200 and body["total"]["requests"] == 2
