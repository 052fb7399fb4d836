"""`/admin/usage?metrics=outcomes,latency`: requests per outcome class, latency and queue-wait percentiles;
the `queue_wait` column (migration 2) fed from the relay."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from openai import APIStatusError, RateLimitError

from keymux.emulator import EmuKey
from keymux.ledger import Ledger, Row
from keymux.ledger.sql import MIGRATIONS, VERSION_TABLE
from keymux.ledger.sqlite import SQLiteStore

from ..conftest import T0, OpsFactory, group
from .test_postgres import pg_url  # noqa: F401  (fixture)

KEYS = {"lim": EmuKey(rpm=1), "k2": EmuKey(), "q": EmuKey(), "d": EmuKey(), "bad": EmuKey(status="invalid")}


def doc(db: str) -> dict:
    return {"model_list": group("chat", ["lim"], order=1) + group("chat", ["k2"], order=2)
            + group("slow", ["q"], rpm=1) + group("daily", ["d"], rpd=1) + group("broken", ["bad"]),
            "router_settings": {"queue_timeout": 120, "num_retries": 1},
            "general_settings": {"database_url": db}}


async def drive(stack) -> None:  # type: ignore[no-untyped-def]
    await stack.ask("chat")  # lim answers
    await stack.ask("chat")  # lim: 429 from Google (undeclared rpm), k2 answers: ok and rate_limited
    await stack.ask("slow")
    queued = asyncio.create_task(stack.ask("slow"))  # rpm 1 used: waits for the next minute
    for _ in range(200):
        await asyncio.sleep(0.005)
        if stack.gateway.pool.queue_depth():
            break
    assert stack.gateway.pool.queue_depth() == 1
    stack.clock.advance(61)
    await queued
    await stack.ask("daily")
    with pytest.raises(RateLimitError):
        await stack.ask("daily")  # rpd 1 used, midnight is beyond queue_timeout: refused at once
    with pytest.raises(APIStatusError):
        await stack.ask("broken")


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path, pg_url: str) -> str:  # noqa: F811
    return f"sqlite:///{tmp_path / 'm.db'}" if request.param == "sqlite" else pg_url


async def test_outcomes_and_latency_by_group_and_bucket(ops_stack: OpsFactory, database: str) -> None:
    stack = await ops_stack(doc(database), KEYS)
    await drive(stack)
    status, body = await stack.admin("GET", "/admin/usage?by=group&since=1h&metrics=outcomes,latency")
    assert status == 200, body
    assert body["metrics"] == ["latency", "outcomes"]
    rows = {r["group"]: r for r in body["data"]}
    zero = {"ok": 0, "rate_limited": 0, "queued": 0, "refused": 0, "error": 0, "client_error": 0}
    assert rows["chat"]["outcomes"] == {**zero, "ok": 2, "rate_limited": 1}
    assert rows["slow"]["outcomes"] == {**zero, "ok": 2, "queued": 1}
    assert rows["daily"]["outcomes"] == {**zero, "ok": 1, "refused": 1}
    assert rows["broken"]["outcomes"] == {**zero, "error": 1}
    assert body["total"]["outcomes"] == {**zero, "ok": 5, "rate_limited": 1, "queued": 1, "refused": 1, "error": 1}
    slow = rows["slow"]
    assert slow["queue_wait_p50"] == 0 and slow["queue_wait_p95"] == pytest.approx(61, abs=1)
    assert slow["queue_wait_max"] == pytest.approx(61, abs=1)
    for r in rows.values():
        assert 0 < r["latency_p50"] <= r["latency_p95"] < 10
    assert body["total"]["queue_wait_max"] == pytest.approx(61, abs=1)
    assert body["total"]["latency_p50"] <= body["total"]["latency_p95"]
    # Per minute: the queued request landed one minute later.
    status, body = await stack.admin("GET", "/admin/usage?bucket=minute&since=1h&metrics=outcomes")
    assert status == 200 and "latency_p50" not in body["data"][0]
    assert sum(r["outcomes"]["queued"] for r in body["data"]) == 1 and len(body["data"]) == 2
    # The requests list shows each request's queue wait.
    status, page = await stack.admin("GET", "/admin/requests?limit=20")
    waits = sorted(r["queue_wait"] for r in page["data"])
    assert waits[-1] == pytest.approx(61, abs=1) and waits[0] == 0
    # Without `metrics`: the answer is as before.
    status, body = await stack.admin("GET", "/admin/usage?by=group")
    assert "outcomes" not in body["data"][0] and "latency_p50" not in body["total"]
    status, body = await stack.admin("GET", "/admin/usage?metrics=outcomes,nope")
    assert status == 400 and body["error"]["param"] == "metrics"


def _row(i: int, latency: float, wait: float) -> Row:
    return Row(id=f"r{i}", at=T0 + i, request_id=f"q{i}", surface="openai", client="c", group="g", key="gem:x",
               upstream_model="m", status=200, outcome="ok", attempts=(("gem:x", "ok"),), prompt_tokens=1,
               completion_tokens=1, reasoning_tokens=0, total_tokens=2, cost=0.0, value=0.0, free_tier=True,
               latency=latency, ttfb=latency, stream=False, queue_wait=wait)


async def test_percentiles_are_nearest_rank(tmp_path: Path) -> None:
    ledger = Ledger(SQLiteStore(str(tmp_path / "p.db")))
    await ledger.start()
    try:
        for i in range(1, 21):  # latencies 1..20 s, queue waits 0 but for the last two
            ledger.append(_row(i, float(i), 5.0 if i > 18 else 0.0))
        [total] = await ledger.usage(None, T0, T0 + 100, None, frozenset({"latency", "outcomes"}))
        assert (total["latency_p50"], total["latency_p95"]) == (10.0, 19.0)
        assert (total["queue_wait_p50"], total["queue_wait_p95"], total["queue_wait_max"]) == (0.0, 5.0, 5.0)
        assert total["outcomes"]["ok"] == 20 and total["outcomes"]["queued"] == 2
        [empty] = await ledger.usage(None, T0 + 500, T0 + 600, None, frozenset({"latency"}))
        assert empty["requests"] == 0 and empty["latency_p50"] is None
        by_minute = await ledger.usage("key", T0, T0 + 100, "minute", frozenset({"latency"}))
        assert sum(r["requests"] for r in by_minute) == 20 and all(r["latency_p95"] for r in by_minute)
    finally:
        await ledger.close()


async def test_a_version_1_database_gains_queue_wait(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(VERSION_TABLE)
    for statement in dict(MIGRATIONS["sqlite"])[1]:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.execute("INSERT INTO requests (id, at, sec, outcome, latency) VALUES ('old', ?, ?, 'ok', 0.5)", (T0, int(T0)))
    conn.close()
    ledger = Ledger(SQLiteStore(str(path)))
    await ledger.start()
    try:
        ledger.append(_row(1, 1.0, 2.0))
        rows = {r["id"]: r for r in await ledger.recent(10, T0 + 100)}
        assert rows["old"]["queue_wait"] is None and rows["r1"]["queue_wait"] == 2.0
        [total] = await ledger.usage(None, T0 - 1, T0 + 100, None, frozenset({"latency"}))
        assert total["requests"] == 2 and total["queue_wait_max"] == 2.0
    finally:
        await ledger.close()
