"""A real client nobody here wrote: Gemini CLI (`@google/gemini-cli` from npm) run non-interactively with its
base URL pointed at keymux and the gateway key as its API key. Installed on first use under .cache/npm."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from keymux.emulator import EmuKey

from .conftest import gemini_group

ROOT = Path(__file__).resolve().parents[2]
PREFIX = ROOT / ".cache" / "npm"
CLI = PREFIX / "node_modules" / ".bin" / "gemini"
KEYS = ["ka-1111111111", "kb-2222222222"]
MODELS = ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-3-pro-preview",
          "gemini-3-flash-preview", "gemini-flash-latest", "gemini-flash-lite-latest"]


@pytest.fixture(scope="session")
def gemini_cli() -> Path:
    if not CLI.exists():
        npm = shutil.which("npm")
        assert npm, "npm is missing: scripts/services installs nodejs and npm"
        import subprocess

        subprocess.run([npm, "install", "--prefix", str(PREFIX), "--no-audit", "--no-fund", "@google/gemini-cli"],
                       check=True, timeout=600)
    return CLI


async def test_gemini_cli_completes_a_prompt_through_keymux(make_stack, gemini_cli: Path, tmp_path: Path) -> None:
    model_list = [entry for m in MODELS for entry in gemini_group(m, KEYS, model=m)]
    stack = await make_stack({"model_list": model_list}, gemini_keys={k: EmuKey() for k in KEYS})
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True)
    settings = {"security": {"auth": {"selectedType": "gemini-api-key"}},
                "privacy": {"usageStatisticsEnabled": False}, "telemetry": {"enabled": False}}
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "GEMINI_API_KEY": "sk-master",
           "GOOGLE_GEMINI_BASE_URL": stack.base, "GEMINI_CLI_NO_RELAUNCH": "1", "NO_COLOR": "1",
           "GEMINI_TELEMETRY_ENABLED": "false", "CI": "1",
           "GEMINI_DEFAULT_AUTH_TYPE": "gemini-api-key"}
    proc = await asyncio.create_subprocess_exec(
        str(gemini_cli), "-p", "Say hello to keymux", "--skip-trust", "-m", "gemini-2.5-flash", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    text = out.decode()
    assert proc.returncode == 0, (text, err.decode()[-3000:])
    assert text.strip(), err.decode()[-3000:]
    served = stack.gemini.count(status=200, model="gemini-2.5-flash")
    assert served >= 1  # the answer came from the emulator, through keymux
    assert stack.gemini.count(key="sk-master") == 0  # the gateway key never went upstream
