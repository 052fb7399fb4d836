"""OpenAI's Codex CLI (`codex exec`, a client nobody here wrote) completes a prompt through keymux's Responses
endpoint over Gemini keys on the emulator, configured with a custom model provider. The CLI is installed from
npm into .cache/npm by scripts/codex-cli; the test runs where node/npm are (or can be) installed."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from keymux.emulator import EmuKey

from .conftest import StackFactory, gemini_group

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def codex() -> str:
    found = subprocess.run([str(ROOT / "scripts" / "codex-cli")], capture_output=True, text=True, timeout=600)
    assert found.returncode == 0, found.stderr
    return found.stdout.strip()


def config(base: str) -> str:
    return f"""
model = "chat"
model_provider = "keymux"
approval_policy = "never"
sandbox_mode = "read-only"
web_search = "disabled"  # a built-in tool: Gemini keys behind keymux serve function tools only

[model_providers.keymux]
name = "keymux"
base_url = "{base}/v1"
env_key = "KEYMUX_GATEWAY_KEY"
wire_api = "responses"
"""


async def test_codex_exec_completes_a_prompt_over_gemini_keys(codex: str, make_stack: StackFactory,
                                                              tmp_path: Path) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1"])}, gemini_keys={"k1": EmuKey()})
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(config(stack.base))
    work = tmp_path / "work"
    work.mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "CODEX_HOME": str(home),
           "KEYMUX_GATEWAY_KEY": "sk-master", "NO_COLOR": "1", "RUST_LOG": "error"}
    last = tmp_path / "last.txt"
    proc = await asyncio.create_subprocess_exec(
        codex, "exec", "--skip-git-repo-check", "--output-last-message", str(last), "-C", str(work),
        "say hello to keymux", env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=180)
    assert proc.returncode == 0, (out + err).decode(errors="replace")[-2000:]
    # The emulated model calls Codex's first tool; Codex runs its tool router on that function_call item,
    # sends the function_call_output back under the same call_id, and the model's answer to it ends the turn.
    assert last.read_text().startswith("Tool result: ")
    calls = [(c.endpoint, c.status, c.stream) for c in stack.gemini.calls]
    assert calls == [("streamGenerateContent", 200, True)] * 2
