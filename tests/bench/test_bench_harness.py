"""The benchmark harness works (shape of its output), never how fast anything is: speed is bench/run's job."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.baseline import make_app  # noqa: E402
from bench.load import Result, run_python_async  # noqa: E402
from keymux.emulator import EmuKey, GeminiEmulator  # noqa: E402


async def test_load_generator_against_the_baseline() -> None:
    from aiohttp import web

    emu = GeminiEmulator({"k0": EmuKey(), "k1": EmuKey()})
    upstream = await emu.serve()
    runner = web.AppRunner(make_app(upstream, ["k0", "k1"]))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        for stream in (False, True):
            body = json.dumps({"model": "m", "stream": stream,
                               "messages": [{"role": "user", "content": "hi"}]}).encode()
            r = await run_python_async(url, body, {"Content-Type": "application/json"}, connections=4,
                                       max_requests=50)
            assert isinstance(r, Result)
            assert r.requests >= 50 and r.errors == 0 and r.tool == "python"
            assert r.rps > 0 and 0 < r.p50_ms <= r.p99_ms
        assert emu.count(status=200) >= 100
    finally:
        await runner.cleanup()
        await emu.close()


def test_harness_tiny_run(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--duration", "0.3", "--tool", "python", "--connections", "1",
         "--startups", "1", "--no-pin", "--rounds", "2", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    for target in ("direct", "baseline", "keymux", "anthropic"):
        for mode in ("json", "stream"):
            assert any(line.split()[:3] == [target, mode, "1"] for line in text.splitlines()), text
    for phrase in ("throughput", "p50 added latency", "start-up to a ready /health/readiness", "RSS after the run"):
        assert phrase in text
    results = json.loads(out.read_text())
    assert len(results["runs"]) == 8
    assert all(run["requests"] > 0 and run["errors"] == 0 for run in results["runs"])
    assert all(len(run["rounds_rps"]) == 2 and run["rps"] in run["rounds_rps"] for run in results["runs"])
    assert {"startup_median_s", "added_p50_ms_json", "throughput_ratio_stream_1",
            "anthropic_throughput_ratio_json_1"} <= set(results["summary"])
    assert results["rss_mb"]["keymux"] > 0
    responses = results["responses"]  # the /v1/responses rows against the baseline's same translation
    for mode in ("json", "stream"):
        assert responses[f"throughput_ratio_{mode}"] > 0
        for target in ("baseline", "keymux"):
            assert responses[f"{target}_{mode}"]["requests"] > 0 and responses[f"{target}_{mode}"]["errors"] == 0


def test_workers_without_shared_state_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("model_list:\n  - model_name: a\n    litellm_params: {model: gemini/gemini-2.5-flash, "
                      "api_key: k}\n")
    proc = subprocess.run([sys.executable, "-m", "keymux", "serve", "--config", str(config), "--workers", "2",
                           "--host", "127.0.0.1", "--port", "1"], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert "--workers 2 needs shared state: set router_settings.redis_host or redis_url" in proc.stderr


