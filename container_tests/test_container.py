"""The image as users run it: `docker run` with settings from env vars alone (a PaaS), against the demo's
Gemini emulator on this host (host networking). Liveness and the HEALTHCHECK command, a chat request, and
`docker stop`'s SIGTERM with a request in flight: it is answered and its ledger row is on the volume."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from container_tests.docker import IMAGE, Log, free_port, run
from keymux.demo import EMULATED
from keymux.emulator import GeminiEmulator

MASTER = "sk-keymux-container-test"


@pytest.fixture
async def emulator() -> AsyncIterator[GeminiEmulator]:
    emu = GeminiEmulator(EMULATED)
    await emu.serve()
    yield emu
    await emu.close()


async def start(emulator: GeminiEmulator, data: Path, *docker_args: str) -> tuple[Log, str, str]:
    """`docker run` of the image, settings from env vars alone; (its log, its name, its base URL)."""
    port, name = free_port(), f"keymux-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "GEMINI_KEY_CHAT_1": "demo-key-alpha", "GEMINI_KEY_CHAT_2": "demo-key-gamma",
           "KEYMUX_MASTER_KEY": MASTER}
    proc = await asyncio.create_subprocess_exec(
        "docker", "run", "--rm", "--name", name, "--network", "host", "-v", f"{data}:/data", *docker_args,
        "-e", f"KEYMUX_PORT={port}", "-e", "KEYMUX_HOST=127.0.0.1", "-e", f"KEYMUX_GEMINI_API_BASE={emulator.base_url}",
        # values from this process's environment: keys never on a command line
        "-e", "GEMINI_KEY_CHAT_1", "-e", "GEMINI_KEY_CHAT_2", "-e", "KEYMUX_MASTER_KEY",
        IMAGE, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    log = Log(proc)
    try:
        await log.wait_for("keymux listening")
    except AssertionError:
        await stop(log, name)
        raise
    return log, name, f"http://127.0.0.1:{port}"


async def stop(log: Log, name: str) -> None:
    if log.proc.returncode is None:
        await run("docker", "rm", "-f", name)
    await log.close()


async def test_container_serves_from_env_and_drains_on_sigterm(emulator: GeminiEmulator, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o777)  # the image runs as uid 10001, not as the test's user
    log, name, base = await start(emulator, data)
    proc = log.proc
    try:
        assert "1 groups: gemini-chat; 2 keys" in log.text
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/health/liveliness") as resp:
                assert resp.status == 200
            rc, out = await run("docker", "exec", name, "python3", "-m", "keymux.probe")  # the HEALTHCHECK
            assert rc == 0, out
            rc, user = await run("docker", "exec", name, "id", "-un")
            assert user.strip() == "keymux"

            body = {"model": "gemini-chat", "messages": [{"role": "user", "content": "hello"}]}
            async with http.post(f"{base}/v1/chat/completions", json=body) as resp:
                assert resp.status == 401
                assert (await resp.json())["error"]["type"]
            auth = {"authorization": f"Bearer {MASTER}"}
            async with http.post(f"{base}/v1/chat/completions", json=body, headers=auth) as resp:
                assert resp.status == 200
                assert (await resp.json())["choices"][0]["message"]["content"] == "Echo: hello"
                assert resp.headers["x-keymux-key"].startswith("gem:")

            emulator.hold()
            in_flight = asyncio.create_task(http.post(
                f"{base}/v1/chat/completions", json={**body, "messages": [{"role": "user", "content": "drain"}]},
                headers={**auth, "x-request-id": "in-flight-at-sigterm"}))
            await asyncio.wait_for(emulator.wait_held(1), 30)
            rc, out = await run("docker", "kill", "--signal", "TERM", name)
            assert rc == 0, out
            await log.wait_for("shutting down")
            emulator.release()
            resp = await asyncio.wait_for(in_flight, 30)
            assert resp.status == 200
            assert (await resp.json())["choices"][0]["message"]["content"] == "Echo: drain"
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        await stop(log, name)
    assert "demo-key-" not in log.text and MASTER not in log.text  # fingerprints only
    db = data / "keymux.db"
    assert db.stat().st_uid == 10001
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT status, grp FROM requests WHERE request_id = 'in-flight-at-sigterm'").fetchall()
        assert rows == [(200, "gemini-chat")]
        assert conn.execute("SELECT count(*) FROM requests WHERE status = 200").fetchone()[0] == 2


async def test_started_as_root_it_takes_a_root_owned_volume_and_drops_to_its_user(
        emulator: GeminiEmulator, tmp_path: Path) -> None:
    data = tmp_path / "root-owned"
    data.mkdir(mode=0o755)  # as Railway mounts a volume: root's, not writable by uid 10001
    assert data.stat().st_uid == 0
    log, name, base = await start(emulator, data, "--user", "0")
    try:
        rc, status = await run("docker", "exec", name, "cat", "/proc/1/status")
        assert rc == 0 and "\nUid:\t10001\t10001\t10001\t10001" in status  # the gateway itself is not root
        async with aiohttp.ClientSession(headers={"authorization": f"Bearer {MASTER}"}) as http:
            body = {"model": "gemini-chat", "messages": [{"role": "user", "content": "as root"}]}
            async with http.post(f"{base}/v1/chat/completions", json=body) as resp:
                assert resp.status == 200
        rc, out = await run("docker", "kill", "--signal", "TERM", name)
        assert rc == 0, out
        assert await asyncio.wait_for(log.proc.wait(), 30) == 0
    finally:
        await stop(log, name)
    assert data.stat().st_uid == 10001 and (data / "keymux.db").stat().st_uid == 10001
    with sqlite3.connect(data / "keymux.db") as conn:
        assert conn.execute("SELECT count(*) FROM requests WHERE status = 200").fetchone()[0] == 1
