"""The keymux command as users run it: check, and LiteLLM's own invocation of the proxy."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CONFIG = Path(__file__).parent / "config" / "litellm_config.yaml"
ENV = {**os.environ, **{f"GEMINI_{g}_KEY_{i}": f"AIzaSyCLI{g}{i}xxxxxxxxxxxxxxxxxxxxxxxxx"
                        for g in ("CHAT", "IMAGE", "FIX") for i in (1, 2, 3)}}


def keymux(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "keymux", *args], capture_output=True, text=True,
                          env=env or ENV, timeout=30)


def test_check_prints_groups_with_fingerprints_never_keys() -> None:
    out = keymux("check", "--config", str(CONFIG))
    assert out.returncode == 0, out.stderr
    for group in ("gemini-pro-chat", "gemini-image", "gemini-fix"):
        assert group in out.stdout
    assert "gem:" in out.stdout and "rpm 5" in out.stdout
    # The LiteLLM config asks for a Redis cache without saying where: keymux says so and caches locally.
    assert re.search(r"response cache\s+local, up to 64 MiB, ttl 600 s", out.stdout)
    assert re.search(r"key state\s+this process", out.stdout) and "no Redis is configured" in out.stdout
    assert "AIzaSy" not in out.stdout + out.stderr and "sk-keymux-master" not in out.stdout


def test_check_reports_a_missing_key_with_file_and_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_list:\n  - model_name: x\n    litellm_params: {model: gemini/gemini-2.5-pro, rpm: five,"
                   " api_key: AIzaSyLiteral}\n")
    out = keymux("check", "--config", str(bad))
    assert out.returncode == 2
    assert "bad.yaml" in out.stderr and "model_list[0].litellm_params.rpm" in out.stderr
    assert "AIzaSyLiteral" not in out.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_litellm_invocation_serves_and_stops_cleanly() -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "keymux", "--config", str(CONFIG), "--port", str(port)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/readiness", timeout=1) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "keymux listening" in output and "shutting down" in output
    assert "AIzaSy" not in output


def test_demo_shows_every_key_state_and_honest_refusals() -> None:
    out = keymux("demo", "--no-serve", "--requests", "16", "--port", str(_free_port()))
    assert out.returncode == 0, out.stderr
    table = out.stdout
    for state in ("cooling", "exhausted", "disabled"):
        assert state in table
    assert "back at 00:00 PT" in table and "Google asked to wait" in table and "invalid key" in table
    assert "Retry-After:" in table and "answered" in table
    assert "demo-key" not in table  # the simulated keys show as fingerprints, like real ones
