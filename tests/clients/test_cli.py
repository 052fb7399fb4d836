"""`keymux clients ...` against a running gateway, in a real subprocess: create prints the key once, the key
works within its scope and rpm, list shows it by name and fingerprint only, disable and delete take effect."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import openai
import pytest

from keymux.emulator import EmuKey

from ..conftest import MASTER, MSG, OpsFactory, group


async def cli(base: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "KEYMUX_MASTER_KEY": MASTER, "KEYMUX_URL": base}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "keymux", "clients", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_create_list_disable_delete_from_the_command_line(ops_stack: OpsFactory, tmp_path: Path) -> None:
    doc = {"model_list": group("gemini-image", ["AIzaSyCliClients1"]) + group("chat", ["AIzaSyCliClients2"]),
           "router_settings": {"queue_timeout": 0, "num_retries": 0},
           "general_settings": {"database_url": f"sqlite:///{tmp_path / 'l.db'}"}}
    stack = await ops_stack(doc, {"AIzaSyCliClients1": EmuKey(), "AIzaSyCliClients2": EmuKey()})
    code, out, err = await cli(stack.base, "create", "--name", "image-job", "--models", "gemini-image", "--rpm", "10",
                               "--budget", "2/day")
    assert code == 0, err
    assert "image-job (key:" in out and "rpm 10, $2.00/day" in out and "shown this once" in err
    secret = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("key: "))
    client = stack.openai(secret)
    assert (await client.chat.completions.create(model="gemini-image", messages=MSG)).choices
    with pytest.raises(openai.PermissionDeniedError):
        await client.chat.completions.create(model="chat", messages=MSG)

    code, out, _ = await cli(stack.base, "list")
    assert code == 0 and "image-job" in out and "gemini-image" in out and "$2.00/day" in out
    assert secret not in out

    code, out, _ = await cli(stack.base, "disable", "image-job")
    assert code == 0 and "disabled" in out
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="gemini-image", messages=MSG)
    code, _, err = await cli(stack.base, "create", "--name", "bad", "--budget", "lots")
    assert code == 1 and "400" in err and "2/day" in err
    code, out, _ = await cli(stack.base, "delete", "image-job")
    assert code == 0 and "deleted gateway key image-job" in out
    code, _, err = await cli(stack.base, "rotate", "image-job")
    assert code == 1 and "404" in err
