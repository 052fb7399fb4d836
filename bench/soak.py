"""A bounded mixed load with upstream faults, for leaks: `bench/soak --seconds 60` (not in the test suite).

keymux runs as its own process (`python -m keymux serve`); the Gemini and OpenAI emulators and the clients
run here. Each client loops over a mix (OpenAI and Gemini clients, JSON and streaming, Gemini and OpenAI
upstreams); one upstream answer in `--fault-every` gets a wire fault (emulator/faults.py, every class but
`hang` by default). Every 10 s, and at the end after the load stops, it prints keymux's RSS, open fds, leases
held (admin API in_flight) and ledger rows against requests sent. At the end leases must be 0 and rows must
equal requests; the exit status says whether they were.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.harness import free_port, rss_mb, wait_ready
from keymux.emulator import EmuKey, GeminiEmulator, OpenAIEmulator
from keymux.emulator.faults import WIRE_FAULTS

ROOT = Path(__file__).resolve().parent.parent
MASTER = "sk-soak-master"
GEMINI_KEYS = [f"soak-gem-{i}" for i in range(4)]
OPENAI_KEYS = [f"sk-soak-oai-{i}" for i in range(2)]
MIX = [(api, group, stream) for api in ("openai", "gemini") for group in ("chat", "gpt") for stream in (False, True)]


def config(gemini: str, openai: str, db: Path, timeout: float) -> dict[str, Any]:
    models = [{"model_name": "chat", "litellm_params": {"model": "gemini/gemini-2.5-flash", "api_key": k,
                                                         "api_base": gemini}} for k in GEMINI_KEYS]
    models += [{"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": k,
                                                         "api_base": f"{openai}/v1"}} for k in OPENAI_KEYS]
    return {"model_list": models,
            "router_settings": {"num_retries": 1, "timeout": timeout, "queue_timeout": 2, "allowed_fails": 1000},
            "general_settings": {"master_key": MASTER, "database_url": f"sqlite:///{db}"}}


async def one(s: aiohttp.ClientSession, base: str, api: str, group: str, stream: bool) -> int:
    if api == "openai":
        url = f"{base}/v1/chat/completions"
        body: dict[str, Any] = {"model": group, "stream": stream,
                                "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}
    else:
        url = f"{base}/v1beta/models/{group}:{'streamGenerateContent?alt=sse' if stream else 'generateContent'}"
        body = {"contents": [{"role": "user", "parts": [{"text": "Say hello in one short sentence."}]}]}
    try:
        async with s.post(url, json=body, headers={"authorization": f"Bearer {MASTER}"}) as r:
            await r.read()
            return r.status
    except (TimeoutError, aiohttp.ClientError):
        return 0  # keymux cut a broken stream, or the connection failed: counted, still a request


async def admin(s: aiohttp.ClientSession, base: str, path: str) -> Any:
    async with s.get(f"{base}{path}", headers={"authorization": f"Bearer {MASTER}"}) as r:
        return await r.json()


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def sample(s: aiohttp.ClientSession, base: str, pid: int, sent: int, t0: float) -> dict[str, Any]:
    keys = await admin(s, base, "/admin/keys")
    usage = await admin(s, base, "/admin/usage?since=1d")
    leases = sum(m["in_flight"] for k in keys["data"] for m in k["models"])
    row = {"t": round(time.monotonic() - t0), "rss_mb": round(rss_mb(pid), 1), "fds": fds(pid), "leases": leases,
           "requests": sent, "ledger_rows": usage["total"].get("requests", 0)}
    print("  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return row


async def soak(args: argparse.Namespace) -> int:
    modes = [m for m in WIRE_FAULTS if args.hang or m != "hang"]
    gemini = GeminiEmulator({k: EmuKey() for k in GEMINI_KEYS}, keep_calls=False)
    openai = OpenAIEmulator({k: EmuKey() for k in OPENAI_KEYS}, keep_calls=False)
    for emu in (gemini, openai):
        emu.wire.huge_bytes = args.huge_bytes
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "soak.yaml"
        path.write_text(yaml.safe_dump(config(await gemini.serve(), await openai.serve(), Path(tmp) / "soak.db",
                                              args.timeout)))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([sys.executable, "-m", "keymux", "serve", "--config", str(path), "--host",
                                 "127.0.0.1", "--port", str(port)], cwd=ROOT, stderr=subprocess.DEVNULL)
        try:
            await asyncio.to_thread(wait_ready, f"{base}/health/readiness", proc)
            return await _drive(args, base, proc.pid, gemini, openai, modes)
        finally:
            proc.terminate()
            proc.wait(20)
            await gemini.close()
            await openai.close()


async def _drive(args: argparse.Namespace, base: str, pid: int, gemini: GeminiEmulator, openai: OpenAIEmulator,
                 modes: list[str]) -> int:
    sent = 0
    statuses: Counter[int] = Counter()
    faults = itertools.cycle(modes)
    t0 = time.monotonic()
    end = t0 + args.seconds
    timeout = aiohttp.ClientTimeout(total=args.timeout * 4 + 10)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        print(f"soak: {args.seconds:.0f} s, {args.connections} connections, a wire fault every "
              f"{args.fault_every} requests ({', '.join(modes)})", flush=True)
        first = await sample(s, base, pid, 0, t0)

        async def client(i: int) -> None:
            nonlocal sent
            for api, group, stream in itertools.cycle(MIX[i % len(MIX):] + MIX[:i % len(MIX)]):
                if time.monotonic() >= end:
                    return
                sent += 1
                if sent % args.fault_every == 0:
                    (gemini if group == "chat" else openai).wire.inject(None, next(faults))
                statuses[await one(s, base, api, group, stream)] += 1

        async def sampler() -> None:
            while time.monotonic() < end:
                await asyncio.sleep(min(10.0, max(0.0, end - time.monotonic())))
                await sample(s, base, pid, sent, t0)

        await asyncio.gather(sampler(), *(client(i) for i in range(args.connections)))
        await asyncio.sleep(1.0)  # the ledger writes in batches off the request path
        last = await sample(s, base, pid, sent, t0)
    print(f"statuses: {dict(sorted(statuses.items()))}")
    print(f"RSS {first['rss_mb']} -> {last['rss_mb']} MB, fds {first['fds']} -> {last['fds']}, "
          f"leases at the end {last['leases']}, ledger rows {last['ledger_rows']} for {sent} requests")
    return 0 if last["leases"] == 0 and last["ledger_rows"] == sent else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/soak", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--fault-every", type=int, default=20, help="one request in N gets a wire fault")
    p.add_argument("--huge-bytes", type=int, default=4 * 1024 * 1024, help="size of a `huge` answer")
    p.add_argument("--timeout", type=float, default=2.0, help="keymux's per-attempt upstream timeout")
    p.add_argument("--hang", action="store_true", help="include the `hang` fault (each costs --timeout)")
    return asyncio.run(soak(p.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
