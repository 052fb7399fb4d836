"""Real processes, real time: two `keymux serve` replicas sharing Redis in front of one emulator
send exactly what the keys' declared limits allow (3 keys x 2 rpm = 6 upstream calls), not 12."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import yaml

from .conftest import REDIS_HOST, REDIS_PORT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "keymux serve exited"
            try:
                async with http.get(f"{url}/health/readiness") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} not ready in {timeout} s")


async def test_two_processes_send_six_upstream_calls_not_twelve(namespace: str, tmp_path: Path) -> None:
    emu_argv = [sys.executable, "-m", "keymux.emulator", "gemini", "--keys", "k0:rpm=2;k1:rpm=2;k2:rpm=2"]
    emu = subprocess.Popen(emu_argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # noqa: ASYNC220
    procs: list[subprocess.Popen] = [emu]
    try:
        assert emu.stdout is not None
        emu_url = emu.stdout.readline().strip()
        config = {
            "model_list": [{"model_name": "chat", "litellm_params": {"model": "gemini/gemini-2.5-flash",
                                                                      "api_key": f"k{i}", "rpm": 2}} for i in range(3)],
            "router_settings": {"redis_host": REDIS_HOST, "redis_port": REDIS_PORT, "redis_namespace": namespace,
                                "queue_timeout": 0},
            "general_settings": {"master_key": "sk-master"},
        }
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {**os.environ, "KEYMUX_GEMINI_API_BASE": emu_url}
        urls = []
        for _ in range(2):
            port = _free_port()
            argv = [sys.executable, "-m", "keymux", "serve", "-c", str(path), "--host", "127.0.0.1", "--port", str(port)]
            procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,  # noqa: ASYNC220
                                          stderr=subprocess.DEVNULL))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs[1:]):
            await _wait_ready(url, proc)

        body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"Authorization": "Bearer sk-master"}
        async with aiohttp.ClientSession() as http:
            async def ask(url: str) -> int:
                async with http.post(f"{url}/v1/chat/completions", json=body, headers=headers) as resp:
                    await resp.read()
                    return resp.status

            statuses = await asyncio.gather(*[ask(urls[i % 2]) for i in range(20)])
            async with http.get(f"{emu_url}/_emulator/stats") as resp:
                stats = await resp.json()
        assert statuses.count(200) == 6 and statuses.count(429) == 14, statuses
        assert stats["total"] == 6 and stats["statuses"] == {"200": 6}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def test_workers_share_the_quota_and_their_ledger_rows_and_logs(namespace: str, tmp_path: Path) -> None:
    """`keymux serve --workers 2`: forked workers on one port count one quota in Redis, and each request
    gets its own id (they key ledger rows: repeats were skipped as duplicates) and its own log line."""
    import re
    import sqlite3

    emu = subprocess.Popen([sys.executable, "-m", "keymux.emulator", "gemini", "--keys", "k0:rpm=2;k1:rpm=2"],  # noqa: ASYNC220
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    server: subprocess.Popen | None = None
    try:
        assert emu.stdout is not None
        emu_url = emu.stdout.readline().strip()
        db = tmp_path / "ledger.db"
        config = {
            "model_list": [{"model_name": "chat", "litellm_params": {"model": "gemini/gemini-2.5-flash",
                                                                      "api_key": f"k{i}", "rpm": 2}} for i in range(2)],
            "router_settings": {"redis_host": REDIS_HOST, "redis_port": REDIS_PORT, "redis_namespace": namespace,
                                "queue_timeout": 0},
            "general_settings": {"master_key": "sk-master", "database_url": f"sqlite:///{db}"},
        }
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        port = _free_port()
        server = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "keymux", "serve", "-c", str(path), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "2"], env={**os.environ, "KEYMUX_GEMINI_API_BASE": emu_url},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        url = f"http://127.0.0.1:{port}"
        lines: list[str] = []
        both_up = threading.Event()

        def collect() -> None:  # the output, read as it comes: both workers must be up before the requests
            assert server is not None and server.stdout is not None
            for line in server.stdout:
                lines.append(line)
                if sum("keymux listening" in seen for seen in lines) == 2:
                    both_up.set()

        reader = threading.Thread(target=collect, daemon=True)
        reader.start()
        await _wait_ready(url, server)
        assert await asyncio.to_thread(both_up.wait, 20), "".join(lines)
        body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        async with aiohttp.ClientSession() as http:
            async def ask() -> int:
                async with http.post(f"{url}/v1/chat/completions", json=body,
                                     headers={"Authorization": "Bearer sk-master"}) as resp:
                    await resp.read()
                    return resp.status

            statuses = await asyncio.gather(*[ask() for _ in range(10)])
            async with http.get(f"{emu_url}/_emulator/stats") as resp:
                stats = await resp.json()
        assert statuses.count(200) == 4 and stats["total"] == 4
        server.terminate()
        server.wait(15)
        reader.join(5)
        output = "".join(lines)
        assert output.count("keymux listening") == 2
        ids = re.findall(r"keymux\.relay: (\S+) openai", output)
        assert len(ids) == 10 and len(set(ids)) == 10  # one line per request, none repeated across workers
        rows = sqlite3.connect(db).execute("SELECT count(*), count(DISTINCT id) FROM requests").fetchone()
        assert rows == (10, 10)
    finally:
        for proc in (server, emu):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)
