"""The Interactions row: POST /v1beta/interactions through keymux (json and stream), against the native
generateContent passthrough through the same keymux in the same run, interleaved round by round.

Each interaction is stored (store defaults to true), so keymux pins every one to its key: the row includes
that cost.
"""

from __future__ import annotations

import statistics

import orjson

from bench.load import Result, run_load

PROMPT = "Write one sentence about key pools."


def targets(km_port: int, group: str, master: str) -> dict[str, dict[str, tuple[str, bytes, dict[str, str]]]]:
    base = f"http://127.0.0.1:{km_port}/v1beta"
    headers = {"Content-Type": "application/json", "x-goog-api-key": master}
    generate = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]})
    interact = {"model": group, "input": PROMPT}
    return {
        "generate": {"json": (f"{base}/models/{group}:generateContent", generate, headers),
                     "stream": (f"{base}/models/{group}:streamGenerateContent?alt=sse", generate, headers)},
        "interact": {"json": (f"{base}/interactions", orjson.dumps(interact), headers),
                     "stream": (f"{base}/interactions", orjson.dumps({**interact, "stream": True}), headers)},
    }


def measure(km_port: int, group: str, master: str, *, connections: int, duration: float, rounds: int, tool: str,
            cpus: str | None) -> dict[str, object]:
    table = targets(km_port, group, master)
    out: dict[str, object] = {}
    print(f"\nInteractions vs generateContent through keymux ({connections} conns, median of {rounds}):")
    for mode in ("json", "stream"):
        runs: dict[str, list[Result]] = {"generate": [], "interact": []}
        for _ in range(rounds):
            for name in runs:
                url, body, headers = table[name][mode]
                runs[name].append(run_load(url, body, headers, connections=connections, duration=duration,
                                           tool=tool, cpus=cpus))
        med = {name: statistics.median(r.rps for r in rs) for name, rs in runs.items()}
        p50 = {name: statistics.median(r.p50_ms for r in rs) for name, rs in runs.items()}
        errors = {name: sum(r.errors for r in rs) for name, rs in runs.items()}
        ratio = med["interact"] / med["generate"] if med["generate"] else float("nan")
        out[mode] = {"generate_rps": med["generate"], "interactions_rps": med["interact"], "ratio": ratio,
                     "generate_p50_ms": p50["generate"], "interactions_p50_ms": p50["interact"], "errors": errors}
        print(f"  {mode:<6} interactions {med['interact']:8.0f} req/s (p50 {p50['interact']:.2f} ms) vs "
              f"generateContent {med['generate']:8.0f} req/s (p50 {p50['generate']:.2f} ms): {ratio:.2f}x; "
              f"errors {errors['interact']}/{errors['generate']}", flush=True)
    return out
