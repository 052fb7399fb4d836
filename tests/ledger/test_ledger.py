"""Every request is recorded once, with its cost, and nothing is lost across a clean stop or a database outage."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from openai import APIStatusError, RateLimitError

from keymux.app import Gateway
from keymux.clock import FakeClock
from keymux.config.load import parse_config
from keymux.emulator import EmuKey
from keymux.ledger import LedgerUnavailable
from keymux.ledger.sql import SCHEMA_VERSION
from keymux.pricing import PRICES

from ..conftest import MASTER, MSG, OpsFactory, OpsStack, group

KEYS = {"AIzaSyLedgerGood1": EmuKey(), "AIzaSyLedgerGood2": EmuKey(), "AIzaSyLedgerBad": EmuKey(status="invalid"), "AIzaSyLedgerSlow": EmuKey(rpm=1)}


def mixed_doc(db: str) -> dict:
    return {"model_list": group("chat", ["AIzaSyLedgerGood1", "AIzaSyLedgerGood2"], rpm=100)
            + group("broken", ["AIzaSyLedgerBad"])
            + group("tight", ["AIzaSyLedgerSlow"], rpm=1, model="gemini-2.5-pro")
            + [{"model_name": "paid", "litellm_params": {"model": "gemini/gemini-2.5-pro", "api_key": "AIzaSyLedgerGood1"},
                "model_info": {"tier": "paid"}}],
            "router_settings": {"queue_timeout": 0, "num_retries": 0},
            "general_settings": {"database_url": db}}


async def run_mix(stack: OpsStack) -> None:
    client = stack.openai()
    for _ in range(3):
        await client.chat.completions.create(model="chat", messages=MSG)
    stream = await client.chat.completions.create(model="chat", messages=MSG, stream=True,
                                                  stream_options={"include_usage": True})
    async for _ in stream:
        pass
    await client.chat.completions.create(model="paid", messages=MSG)
    with pytest.raises(APIStatusError):
        await client.chat.completions.create(model="broken", messages=MSG)
    await client.chat.completions.create(model="tight", messages=MSG)
    with pytest.raises(RateLimitError):
        await client.chat.completions.create(model="tight", messages=MSG)


def read_rows(path: Path) -> list[dict]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM requests ORDER BY at, rowid")]
    conn.close()
    return rows


async def test_sqlite_rows_after_a_mix_and_a_clean_stop(ops_stack: OpsFactory, tmp_path: Path) -> None:
    db = tmp_path / "usage.db"
    stack = await ops_stack(mixed_doc(f"sqlite:///{db}"), KEYS)
    await run_mix(stack)
    assert len(stack.gateway.ledger.buffer) > 0 or stack.gateway.ledger.written > 0
    await stack.server.close()  # app cleanup: the writer flushes
    rows = read_rows(db)
    assert len(rows) == 8
    by_outcome: dict[str, int] = {}
    for r in rows:
        by_outcome[r["outcome"]] = by_outcome.get(r["outcome"], 0) + 1
    assert by_outcome == {"ok": 6, "failed": 1, "refused": 1}
    ok = [r for r in rows if r["outcome"] == "ok"]
    assert all(r["total_tokens"] > 0 and r["prompt_tokens"] > 0 and r["latency"] is not None for r in ok)
    assert sum(r["stream"] for r in rows) == 1
    streamed = next(r for r in rows if r["stream"])
    assert streamed["total_tokens"] > 0 and streamed["ttfb"] is not None
    # Free tier Gemini keys cost nothing but keep their value; the paid deployment is charged.
    free = [r for r in ok if r["grp"] == "chat"]
    assert all(r["cost"] == 0 and r["value"] > 0 and r["free_tier"] == 1 for r in free)
    paid = next(r for r in rows if r["grp"] == "paid")
    price = PRICES[("gemini", "gemini-2.5-pro")]
    assert paid["cost"] == pytest.approx((paid["prompt_tokens"] * price.input
                                          + paid["completion_tokens"] * price.output) / 1e6)
    assert paid["free_tier"] == 0 and paid["cost"] == paid["value"] > 0
    failed = next(r for r in rows if r["outcome"] == "failed")
    assert failed["key"] is None and failed["status"] == 503 and "invalid_key" in failed["attempts"]
    refused = next(r for r in rows if r["outcome"] == "refused")
    assert refused["status"] == 429 and refused["n_attempts"] == 0 and refused["grp"] == "tight"
    assert {r["surface"] for r in rows} == {"openai"} and {r["client"] for r in rows} == {"master"}
    # The file holds no key and no master key, only fingerprints.
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("usage.db*"))
    for secret in (*KEYS, MASTER):
        assert secret.encode() not in blob
    assert oct(db.stat().st_mode & 0o777) == "0o600"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


async def test_rows_are_written_in_batches_off_the_request_path(ops_stack: OpsFactory, tmp_path: Path) -> None:
    stack = await ops_stack({"model_list": group("chat", ["AIzaSyLedgerGood1"]),
                             "general_settings": {"database_url": f"sqlite:///{tmp_path / 'b.db'}"}}, KEYS)
    ledger = stack.gateway.ledger
    ledger.interval = 3600  # the writer only wakes for a full batch (or an explicit flush)
    ledger.batch = 1000
    for _ in range(3):
        await stack.ask()
    assert len(ledger.buffer) == 3 and ledger.written == 0
    await ledger.flush()
    assert len(ledger.buffer) == 0 and ledger.written == 3


async def test_in_memory_ledger_when_the_config_has_no_file() -> None:
    config = parse_config({"model_list": group("chat", ["k1"])}, env={})
    gateway = Gateway(config, clock=FakeClock())
    assert gateway.ledger.store.where == "sqlite (in memory)"
    await gateway.ledger.start()
    await gateway.ledger.close()


async def test_requests_keep_succeeding_while_sqlite_cannot_be_written(ops_stack: OpsFactory, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    stack = await ops_stack({"model_list": group("chat", ["AIzaSyLedgerGood1"]),
                             "general_settings": {"database_url": f"sqlite:///{blocker / 'x.db'}"}}, KEYS)
    ledger = stack.gateway.ledger
    ledger.max_buffer = 3
    for _ in range(5):
        answer = await stack.ask()
        assert answer.choices[0].message.content
    assert len(ledger.buffer) == 3 and ledger.dropped == 2 and not ledger.available
    with pytest.raises(LedgerUnavailable):
        await ledger.flush()
    status, body = await stack.admin("GET", "/admin/usage")
    assert status == 503 and "ledger is unavailable" in body["error"]["message"]
    status, text = await stack.admin("GET", "/metrics", raw=True)
    assert b"keymux_ledger_dropped_rows_total 2" in text and b"keymux_ledger_buffer_rows 3" in text
    # The database comes back (here: the path becomes writable): the kept rows are written.
    blocker.unlink()
    blocker.mkdir()
    await ledger.flush()
    assert ledger.written == 3 and ledger.available


async def test_a_write_failure_keeps_rows_and_retries(ops_stack: OpsFactory, tmp_path: Path) -> None:
    stack = await ops_stack({"model_list": group("chat", ["AIzaSyLedgerGood1"]),
                             "general_settings": {"database_url": f"sqlite:///{tmp_path / 'c.db'}"}}, KEYS)
    ledger = stack.gateway.ledger
    real = ledger.store.write
    calls = 0

    async def failing(rows):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        raise LedgerUnavailable("database or disk is full")

    ledger.store.write = failing  # type: ignore[method-assign]
    await stack.ask()
    await stack.ask()
    with pytest.raises(LedgerUnavailable):
        await ledger.flush()
    assert calls == 1 and len(ledger.buffer) == 2
    ledger.store.write = real  # type: ignore[method-assign]
    await ledger.flush()
    assert len(await ledger.recent(10, 1e18)) == 2


async def test_nothing_lost_when_many_requests_end_right_before_the_stop(ops_stack: OpsFactory,
                                                                        tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    stack = await ops_stack({"model_list": group("chat", ["AIzaSyLedgerGood1", "AIzaSyLedgerGood2"], rpm=1000),
                             "general_settings": {"database_url": f"sqlite:///{db}"}}, KEYS)
    stack.gateway.ledger.interval = 3600
    await asyncio.gather(*[stack.ask() for _ in range(30)])
    await stack.server.close()
    assert len(read_rows(db)) == 30
