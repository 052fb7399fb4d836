"""CPU instructions per request, counted by valgrind's callgrind.

Requests/s on a shared machine wander by 10-20 % from one minute to the next, more than most hot-path
changes are worth; an instruction count does not. Each target runs under callgrind with instrumentation
off until it is ready and warmed up, then exactly N requests are counted (16 at a time, by the asyncio load
generator). The count covers every thread of the process (the ledger's writer too) in user space: the
kernel's share (sockets) is not in it, and it is the same work for keymux and the baseline.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

from bench.load import run_python

WARMUP = 200


def available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


def wrap(cmd: list[str], out: Path) -> list[str]:
    """`cmd` under callgrind, counting nothing until `measure` switches it on."""
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--instr-atstart=no", *cmd]


def _control(pid: int, switch: str) -> None:
    subprocess.run(["callgrind_control", "-i", switch, str(pid)], check=True, capture_output=True)


def measure(proc: subprocess.Popen, out: Path, url: str, body: bytes, headers: dict[str, str], n: int) -> float:
    """Instructions per request over `n` requests to `url` served by `proc` (started with `wrap`); stops it."""
    run_python(url, body, headers, connections=16, max_requests=WARMUP)
    _control(proc.pid, "on")
    result = run_python(url, body, headers, connections=16, max_requests=n)
    _control(proc.pid, "off")
    if result.errors or not result.requests:
        raise RuntimeError(f"{result.errors} errors in {result.requests} requests under callgrind")
    proc.send_signal(signal.SIGTERM)  # callgrind writes its counts as the process exits: no SIGKILL here
    proc.wait(120)
    totals = [int(line.split()[1]) for line in out.read_text().splitlines() if line.startswith("totals:")]
    if not totals:
        raise RuntimeError(f"no totals in {out}")
    return totals[0] / result.requests
