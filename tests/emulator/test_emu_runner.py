"""The standalone runner: key syntax and a real process serving requests."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from keymux.emulator import EmuKey
from keymux.emulator.__main__ import parse_keys

ROOT = Path(__file__).resolve().parents[2]


def test_parse_keys() -> None:
    keys = parse_keys("k1:rpm=5,rpd=50;k2:rpm=5 ; bad:status=invalid;z:zero;p*3:project=shared,tpm=100")
    assert keys["k1"] == EmuKey(rpm=5, rpd=50)
    assert keys["k2"] == EmuKey(rpm=5)
    assert keys["bad"] == EmuKey(status="invalid")
    assert keys["z"] == EmuKey(free_limit_zero=True)
    assert [k for k in keys if k.startswith("p")] == ["p0", "p1", "p2"]
    assert keys["p1"] == EmuKey(tpm=100, project="shared")
    with pytest.raises(ValueError):
        parse_keys("k:bogus=1")
    with pytest.raises(ValueError):
        parse_keys("k:status=weird")


async def test_runner_process() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "keymux.emulator", "gemini", "--port", "0", "--keys", "k1:rpm=1;bad:status=leaked",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        url = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()  # type: ignore[union-attr]
        assert url.startswith("http://127.0.0.1:")
        body = {"contents": [{"parts": [{"text": "hi"}]}]}
        path = f"{url}/v1beta/models/gemini-2.5-flash:generateContent"
        async with aiohttp.ClientSession() as s:
            statuses = []
            for key in ("k1", "k1", "bad"):
                async with s.post(path, json=body, headers={"x-goog-api-key": key}) as r:
                    statuses.append(r.status)
            assert statuses == [200, 429, 403]
            async with s.get(f"{url}/_emulator/stats") as r:
                stats = await r.json()
            assert stats["kinds"] == {"ok": 1, "rate_limited": 1, "leaked": 1}
            assert stats["statuses"] == {"200": 1, "429": 1, "403": 1}
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0
    assert b"answers:" in err
