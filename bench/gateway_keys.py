"""The gateway-key row (issue 16): the same json request with the master key and with a gateway key whose
limits and budget are checked and settled on every request, 16 connections, key state and client counters in
memory and then in Redis. Rounds interleave master, gateway, master, ... through one keymux process; the
median round of each is reported, with the cost of a gateway key as the rps ratio."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from types import ModuleType
from typing import Any

GATEWAY_KEY = "sk-bench-gateway-key-0123456789abcdef"
# Limits high enough never to refuse: every check and every settlement still runs.
LIMITS = {"name": "bench-client", "key": GATEWAY_KEY, "models": ["bench-chat"], "rpm": 10**9, "tpm": 10**12,
          "rpd": 10**12, "max_parallel": 10**6, "budget": "1000000/day", "soft_budget": 999999}


def config(harness: ModuleType, logdir: Path, redis: bool) -> Path:
    import yaml

    path = harness.redis_config(logdir) if redis else harness.HERE / "config.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["general_settings"]["virtual_keys"] = [LIMITS]
    out = logdir / f"config-gateway-{'redis' if redis else 'memory'}.yaml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def measure(harness: ModuleType, procs: Any, port: int, env: dict[str, str], targets: dict, duration: float,
            rounds: int, tool: str, logdir: Path, gw_cpu: str | None, up_cpu: str | None) -> dict[str, object]:
    """`harness`: bench/harness.py, handed in (its helpers start and time the processes)."""
    from bench.load import run_load

    url, body, master_headers = targets["keymux"]["json"]
    gateway_headers = {**master_headers, "Authorization": f"Bearer {GATEWAY_KEY}"}
    per_round = max(1.0, duration / rounds) if tool == "wrk" else duration / rounds
    stores = ["memory"] + (["redis"] if harness.redis_up() else [])
    print(f"\ngateway key vs master key (json, 16 connections, {rounds} interleaved rounds of {per_round:g} s):",
          flush=True)
    out: dict[str, object] = {}
    for store in stores:
        cmd = harness.pinned([harness.KEYMUX, "serve", "--config", str(config(harness, logdir, store == "redis")),
                              "--host", "127.0.0.1", "--port", str(port)], gw_cpu)
        proc = procs.spawn(f"keymux-gateway-{store}", cmd, env)
        harness.wait_ready(f"http://127.0.0.1:{port}/health/readiness", proc)
        for headers in (master_headers, gateway_headers):  # warm-up, and both must answer 200
            status, _ = harness.http(url, body, headers)
            if status != 200:
                raise SystemExit(f"bench: keymux answered {status} to the {store} gateway-key check request")
            run_load(url, body, headers, connections=16, duration=min(1.0, duration), tool=tool, cpus=up_cpu)
        runs: dict[str, list[Any]] = {"master": [], "gateway": []}
        for _ in range(rounds):
            for name, headers in (("master", master_headers), ("gateway", gateway_headers)):
                runs[name].append(run_load(url, body, headers, connections=16, duration=per_round, tool=tool,
                                           cpus=up_cpu))
                time.sleep(0.05)
        row: dict[str, object] = {}
        for name, rs in runs.items():
            med = statistics.median(r.rps for r in rs)
            errors = sum(r.errors for r in rs)
            row[name] = {"rps": med, "rounds_rps": [r.rps for r in rs], "errors": errors,
                         "p50_ms": statistics.median(r.p50_ms for r in rs)}
        master, gateway = row["master"]["rps"], row["gateway"]["rps"]  # type: ignore[index]
        cost = master / gateway - 1 if gateway else float("inf")
        row["extra_cost"] = cost
        out[store] = row
        print(f"  {store:<6} master {master:6.0f} req/s, gateway key {gateway:6.0f} req/s: "
              f"{cost * 100:+.1f} % per request (target <= +5 %: {harness.verdict(cost <= 0.05)}); "
              f"errors {row['master']['errors']}/{row['gateway']['errors']}", flush=True)  # type: ignore[index]
        procs.stop(proc)
    return out


def count_instructions(harness: ModuleType, procs: Any, n: int, env: dict[str, str], targets: dict, logdir: Path,
                       cpu: str | None) -> dict[str, float]:
    """Instructions per json request (callgrind, N requests at 16 connections) with the master key and with the
    gateway key, client counters in memory and in Redis: the comparison the machine's load does not move."""
    from bench import instructions

    if not instructions.available():
        print("\ngateway key instructions: valgrind is not installed; skipped", flush=True)
        return {}
    url, body, master_headers = targets["keymux"]["json"]
    gateway_headers = {**master_headers, "Authorization": f"Bearer {GATEWAY_KEY}"}
    port = harness.free_port()
    url = url.replace(url.split("/")[2], f"127.0.0.1:{port}")
    print(f"\ngateway key vs master key, instructions per json request (callgrind, {n} requests at 16 "
          "connections):", flush=True)
    out: dict[str, float] = {}
    for store in ["memory"] + (["redis"] if harness.redis_up() else []):
        cfg = config(harness, logdir, store == "redis")
        for who, headers in (("master", master_headers), ("gateway", gateway_headers)):
            dump = logdir / f"callgrind-gateway-{store}-{who}.out"
            cmd = [harness.KEYMUX, "serve", "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)]
            proc = procs.spawn(f"keymux-gateway-{store}-{who}-callgrind", harness.pinned(instructions.wrap(cmd, dump), cpu),
                               {**env, "BENCH_DATABASE_URL": f"sqlite:///{logdir}/ledger-gw-{store}-{who}.db"})
            harness.wait_ready(f"http://127.0.0.1:{port}/health/readiness", proc, timeout=180)
            out[f"{store}_{who}"] = instructions.measure(proc, dump, url, body, headers, n)
        cost = out[f"{store}_gateway"] / out[f"{store}_master"] - 1
        out[f"{store}_extra"] = cost
        print(f"  {store:<6} master {out[f'{store}_master'] / 1000:6.0f} k, gateway key "
              f"{out[f'{store}_gateway'] / 1000:6.0f} k instructions/request: {cost * 100:+.1f} % "
              f"(target <= +5 %: {harness.verdict(cost <= 0.05)})", flush=True)
    return out
