"""Claude Code (`@anthropic-ai/claude-code` from npm), a client nobody here wrote, run non-interactively
(`claude -p`) with ANTHROPIC_BASE_URL at keymux over Gemini keys on the emulator, nonessential traffic off.

The package is installed from the npm registry into .cache/npm under the repository (gitignored) the first
time; its native binary comes in the platform package npm picks (optionalDependencies).
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
from pathlib import Path

import pytest

from keymux.emulator import EmuKey

from .conftest import Stack, StackFactory, gemini_group

ROOT = Path(__file__).resolve().parents[2]
PREFIX = ROOT / ".cache" / "npm"
ARCH = {"x86_64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
BINARY = PREFIX / "node_modules" / "@anthropic-ai" / f"claude-code-linux-{ARCH}" / "claude"
# Claude Code's own model names (main, fast and subagent models) all routed to the Gemini group.
CLAUDE_IDS = ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-5"]


@pytest.fixture(scope="module")
def claude() -> Path:
    if not BINARY.exists():
        subprocess.run(["npm", "install", "--prefix", str(PREFIX), "--no-audit", "--no-fund",
                        "@anthropic-ai/claude-code"], check=True, timeout=600, capture_output=True)
    assert BINARY.exists(), f"npm installed no Claude Code binary at {BINARY}"
    return BINARY


async def _stack(make_stack: StackFactory) -> Stack:
    doc = {"model_list": gemini_group("gemini-chat", ["k1"]),
           "aliases": {name: "gemini-chat" for name in CLAUDE_IDS}}
    return await make_stack(doc, gemini_keys={"k1": EmuKey()})


async def _run(claude: Path, stack: Stack, prompt: str, home: Path, *extra: str) -> tuple[int, str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "ANTHROPIC_BASE_URL": stack.base, "ANTHROPIC_API_KEY": "sk-master",
           "ANTHROPIC_MODEL": "claude-sonnet-4-5", "ANTHROPIC_SMALL_FAST_MODEL": "claude-haiku-4-5",
           "ANTHROPIC_DEFAULT_HAIKU_MODEL": "claude-haiku-4-5", "ANTHROPIC_DEFAULT_SONNET_MODEL": "claude-sonnet-4-5",
           "ANTHROPIC_DEFAULT_OPUS_MODEL": "claude-opus-4-5",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
           "DISABLE_ERROR_REPORTING": "1", "DISABLE_BUG_COMMAND": "1", "CLAUDE_CODE_ENABLE_TELEMETRY": "0",
           "IS_SANDBOX": "1"}
    proc = await asyncio.create_subprocess_exec(
        str(claude), "-p", prompt, "--output-format", "text", *extra, cwd=str(home), env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def test_claude_code_completes_a_prompt_over_gemini_keys(claude: Path, make_stack: StackFactory,
                                                               tmp_path: Path) -> None:
    stack = await _stack(make_stack)
    stack.gemini.scripted.append([{"text": "Hello from Gemini through keymux."}])
    code, out, err = await _run(claude, stack, "Say hello", tmp_path)
    assert code == 0, (out + err)[-3000:]
    assert "Hello from Gemini through keymux." in out
    assert stack.gemini.count("k1", 200) >= 1


async def test_claude_code_runs_a_tool_the_model_asked_for(claude: Path, make_stack: StackFactory,
                                                           tmp_path: Path) -> None:
    stack = await _stack(make_stack)
    (tmp_path / "notes.txt").write_text("the secret word is pelican\n")
    stack.gemini.scripted += [
        [{"functionCall": {"name": "Read", "args": {"file_path": str(tmp_path / "notes.txt")}},
          "thoughtSignature": "c2lnLXJlYWQ="}],
    ]  # then the emulator's own answer to a functionResponse: "Tool result: <the response>"
    code, out, err = await _run(claude, stack, "What word is in notes.txt?", tmp_path,
                                "--allowedTools", "Read")
    assert code == 0, (out + err)[-3000:]
    # Claude Code read the file and sent its text back; it reached Gemini as a functionResponse, whose
    # echo ("Tool result: ...") is Claude Code's final answer.
    assert "Tool result:" in out and "pelican" in out
    assert not stack.gemini.scripted and stack.gemini.count("k1", 200) >= 2
