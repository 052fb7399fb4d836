"""The cold-start row: a fresh keymux whose keys declare no limits, against the same keymux with limits declared.

A restart or a new replica starts with no learned limits. Each measurement starts a fresh `keymux serve`
(3 keys of one group, an upstream that answers in 20 ms and enforces nothing), waits for /health/readiness
(which sends nothing upstream) and at once sends 50 concurrent connections' worth of requests for a few
seconds. Undeclared keys go through slow start; declared ones are admitted at once. The ratio of the two
is what users with a LiteLLM config (no rpm declared) lose in their first seconds.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

import orjson
import yaml

from bench.load import run_load

KEYS = [f"cold-key{i}" for i in range(3)]
CONNECTIONS = 50
LATENCY_S = 0.02
TARGET = 0.9


def config(declared: bool, upstream: str, ledger: str) -> dict[str, object]:
    params: dict[str, object] = {"model": "gemini/gemini-2.5-flash", "api_base": upstream, "keys": KEYS}
    if declared:
        params.update({"rpm": 1_000_000, "tpm": 1_000_000_000, "rpd": 100_000_000})
    return {"model_list": [{"model_name": "cold-chat", "litellm_params": params}],
            "router_settings": {"routing_strategy": "simple-shuffle", "num_retries": 2, "queue_timeout": 5},
            "general_settings": {"master_key": "sk-bench-master-key", "database_url": ledger}}


def measure(spawn_emulator: Callable[[list[str]], str],
            spawn_keymux: Callable[[Path], tuple[str, Callable[[], None]]], body: bytes, headers: dict[str, str],
            logdir: Path, seconds: float, repeats: int, tool: str, cpus: str | None) -> dict[str, object]:
    """`spawn_emulator(args)` starts a Gemini emulator and returns its URL; `spawn_keymux(config)` starts a
    fresh, ready keymux and returns its chat completions URL and how to stop it. `body` names no model."""
    upstream = spawn_emulator(["--keys", "cold-key*3", "--latency", str(LATENCY_S)])
    body = orjson.dumps({**orjson.loads(body), "model": "cold-chat"})
    print(f"\ncold start: a fresh keymux, 3 keys, upstream {LATENCY_S * 1000:.0f} ms without limits, "
          f"{CONNECTIONS} connections for {seconds:g} s from the first request ({repeats} fresh starts each):",
          flush=True)
    rps: dict[str, list[float]] = {"undeclared": [], "declared": []}
    errors = 0
    for i in range(repeats):
        for name in ("undeclared", "declared"):  # interleaved: both through the same machine drift
            path = logdir / f"cold-{name}-{i}.yaml"
            path.write_text(yaml.safe_dump(config(name == "declared", upstream,
                                                  f"sqlite:///{logdir}/cold-{name}-{i}.db")))
            url, stop = spawn_keymux(path)
            try:
                r = run_load(url, body, headers, connections=CONNECTIONS, duration=seconds, tool=tool,
                             cpus=cpus)
            finally:
                stop()
            rps[name].append(r.rps)
            errors += r.errors
    med = {name: statistics.median(v) for name, v in rps.items()}
    ratio = med["undeclared"] / med["declared"] if med["declared"] else float("nan")
    for name in ("undeclared", "declared"):
        print(f"  limits {name:<10} {med[name]:7.0f} req/s (median; runs: "
              f"{', '.join(f'{x:.0f}' for x in rps[name])})", flush=True)
    print(f"  cold start: {ratio:.2f}x the declared pool's throughput (target >= {TARGET}: "
          f"{'PASS' if ratio >= TARGET else 'MISS'}); {errors} errors", flush=True)
    return {"rps": rps, "median_rps": med, "ratio": ratio, "errors": errors}
