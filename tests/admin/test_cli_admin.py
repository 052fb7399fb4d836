"""`keymux keys` and `keymux usage` against a running server."""

from __future__ import annotations

import asyncio

from keymux.admin_cli import bar, render_keys
from keymux.cli import main
from keymux.emulator import EmuKey
from keymux.fingerprint import fingerprint

from ..conftest import MASTER, OpsFactory, group

KEYS = {"AIzaSyCliKeyOne": EmuKey(), "AIzaSyCliKeyTwo": EmuKey()}


async def test_keys_and_usage_tables(ops_stack: OpsFactory, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack({"model_list": group("chat", list(KEYS), rpm=2, rpd=100),
                             "general_settings": {"database_url": f"sqlite:///{tmp_path / 'cli.db'}"}}, KEYS)
    for _ in range(3):
        await stack.ask()
    assert await asyncio.to_thread(main, ["keys", "--url", stack.base, "--key", MASTER]) == 0
    out = capsys.readouterr().out
    assert fingerprint("AIzaSyCliKeyOne") in out and "RPM" in out and "/2" in out and "/100" in out
    assert "\x1b[" not in out  # not a terminal: no colours
    assert await asyncio.to_thread(main, ["usage", "--url", stack.base, "--key", MASTER, "--by", "group"]) == 0
    out = capsys.readouterr().out
    assert "chat" in out and "total" in out and " 3 " in out
    assert await asyncio.to_thread(main, ["keys", "--url", stack.base, "--key", "wrong"]) == 1
    assert "401: invalid gateway key" in capsys.readouterr().err
    for secret in (*KEYS, MASTER):
        assert secret not in out


def test_bars_and_colours() -> None:
    assert bar(37, 100) == "████······ 37/100"
    assert bar(0, None) == "-"
    doc = {"data": [{"key": "gem:1", "today": None, "models": [
        {"groups": ["g"], "model": "m", "state": "cooling", "until_in": 42.0, "why": "rpm 2 reached",
         "limits": {"rpm": {"used": 2, "limit": 2}, "rpd": {"used": 5, "limit": None}}}]}]}
    text = render_keys(doc, colour=True)
    assert "\x1b[33mcooling\x1b[0m" in text and "42s" in text and "██████████ 2/2" in text
