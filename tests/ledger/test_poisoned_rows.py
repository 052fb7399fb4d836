"""A row the database refuses (bytes that are not UTF-8, NULs, absurd lengths) never stops the ledger."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
import pytest

from ..conftest import MASTER, OpsFactory, group
from .test_ledger import KEYS, read_rows


async def raw_chat(port: int, request_id: bytes) -> int:
    """One chat request with an `X-Request-Id` holding exactly these bytes (no client library would send them)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = orjson.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 b"Authorization: Bearer " + MASTER.encode() + b"\r\nContent-Type: application/json\r\n"
                 b"X-Request-Id: " + request_id + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
                 + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return int(answer.split(b" ", 2)[1])


POISON = [b"\xff\xfe-not-utf8", b"\xed\xa0\x80-surrogate", b"long-" + b"x" * 8000]  # aiohttp refuses NULs itself


async def test_poisoned_request_ids_do_not_kill_the_sqlite_writer(ops_stack: OpsFactory, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "p.db"
    stack = await ops_stack({"model_list": group("chat", ["AIzaSyLedgerGood1"]),
                             "general_settings": {"database_url": f"sqlite:///{db}"}}, KEYS)
    ledger = stack.gateway.ledger
    for rid in POISON:
        assert await raw_chat(stack.server.port, rid) == 200
    await stack.ask()
    await ledger.flush()
    assert ledger.available and ledger.written == 4 and not ledger.buffer
    rows = read_rows(db)
    ids = sorted(r["request_id"] for r in rows if r["request_id"] and not r["request_id"].startswith("req"))
    assert "\\xff\\xfe-not-utf8" in ids and "\\xed\\xa0\\x80-surrogate" in ids
    assert all(len(r["request_id"]) <= 200 for r in rows)
    for path in ("/admin/keys", "/admin/usage", "/admin/requests"):
        status, _ = await stack.admin("GET", path)
        assert status == 200, path
    status, text = await stack.admin("GET", "/metrics", raw=True)
    assert b"keymux_ledger_up 1" in text
    # More requests after the poisoned ones are written too, and a stop flushes what is buffered.
    ledger.interval = 3600
    assert await raw_chat(stack.server.port, b"\xc3\x28") == 200
    await stack.ask()
    with caplog.at_level(logging.ERROR, "keymux.ledger"):
        await stack.server.close()
    assert len(read_rows(db)) == 6
    assert "could not be written" not in caplog.text


async def test_a_row_the_database_still_refuses_is_dropped_counted_and_named(
        ops_stack: OpsFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "q.db"
    stack = await ops_stack({"model_list": group("chat", ["AIzaSyLedgerGood1"]),
                             "general_settings": {"database_url": f"sqlite:///{db}"}}, KEYS)
    ledger = stack.gateway.ledger
    ledger.interval = 3600
    for _ in range(3):
        await stack.ask()
    # Text the edge cleans (NUL, a lone surrogate), then a row no cleaning can save (a token count SQLite
    # cannot hold), between good ones.
    ledger.buffer[0] = ledger.buffer[0]._replace(request_id="nul\x00and\ud800", client="c" * 10_000)
    ledger.buffer[1] = ledger.buffer[1]._replace(prompt_tokens=2 ** 70, request_id="req-poisoned")
    with caplog.at_level(logging.ERROR, "keymux.ledger"):
        await ledger.flush()
    assert ledger.written == 2 and ledger.rejected == 1 and not ledger.buffer and ledger.available
    assert "req-poisoned" in caplog.text and "dropped" in caplog.text
    status, text = await stack.admin("GET", "/metrics", raw=True)
    assert status == 200 and b"keymux_ledger_up 1" in text
    assert b"keymux_ledger_rejected_rows_total 1" in text
    rows = read_rows(db)
    assert len(rows) == 2 and rows[0]["request_id"] == "nul\\x00and\\ud800" and len(rows[0]["client"]) <= 200


async def test_sigterm_writes_every_buffered_row_poisoned_ones_included(tmp_path: Path) -> None:
    """`keymux serve` as a process: poisoned requests, then SIGTERM at once (their rows still buffered)."""
    import os
    import signal
    import socket
    import sys

    import aiohttp
    import yaml

    from keymux.emulator import GeminiEmulator

    emu = GeminiEmulator({"AIzaSyLedgerGood1": KEYS["AIzaSyLedgerGood1"]})
    base = await emu.serve()
    db = tmp_path / "term.db"
    config = tmp_path / "keymux.yaml"
    config.write_text(yaml.safe_dump({
        "model_list": [{"model_name": "chat", "litellm_params": {"model": "gemini/gemini-2.5-flash",
                                                                  "api_key": "AIzaSyLedgerGood1", "api_base": base}}],
        "general_settings": {"master_key": MASTER, "database_url": f"sqlite:///{db}"}}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "keymux", "serve", "--config", str(config),
                                                "--port", str(port), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, env=os.environ.copy())
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        async with aiohttp.ClientSession() as http:
            while True:  # until it is ready (start-up time is the process's, not a fixed wait)
                try:
                    async with http.get(f"http://127.0.0.1:{port}/health/readiness") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert proc.returncode is None and loop.time() < deadline
                await asyncio.sleep(0.05)
        for rid in (*POISON, b"plain-id"):
            assert await raw_chat(port, rid) == 200
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await emu.close()
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "Traceback" not in text and "could not be written" not in text
    assert len(read_rows(db)) == len(POISON) + 1
