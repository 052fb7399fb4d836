"""`pip install .` into a fresh virtual environment, as the README's first steps do: nothing but keymux's
own dependencies, and `keymux demo --no-serve` and `keymux init` work from it (no SDK, no test extra)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from container_tests.docker import ROOT, free_port


def _checkout(tmp: Path) -> Path:
    src = tmp / "src"  # a copy: building in the checkout would leave build/ and *.egg-info behind
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    for name in ("keymux", "scripts"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    return src


def _install(tmp: Path) -> Path:
    src = _checkout(tmp)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    out = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(src)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return venv


def test_plain_install_runs_the_demo_and_init(tmp_path: Path) -> None:
    venv = _install(tmp_path)
    python, keymux = str(venv / "bin" / "python"), str(venv / "bin" / "keymux")
    for absent in ("openai", "google.genai", "pytest"):  # the demo must not need the test extra
        probe = subprocess.run([python, "-c", f"import {absent}"], capture_output=True, timeout=60)
        assert probe.returncode != 0, f"{absent} is installed by a plain `pip install .`"

    demo = subprocess.run([keymux, "demo", "--no-serve", "--requests", "16", "--port", str(free_port())],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "answered" in demo.stdout and "refused with an honest Retry-After" in demo.stdout
    for state in ("cooling", "exhausted", "disabled"):
        assert state in demo.stdout

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "KEYMUX_"))}
    env |= {"GEMINI_KEY_CHAT_1": "AIzaSyFreshInstallKeyOne", "GEMINI_KEY_CHAT_2": "AIzaSyFreshInstallKeyTwo"}
    init = subprocess.run([keymux, "init"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert init.returncode == 0, init.stderr
    written = (tmp_path / "keymux.yaml").read_text()
    assert "os.environ/GEMINI_KEY_CHAT_1" in written and "AIzaSy" not in written
    master = next(line.split("=", 1)[1] for line in init.stdout.splitlines() if "KEYMUX_MASTER_KEY=" in line)
    check = subprocess.run([keymux, "check", "--config", "keymux.yaml"], capture_output=True, text=True,
                           timeout=60, cwd=tmp_path, env={**env, "KEYMUX_MASTER_KEY": master})
    assert check.returncode == 0, check.stderr
    assert "gemini-chat  (2 deployments)" in check.stdout and "master key        set" in check.stdout


def test_scripts_demo_installs_only_what_the_demo_needs(tmp_path: Path) -> None:
    src = _checkout(tmp_path)
    demo = subprocess.run(["scripts/demo", "--no-serve", "--requests", "12", "--port", str(free_port())], cwd=src,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHON": sys.executable})
    assert demo.returncode == 0, demo.stderr
    assert "answered" in demo.stdout
    probe = subprocess.run([str(src / ".venv" / "bin" / "python"), "-c", "import openai"], capture_output=True)
    assert probe.returncode != 0, "scripts/demo installed the openai SDK"
    size = sum(f.stat().st_size for f in (src / ".venv").rglob("*") if f.is_file() and not f.is_symlink())
    assert size < 120e6, f"the demo's venv is {size / 1e6:.0f} MB"
