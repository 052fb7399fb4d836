"""The README holds when tried: the demo's sample output is what `keymux demo` prints, and the "Calling keymux"
examples (curl, the openai and google-genai SDKs) run as written against the demo it leaves serving."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def section(start: str, end: str) -> str:
    return README[README.index(start):README.index(end)]


def blocks(text: str, lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(text) if kind == lang]


def shape(line: str) -> str:
    """A demo line with what the clock decides (times, seconds left, hours) blanked out."""
    line = re.sub(r"\d\d:\d\d:\d\d \w+", "HH:MM:SS ZONE", line)
    line = re.sub(r"\(\d+(\.\d+)? [sh]\)", "(N)", line)  # within an hour of midnight Pacific, hours print as s
    line = re.sub(r"(Retry-After|wait|in) \d+ s", r"\1 N s", line)
    return re.sub(r"\s+", " ", line).strip()


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[int, str]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "-m", "keymux", "demo", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    printed = []
    for line in proc.stdout:  # until the burst is over and it serves
        printed.append(line)
        if line.startswith("Still serving"):
            break
    try:
        assert proc.poll() is None, "".join(printed)
        yield port, "".join(printed)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


def test_the_quick_start_sample_is_what_the_demo_prints(demo: tuple[int, str]) -> None:
    _, printed = demo
    (sample,) = [b for b in blocks(section("## Quick start", "## A config for"), "") if "why / until" in b]
    lines = {shape(line) for line in printed.splitlines()}
    for line in filter(str.strip, sample.splitlines()):
        assert shape(line) in lines, f"README sample line not printed by the demo:\n{line}\n\n{printed}"


def run_examples(port: int, lang: str, env: dict[str, str], then: str = "",
                 within: tuple[str, str] = ("## Calling keymux", "### Supabase edge function")) -> str:
    text = section(*within).replace("localhost:4000", f"127.0.0.1:{port}")
    code = "\n".join(blocks(text, lang)) + then
    cmd = ["bash", "-euo", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert out.returncode == 0, f"{out.stdout}\n{out.stderr}"
    return out.stdout


def test_the_calling_examples_run_against_the_demo(demo: tuple[int, str]) -> None:
    port, _ = demo
    env = {k: v for k, v in os.environ.items() if k != "KEYMUX_MASTER_KEY"}
    shell = run_examples(port, "bash", env)
    answers, at = [], 0
    while at < len(shell):  # curl prints the bodies back to back
        doc, at = json.JSONDecoder().raw_decode(shell, at)
        answers.append(doc)
        at += len(shell[at:]) - len(shell[at:].lstrip())
    assert answers[0]["choices"][0]["message"]["content"] == "Echo: Hello"
    assert answers[1]["candidates"][0]["content"]["parts"][0]["text"] == "Echo: Hello"

    (key,) = re.findall(r"export KEYMUX_MASTER_KEY=(\S+)", section("## Calling keymux", "### curl"))
    python = run_examples(port, "python", env | {"KEYMUX_MASTER_KEY": key},
                          then="\nprint(data_uri[:15])")  # the image the openai example asked for
    lines = python.splitlines()
    assert lines[0] == "Echo: Hello"  # openai SDK
    assert lines[1] == "Echo: Hello"  # google-genai, then its stream, then a token count
    assert lines[2] == "Echo: Tell me a story" and lines[3].isdigit()
    assert lines[4] == "data:image/png;"


def test_the_files_examples_run_against_the_demo(demo: tuple[int, str]) -> None:
    port, _ = demo
    (key,) = re.findall(r"export KEYMUX_MASTER_KEY=(\S+)", section("## Calling keymux", "### curl"))
    out = run_examples(port, "python", dict(os.environ) | {"KEYMUX_MASTER_KEY": key},
                       within=("### Gemini files", "## Configuration reference"))
    assert out.splitlines() == ["True True", "True", "True"]


def test_the_supabase_example_is_the_shipped_function() -> None:
    (ts,) = blocks(section("### Supabase edge function", "## What keymux does"), "ts")
    assert ts == (ROOT / "examples" / "supabase" / "functions" / "keymux-chat" / "index.ts").read_text()
