"""The /v1/responses rows of bench/run: keymux and the baseline (the same Responses <-> Gemini translation,
bench/baseline_responses.py) at 16 connections, json and stream, interleaved rounds, median round; the
ratio of keymux's req/s to the baseline's (target >= 0.85)."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from bench.load import Result, run_load

TARGET = 0.85
BODY = {
    "model": "bench-chat",
    "instructions": "You are terse.",
    "input": [{"role": "user", "content": [{"type": "input_text",
                                              "text": "Say hello to the benchmark in one short sentence, please."}]}],
    "max_output_tokens": 64,
    "temperature": 0.2,
    "store": False,
}


def targets(base_port: int, km_port: int, master: str) -> dict[str, dict[str, tuple[str, bytes, dict[str, str]]]]:
    ct = {"Content-Type": "application/json"}
    body, stream = orjson.dumps(BODY), orjson.dumps({**BODY, "stream": True})
    out = {}
    for name, port, headers in (("baseline", base_port, ct),
                                ("keymux", km_port, {**ct, "Authorization": f"Bearer {master}"})):
        url = f"http://127.0.0.1:{port}/v1/responses"
        out[name] = {"json": (url, body, headers), "stream": (url, stream, headers)}
    return out


def check(table: dict[str, dict[str, tuple[str, bytes, dict[str, str]]]],
          http: Callable[..., tuple[int, bytes]]) -> None:
    for name, modes in table.items():
        for mode, (url, body, headers) in modes.items():
            status, raw = http(url, body, headers)
            if status != 200 or b"Echo" not in raw or (mode == "stream" and b"event: response.completed" not in raw):
                raise RuntimeError(f"responses {name} {mode}: {status} {raw[:300]!r}")


def measure(base_port: int, km_port: int, master: str, *, connections: int, per_round_s: float, rounds: int,
            tool: str, cpus: str | None, http: Callable[..., tuple[int, bytes]],
            median: Callable[[list[Result]], Result], row: Callable[[str, str, int, Result], str]) -> dict[str, object]:
    table = targets(base_port, km_port, master)
    check(table, http)
    print(f"\n/v1/responses at {connections} connections:")
    out: dict[str, object] = {}
    for mode in ("json", "stream"):
        for name in table:  # warm-up
            url, body, headers = table[name][mode]
            run_load(url, body, headers, connections=connections, duration=min(1.0, per_round_s), tool=tool,
                     cpus=cpus)
        per_round: dict[str, list[Result]] = {name: [] for name in table}
        for _ in range(rounds):
            for name in table:
                url, body, headers = table[name][mode]
                per_round[name].append(run_load(url, body, headers, connections=connections, duration=per_round_s,
                                                tool=tool, cpus=cpus))
        results = {name: median(rs) for name, rs in per_round.items()}
        for name, r in results.items():
            print(row(f"{name}", f"resp-{mode}", connections, r), flush=True)
            out[f"{name}_{mode}"] = {**r.as_dict(), "rounds_rps": [x.rps for x in per_round[name]]}
        base = results["baseline"].rps
        ratio = results["keymux"].rps / base if base else float("nan")
        out[f"throughput_ratio_{mode}"] = ratio
        print(f"  responses {mode:<6}: throughput {ratio:5.2f}x baseline (target >= {TARGET:.2f}: "
              f"{'PASS' if ratio >= TARGET else 'MISS'})", flush=True)
    return out
