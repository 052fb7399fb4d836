"""Load generators for the benchmark: wrk (Debian package) driven by bench/post.lua when installed, else an
asyncio/aiohttp closed-loop generator. Both return the same `Result` shape.

Each connection sends one request, waits for the whole answer (for a stream: until its end), and sends the next.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent


@dataclass
class Result:
    requests: int  # completed responses
    errors: int  # non-2xx answers + socket errors
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    tool: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[i]


# ------------------------------------------------------------------------------------------------ wrk
def run_wrk(url: str, body: bytes, headers: dict[str, str], *, connections: int, duration: float = 10.0,
            cpus: str | None = None, timeout: float = 10.0) -> Result:
    """Runs for `duration` seconds, rounded to whole seconds (wrk's unit)."""
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
        f.write(body)
        body_file = f.name
    env = {**os.environ, "BENCH_BODY_FILE": body_file,
           "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items())}
    threads = 1 if connections < 4 else 2
    secs = max(1, round(duration))
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{secs}s", f"--timeout={int(timeout)}s",
           "-s", str(HERE / "post.lua"), url]
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(body_file)
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    r = orjson.loads(line.removeprefix("BENCH_RESULT "))
    seconds = r["duration_us"] / 1e6
    errors = r["non2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    return Result(requests=r["requests"], errors=errors, seconds=seconds, rps=r["requests"] / seconds,
                  p50_ms=r["p50_us"] / 1000, p99_ms=r["p99_us"] / 1000, tool="wrk")


# -------------------------------------------------------------------------------------------- asyncio
async def run_python_async(url: str, body: bytes, headers: dict[str, str], *, connections: int,
                           duration: float = 10.0, max_requests: int | None = None) -> Result:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    sent = 0
    stop_at = time.perf_counter() + duration if not max_requests else float("inf")
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",)) as session:
        async def worker() -> None:
            nonlocal errors, sent
            while time.perf_counter() < stop_at and (max_requests is None or sent < max_requests):
                sent += 1
                t0 = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        async for _ in resp.content.iter_any():
                            pass
                        if resp.status >= 300:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        seconds = time.perf_counter() - start
    latencies.sort()
    return Result(requests=len(latencies), errors=errors, seconds=seconds, rps=len(latencies) / seconds,
                  p50_ms=_pct(latencies, 50) * 1000, p99_ms=_pct(latencies, 99) * 1000, tool="python")


def run_python(url: str, body: bytes, headers: dict[str, str], *, connections: int, duration: float = 10.0,
               max_requests: int | None = None) -> Result:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    return runner(run_python_async(url, body, headers, connections=connections, duration=duration,
                                   max_requests=max_requests))


def run_load(url: str, body: bytes, headers: dict[str, str], *, connections: int, duration: float = 10.0,
             max_requests: int | None = None, tool: str = "auto", cpus: str | None = None) -> Result:
    """tool: "wrk", "python" or "auto" (wrk when installed). `cpus` pins wrk (taskset list, e.g. "1").
    `max_requests` (python only: wrk cannot stop early) ends the run after that many requests."""
    if tool == "wrk" or (tool == "auto" and have_wrk()):
        return run_wrk(url, body, headers, connections=connections, duration=duration, cpus=cpus)
    return run_python(url, body, headers, connections=connections, duration=duration, max_requests=max_requests)
