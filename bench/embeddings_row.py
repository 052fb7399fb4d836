"""The /v1/embeddings row: a 16-input batch per request (what a RAG indexer sends), as the openai SDKs send it
(base64 vectors), through keymux and through the bare translating proxy (bench/baseline.py), plus the
emulator's batchEmbedContents directly; interleaved rounds, median round, keymux's ratio to the baseline."""

from __future__ import annotations

import orjson

from bench.load import Result, run_load
from keymux.translate import embeddings as E

MODEL = "gemini-embedding-001"
BODY = {"model": "bench-embed", "encoding_format": "base64",
        "input": [f"Passage {i}: a paragraph of a document being indexed for retrieval, about sixty characters."
                  for i in range(16)]}


def targets(upstream: str, base_port: int, km_port: int, master: str, key: str) -> dict[str, tuple[str, bytes, dict]]:
    ct = {"Content-Type": "application/json"}
    body = orjson.dumps(BODY)
    return {
        "direct": (f"{upstream}/v1beta/models/{MODEL}:batchEmbedContents", E.gemini_request(BODY, MODEL),
                   {**ct, "x-goog-api-key": key}),
        "baseline": (f"http://127.0.0.1:{base_port}/v1/embeddings", body, ct),
        "keymux": (f"http://127.0.0.1:{km_port}/v1/embeddings", body, {**ct, "Authorization": f"Bearer {master}"}),
    }


def check(http: object, table: dict[str, tuple[str, bytes, dict]]) -> None:
    for name, (url, body, headers) in table.items():
        status, raw = http(url, body, headers)  # type: ignore[operator]
        expect = b'"embeddings"' if name == "direct" else b'"embedding"'
        if status != 200 or expect not in raw or (name != "direct" and raw.count(b'"index"') != 16):
            raise RuntimeError(f"embeddings {name}: {status} {raw[:300]!r}")


def measure(table: dict[str, tuple[str, bytes, dict]], conns: int, rounds: int, seconds: float, tool: str,
            cpus: str | None, median_round: object) -> dict[str, object]:
    for url, body, headers in table.values():  # warm-up
        run_load(url, body, headers, connections=conns, duration=min(1.0, seconds), tool=tool, cpus=cpus)
    per_round: dict[str, list[Result]] = {name: [] for name in table}
    for _ in range(rounds):
        for name, (url, body, headers) in table.items():
            per_round[name].append(run_load(url, body, headers, connections=conns, duration=seconds, tool=tool,
                                            cpus=cpus))
    out: dict[str, object] = {}
    print(f"\n/v1/embeddings, 16 inputs per request, {conns} connections:")
    for name in table:
        r = median_round(per_round[name])  # type: ignore[operator]
        out[name] = {**r.as_dict(), "rounds_rps": [x.rps for x in per_round[name]]}
        print(f"  {name:<9} {r.rps:9.0f} req/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  "
              f"{r.requests:>7} requests  {r.errors} errors", flush=True)
    km, base = out["keymux"], out["baseline"]
    ratio = km["rps"] / base["rps"] if base["rps"] else float("nan")  # type: ignore[index,operator]
    out["throughput_ratio"] = ratio
    print(f"  keymux / baseline: {ratio:.2f}x (target >= 0.85: {'PASS' if ratio >= 0.85 else 'FAIL'})")
    return out
