"""`keymux serve` with no config file, as a container on a PaaS runs it: keys and settings from environment
variables alone (PORT as PaaS hosts set it), the ledger in the working directory; and the start-up errors a
new user meets said in one line, not a traceback."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
from pathlib import Path

import aiohttp

from keymux.emulator import EmuKey, GeminiEmulator

ROOT = Path(__file__).resolve().parent.parent
MASTER = "sk-keymux-env-test"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "KEYMUX_", "LITELLM_"))}
    env.pop("PORT", None)
    return env | {"PYTHONPATH": str(ROOT)} | extra


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def keymux(*args: str, env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "keymux", *args, env=env, cwd=cwd,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


async def read_until(proc: asyncio.subprocess.Process, text: str) -> str:
    assert proc.stdout is not None
    seen = ""
    while text not in seen:
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert line, f"keymux ended before printing {text!r}:\n{seen}"
        seen += line.decode()
    return seen


async def test_serve_from_environment_alone(tmp_path: Path) -> None:
    async with GeminiEmulator({"env-key-1": EmuKey(), "env-key-2": EmuKey()}) as emu:
        port = free_port()
        env = clean_env(GEMINI_KEY_CHAT_1="env-key-1", GEMINI_KEY_CHAT_2="env-key-2", KEYMUX_MASTER_KEY=MASTER,
                        KEYMUX_RPM_CHAT="7", KEYMUX_QUEUE_TIMEOUT="5", KEYMUX_GEMINI_API_BASE=str(emu.base_url),
                        PORT=str(port), KEYMUX_HOST="127.0.0.1")
        proc = await keymux("serve", env=env, cwd=tmp_path)
        try:
            started = await read_until(proc, "keymux listening")
            assert f"http://127.0.0.1:{port}" in started and "gemini-chat; 2 keys" in started
            body = {"model": "gemini-chat", "messages": [{"role": "user", "content": "from env"}]}
            async with aiohttp.ClientSession(headers={"authorization": f"Bearer {MASTER}"}) as http:
                async with http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body) as resp:
                    assert resp.status == 200
                    assert (await resp.json())["choices"][0]["message"]["content"] == "Echo: from env"
                async with http.get(f"http://127.0.0.1:{port}/admin/keys") as resp:
                    keys = (await resp.json())["data"]
            assert [m["limits"]["rpm"]["declared"] for k in keys for m in k["models"]] == [7, 7]  # KEYMUX_RPM_CHAT
        finally:
            proc.send_signal(signal.SIGTERM)
            rest = (await asyncio.wait_for(proc.communicate(), 20))[0].decode()
        assert proc.returncode == 0, rest
        assert "env-key-" not in started + rest and MASTER not in started + rest
    with sqlite3.connect(tmp_path / "keymux.db") as conn:  # no config file: the ledger is in the cwd
        assert conn.execute("SELECT status, grp FROM requests").fetchall() == [(200, "gemini-chat")]


async def test_serve_without_config_or_keys_says_what_to_set(tmp_path: Path) -> None:
    proc = await keymux("serve", env=clean_env(), cwd=tmp_path)
    out = (await asyncio.wait_for(proc.communicate(), 20))[0].decode()
    assert proc.returncode == 2
    assert "no --config (or KEYMUX_CONFIG)" in out and "GEMINI_KEY_CHAT_1" in out and "Traceback" not in out


async def test_serve_on_a_busy_port_explains_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = clean_env(GEMINI_KEY_CHAT_1="AIzaSyBusyPortKey", KEYMUX_PORT=str(port), KEYMUX_HOST="127.0.0.1")
        proc = await keymux("serve", env=env, cwd=tmp_path)
        out = (await asyncio.wait_for(proc.communicate(), 20))[0].decode()
    assert proc.returncode == 1
    assert f"keymux: cannot listen on 127.0.0.1:{port} (address already in use)" in out.lower()
    assert "Traceback" not in out and "AIzaSy" not in out
