"""The keymux benchmark: emulator, baseline and keymux side by side, same load, same run.

    bench/run                    # the default run (~2.5 min): 10 s per measurement, 5 interleaved rounds
    bench/run --quick            # 1 s per measurement, a smoke run
    bench/run --soak 100000      # also: 100k requests through keymux, RSS sampled every 10k
    bench/run --install-size     # also: size of keymux + dependencies in a fresh venv (needs PyPI access)
    bench/run --workers 2        # also: keymux --workers 1 and 2, sharing key state in Redis when it answers
    bench/run --instructions 2000  # also: CPU instructions per request (valgrind), noise-free keymux/baseline
    bench/run --cold-start 0     # skip the cold-start row (fresh keymux, undeclared vs declared limits)

Measures requests/s and p50/p99 latency at 1 and 16 connections, non-streaming and streaming, for:
direct (the load generator on the emulator's native Gemini endpoint), baseline (bench/baseline.py, a bare
translating proxy) and keymux (`keymux serve --config bench/config.yaml`), then keymux's ratios to the
baseline, its p50 added latency over direct at 1 connection, start-up time to a ready /health/readiness and
its RSS after the run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import orjson

from bench import cold_start, embeddings_row, instructions, responses_rows
from bench import interactions as interactions_row
from bench.load import Result, have_wrk, run_load
from keymux.translate.clients import openai_chat
from keymux.translate.providers import gemini as gemini_codec

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
KEYMUX = str(Path(PY).with_name("keymux"))
MASTER = "sk-bench-master-key"
N_KEYS = 12
CHAT_KEYS = [f"bench-key{i}" for i in range(6)]  # the keys of group bench-chat in bench/config.yaml
UPSTREAM_MODEL = "gemini-2.5-flash"
TARGETS = ("direct", "baseline", "keymux", "anthropic")  # anthropic: keymux's Anthropic surface, same keys
MODES = ("json", "stream")
TIMELINE = {"added_ms": 1.0, "throughput": 0.85, "startup_s": 1.0, "rss_mb": 80.0, "install_mb": 60.0}

OPENAI_BODY = {
    "model": "bench-chat",
    "messages": [{"role": "system", "content": "You are terse."},
                 {"role": "user", "content": "Say hello to the benchmark in one short sentence, please."}],
    "max_tokens": 64,
    "temperature": 0.2,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cmd: list[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus, *cmd] if cpus and shutil.which("taskset") else cmd


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def http(url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 20.0) -> float:
    """Seconds from now until `url` answers 200 (polled every 5 ms)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode} before it was ready")
        try:
            if http(url, timeout=1.0)[0] == 200:
                return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{url} not ready after {timeout} s")


class Procs:
    """Child processes, stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[subprocess.Popen] = []

    def spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.logdir / f"{name}.log", "ab")
        # PYTHONPATH: the `keymux` script imports the tree this harness is in, not wherever keymux was installed from
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": path, **(env or {})}, cwd=ROOT,
                                start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            self.stop(p)


def install_size() -> dict[str, float]:
    """keymux + dependencies installed (non-editable) into a fresh venv; site-packages size in MB."""
    venv = Path(tempfile.mkdtemp(prefix="keymux-size-"))
    try:
        subprocess.run([PY, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin/pip"), "install", "--quiet", "--disable-pip-version-check", str(ROOT)],
                       check=True)
        site = next(venv.glob("lib/python*/site-packages"))

        def du(paths: list[Path]) -> float:
            return sum(f.stat().st_size for p in paths for f in (p.rglob("*") if p.is_dir() else [p])
                       if f.is_file() and not f.is_symlink()) / 2**20

        everything = du([site])
        tooling = du([p for p in site.iterdir() if p.name.split("-")[0] in ("pip", "setuptools", "_distutils_hack",
                                                                             "distutils-precedence.pth")])
        return {"site_packages_mb": everything, "without_pip_mb": everything - tooling}
    finally:
        shutil.rmtree(venv, ignore_errors=True)


def median_round(rs: list[Result]) -> Result:
    """The round with the median req/s (its latencies with it), over all rounds' requests and errors."""
    mid = sorted(rs, key=lambda r: r.rps)[len(rs) // 2]
    return Result(requests=sum(r.requests for r in rs), errors=sum(r.errors for r in rs),
                  seconds=sum(r.seconds for r in rs), rps=mid.rps, p50_ms=mid.p50_ms, p99_ms=mid.p99_ms,
                  tool=mid.tool)


def fmt_row(target: str, mode: str, conns: int, r: Result) -> str:
    return (f"{target:<9} {mode:<7} {conns:>5} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.requests:>8} {r.errors:>6}")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=None, help="seconds per measurement (default 10; --quick 1)")
    p.add_argument("--quick", action="store_true", help="1-second measurements, a smoke run")
    p.add_argument("--rounds", type=int, default=None,
                   help="split each measurement into this many interleaved rounds (baseline, keymux, baseline, "
                        "...) and report the median round (default 5; --quick 1): a shared machine's speed "
                        "drifts between minutes, and interleaving puts both targets through the same drift")
    p.add_argument("--connections", default="1,16", help="comma-separated connection counts (default 1,16)")
    p.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto",
                   help="load generator: wrk (Debian package) or the asyncio one; auto = wrk when installed")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to cores with taskset")
    p.add_argument("--soak", type=int, default=0, metavar="N",
                   help="also send N requests through keymux (json/stream alternating per 10k), sampling RSS")
    p.add_argument("--install-size", action="store_true", help="also measure the install size in a fresh venv")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="also measure `keymux serve --workers 1` and `--workers N`, unpinned, with key state in "
                        "Redis on 127.0.0.1:6379 (without Redis: KEYMUX_UNSAFE_WORKERS=1, unsafe for quotas)")
    p.add_argument("--instructions", type=int, default=0, metavar="N",
                   help="also count CPU instructions per request over N requests (valgrind's callgrind): "
                        "keymux and the baseline, a comparison that machine noise does not move")
    p.add_argument("--cold-start", type=float, default=None, metavar="S",
                   help="seconds per cold-start measurement (default 2; --quick 1; 0 skips it): fresh keymux "
                        "processes, 3 keys without declared limits vs declared, 50 connections, upstream 20 ms")
    p.add_argument("--no-responses", action="store_true", help="skip the /v1/responses rows (json, stream)")
    p.add_argument("--gateway-key", action="store_true",
                   help="also measure a gateway key (limits and budget checked on every request) against the master "
                        "key: json, 16 connections, client counters in memory and in Redis (when 6379 answers)")
    p.add_argument("--embeddings", type=int, default=16, metavar="CONNS",
                   help="the /v1/embeddings row (16-input batches) at CONNS connections (default 16; 0 skips it)")
    p.add_argument("--startups", type=int, default=3, help="start-up measurements (median reported)")
    p.add_argument("--json", metavar="PATH", help="also write all results as JSON to PATH")
    p.add_argument("--keep-logs", action="store_true", help="keep the processes' logs and the ledger (temp dir)")
    args = p.parse_args(argv)
    duration = args.duration if args.duration is not None else 1.0 if args.quick else 10.0
    rounds = max(1, args.rounds if args.rounds is not None else 1 if args.quick else 5)
    conns_list = [int(c) for c in args.connections.split(",") if c]
    tool = args.tool if args.tool != "auto" else ("wrk" if have_wrk() else "python")
    per_round_s = duration / rounds if tool == "python" else max(1.0, duration / rounds)  # wrk: whole seconds
    pin = not args.no_pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    gw_cpu, up_cpu = ("0", "1") if pin else (None, None)
    if tool == "python" and pin:
        os.sched_setaffinity(0, {1})  # the in-process load generator shares core 1 with the emulator

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops the children
    logdir = Path(tempfile.mkdtemp(prefix="keymux-bench-"))
    procs = Procs(logdir)
    ok = False
    results: dict[str, object] = {"tool": tool, "duration_s": duration, "pinned": pin, "runs": []}
    try:
        # -- the upstream emulator
        up_port, base_port, km_port = free_port(), free_port(), free_port()
        upstream = f"http://127.0.0.1:{up_port}"
        emu = procs.spawn("emulator", pinned([PY, "-m", "keymux.emulator", "gemini", "--port", str(up_port),
                                              "--keys", f"bench-key*{N_KEYS}"], up_cpu))
        wait_ready_emulator(upstream, emu)

        # -- keymux: start-up time (spawn to a 200 from /health/readiness), the last one stays for the run
        env = {"BENCH_UPSTREAM": upstream, "BENCH_DATABASE_URL": f"sqlite:///{logdir}/ledger.db"}
        serve = pinned([KEYMUX, "serve", "--config", str(HERE / "config.yaml"), "--host", "127.0.0.1",
                        "--port", str(km_port)], gw_cpu)
        startups = []
        for i in range(max(1, args.startups)):
            t0 = time.perf_counter()
            km = procs.spawn("keymux", serve, env)
            wait_ready(f"http://127.0.0.1:{km_port}/health/readiness", km)
            startups.append(time.perf_counter() - t0)
            if i < max(1, args.startups) - 1:
                procs.stop(km)
        results["startup_s"] = startups

        # -- the baseline
        base = procs.spawn("baseline", pinned([PY, "-m", "bench.baseline", "--port", str(base_port),
                                               "--upstream", upstream, "--keys", ",".join(CHAT_KEYS)], gw_cpu))
        wait_ready(f"http://127.0.0.1:{base_port}/health/readiness", base)

        targets = target_table(upstream, base_port, km_port)
        check_answers(targets)
        print(f"keymux benchmark: load generator {tool}, {duration:g} s per measurement in {rounds} interleaved "
              f"round(s), "
              f"{'pinned: keymux/baseline on core 0, emulator + load generator on core 1' if pin else 'not pinned'}"
              f"; logs in {logdir}{'' if args.keep_logs else ' (removed after a good run; --keep-logs keeps them)'}",
              flush=True)

        # -- warm-up: connection pools, first-call imports, allocator
        for name in TARGETS:
            for mode in MODES:
                url, body, headers = targets[name][mode]
                run_load(url, body, headers, connections=16, duration=min(1.0, duration), tool=tool, cpus=up_cpu)

        print(f"\n{'target':<9} {'mode':<7} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'requests':>8} {'errors':>6}")
        table: dict[tuple[str, str, int], Result] = {}
        for mode in MODES:
            for conns in conns_list:
                per_round: dict[str, list[Result]] = {name: [] for name in TARGETS}
                for _ in range(rounds):
                    for name in TARGETS:
                        url, body, headers = targets[name][mode]
                        per_round[name].append(run_load(url, body, headers, connections=conns,
                                                        duration=per_round_s, tool=tool,
                                                        cpus=up_cpu))
                for name in TARGETS:
                    r = median_round(per_round[name])
                    table[(name, mode, conns)] = r
                    results["runs"].append({"target": name, "mode": mode, "connections": conns, **r.as_dict(),
                                            "rounds_rps": [x.rps for x in per_round[name]]})
                    print(fmt_row(name, mode, conns, r), flush=True)
        results["rss_mb"] = {"keymux": rss_mb(km.pid), "baseline": rss_mb(base.pid), "emulator": rss_mb(emu.pid)}

        summary = summarize(table, conns_list, startups, results["rss_mb"])  # type: ignore[arg-type]
        results["summary"] = summary
        results["interactions"] = interactions_row.measure(km_port, "bench-chat", MASTER,
                                                           connections=max(conns_list), duration=per_round_s,
                                                           rounds=rounds, tool=tool, cpus=up_cpu)
        if not args.no_responses:
            results["responses"] = responses_rows.measure(
                base_port, km_port, MASTER, connections=max(conns_list), per_round_s=per_round_s, rounds=rounds,
                tool=tool, cpus=up_cpu, http=http, median=median_round, row=fmt_row)

        if args.embeddings > 0:
            embed = embeddings_row.targets(upstream, base_port, km_port, MASTER, CHAT_KEYS[0])
            embeddings_row.check(http, embed)
            results["embeddings"] = embeddings_row.measure(embed, args.embeddings, rounds, per_round_s, tool, up_cpu,
                                                           median_round)

        cold_s = args.cold_start if args.cold_start is not None else 1.0 if args.quick else 2.0
        if cold_s > 0:
            procs.stop(km)
            results["cold_start"] = measure_cold_start(procs, logdir, cold_s, 1 if args.quick else 3, tool,
                                                       gw_cpu, up_cpu)
            km = procs.spawn("keymux", serve, env)
            wait_ready(f"http://127.0.0.1:{km_port}/health/readiness", km)
        if args.workers > 1:
            procs.stop(km)
            results["workers"] = measure_workers(procs, args.workers, km_port, env, targets, duration, tool,
                                                 logdir)
            km = procs.spawn("keymux", serve, env)
            wait_ready(f"http://127.0.0.1:{km_port}/health/readiness", km)
        if args.gateway_key:
            from bench import gateway_keys

            procs.stop(km)
            results["gateway_key"] = gateway_keys.measure(sys.modules[__name__], procs, km_port, env, targets,
                                                          duration, rounds, tool, logdir, gw_cpu, up_cpu)
            km = procs.spawn("keymux", serve, env)
            wait_ready(f"http://127.0.0.1:{km_port}/health/readiness", km)
        if args.instructions:
            results["instructions"] = count_instructions(procs, args.instructions, upstream, env, targets, logdir,
                                                         gw_cpu)
            if args.gateway_key:
                from bench import gateway_keys

                results["gateway_key_instructions"] = gateway_keys.count_instructions(
                    sys.modules[__name__], procs, args.instructions, env, targets, logdir, gw_cpu)
        if args.soak:
            results["soak"] = soak(km, targets["keymux"], args.soak, tool, up_cpu)
        if args.install_size:
            print("\ninstall size: creating a fresh venv and installing keymux (non-editable) ...", flush=True)
            size = install_size()
            results["install"] = size
            print(f"install size: site-packages {size['site_packages_mb']:.1f} MB, "
                  f"{size['without_pip_mb']:.1f} MB without the venv's own pip "
                  f"(target <= {TIMELINE['install_mb']:.0f} MB): "
                  f"{verdict(size['without_pip_mb'] <= TIMELINE['install_mb'])}")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        ok = True
    finally:
        procs.stop_all()
    if ok and not args.keep_logs:
        shutil.rmtree(logdir, ignore_errors=True)
    return 0


def wait_ready_emulator(upstream: str, proc: subprocess.Popen) -> None:
    wait_ready(f"{upstream}/v1beta/models?key=bench-key0", proc)


def target_table(upstream: str, base_port: int, km_port: int) -> dict[str, dict[str, tuple[str, bytes, dict]]]:
    openai_json = orjson.dumps(OPENAI_BODY)
    openai_stream = orjson.dumps({**OPENAI_BODY, "stream": True})
    gemini_body = gemini_codec.encode_request(
        openai_chat.decode_request(dict(OPENAI_BODY), drop_params=False, target=gemini_codec), "", False)
    ct = {"Content-Type": "application/json"}
    native = f"{upstream}/v1beta/models/{UPSTREAM_MODEL}"
    direct_h = {**ct, "x-goog-api-key": CHAT_KEYS[0]}
    km_h = {**ct, "Authorization": f"Bearer {MASTER}"}
    # The same conversation as an Anthropic Messages request, as the anthropic SDKs send it.
    anthropic_body = {"model": OPENAI_BODY["model"], "max_tokens": OPENAI_BODY["max_tokens"],
                      "temperature": OPENAI_BODY["temperature"], "system": OPENAI_BODY["messages"][0]["content"],
                      "messages": OPENAI_BODY["messages"][1:]}
    ant_h = {**ct, "x-api-key": MASTER, "anthropic-version": "2023-06-01"}
    messages = f"http://127.0.0.1:{km_port}/v1/messages"
    return {
        "direct": {"json": (f"{native}:generateContent", gemini_body, direct_h),
                   "stream": (f"{native}:streamGenerateContent?alt=sse", gemini_body, direct_h)},
        "baseline": {"json": (f"http://127.0.0.1:{base_port}/v1/chat/completions", openai_json, ct),
                     "stream": (f"http://127.0.0.1:{base_port}/v1/chat/completions", openai_stream, ct)},
        "keymux": {"json": (f"http://127.0.0.1:{km_port}/v1/chat/completions", openai_json, km_h),
                   "stream": (f"http://127.0.0.1:{km_port}/v1/chat/completions", openai_stream, km_h)},
        "anthropic": {"json": (messages, orjson.dumps(anthropic_body), ant_h),
                      "stream": (messages, orjson.dumps({**anthropic_body, "stream": True}), ant_h)},
    }


def check_answers(targets: dict[str, dict[str, tuple[str, bytes, dict]]]) -> None:
    """One request per target and mode before measuring: a benchmark of error answers measures nothing."""
    for name, modes in targets.items():
        for mode, (url, body, headers) in modes.items():
            status, raw = http(url, body, headers)
            expect = b"candidates" if name == "direct" else (b"chat.completion.chunk" if mode == "stream"
                                                             else b"chat.completion")
            if name == "anthropic":
                expect = b"event: message_stop" if mode == "stream" else b'"type":"message"'
            if status != 200 or expect not in raw:
                raise RuntimeError(f"{name} {mode}: {status} {raw[:300]!r}")
            if name == "anthropic":
                continue
            if name != "direct" and mode == "stream" and not raw.rstrip().endswith(b"data: [DONE]"):
                raise RuntimeError(f"{name} stream did not end with [DONE]: {raw[-200:]!r}")


def summarize(table: dict[tuple[str, str, int], Result], conns_list: list[int], startups: list[float],
              rss: dict[str, float]) -> dict[str, object]:
    out: dict[str, object] = {}
    print("\nkeymux vs the baseline (same run):")
    for mode in MODES:
        for conns in conns_list:
            km, base, direct = table[("keymux", mode, conns)], table[("baseline", mode, conns)], \
                table[("direct", mode, conns)]
            ratio = km.rps / base.rps if base.rps else float("nan")
            out[f"throughput_ratio_{mode}_{conns}"] = ratio
            target = f" (target >= {TIMELINE['throughput']:.2f}: {verdict(ratio >= TIMELINE['throughput'])})" \
                if conns == max(conns_list) else ""
            print(f"  {mode:<6} {conns:>2} conns: throughput {ratio:5.2f}x baseline{target}; "
                  f"p50 {km.p50_ms:.2f} vs {base.p50_ms:.2f} ms; p99 {km.p99_ms:.2f} vs {base.p99_ms:.2f} ms; "
                  f"direct {direct.rps:.0f} req/s")
    for mode in MODES:
        for conns in conns_list:
            ant, km, base = table[("anthropic", mode, conns)], table[("keymux", mode, conns)], \
                table[("baseline", mode, conns)]
            ratio = ant.rps / base.rps if base.rps else float("nan")
            openai_ratio = km.rps / base.rps if base.rps else float("nan")
            within = abs(ratio / openai_ratio - 1) if openai_ratio else float("nan")
            out[f"anthropic_throughput_ratio_{mode}_{conns}"] = ratio
            print(f"  {mode:<6} {conns:>2} conns: Anthropic surface {ratio:5.2f}x baseline vs OpenAI surface "
                  f"{openai_ratio:5.2f}x ({within * 100:.1f}% apart; target <= 10%: {verdict(within <= 0.10)}); "
                  f"p50 {ant.p50_ms:.2f} ms")
    low = min(conns_list)
    for mode in MODES:
        km, base, direct = table[("keymux", mode, low)], table[("baseline", mode, low)], table[("direct", mode, low)]
        added, base_added = km.p50_ms - direct.p50_ms, base.p50_ms - direct.p50_ms
        out[f"added_p50_ms_{mode}"] = added
        out[f"baseline_added_p50_ms_{mode}"] = base_added
        print(f"  {mode:<6} p50 added latency at {low} conn over direct: keymux {added:.2f} ms, baseline "
              f"{base_added:.2f} ms (target <= {TIMELINE['added_ms']:.0f} ms: "
              f"{verdict(added <= TIMELINE['added_ms'])})")
    med = statistics.median(startups)
    out["startup_median_s"] = med
    print(f"  start-up to a ready /health/readiness: median {med:.2f} s of {len(startups)} "
          f"({', '.join(f'{s:.2f}' for s in startups)}) (target <= {TIMELINE['startup_s']:.0f} s: "
          f"{verdict(med <= TIMELINE['startup_s'])})")
    print(f"  RSS after the run: keymux {rss['keymux']:.1f} MB, baseline {rss['baseline']:.1f} MB, "
          f"emulator {rss['emulator']:.1f} MB (target <= {TIMELINE['rss_mb']:.0f} MB: "
          f"{verdict(rss['keymux'] <= TIMELINE['rss_mb'])})")
    return out


def measure_cold_start(procs: Procs, logdir: Path, seconds: float, repeats: int, tool: str,
                       gw_cpu: str | None, up_cpu: str | None) -> dict[str, object]:
    def emulator(extra: list[str]) -> str:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = procs.spawn("emulator-cold", pinned([PY, "-m", "keymux.emulator", "gemini", "--port", str(port),
                                                    *extra], up_cpu))
        wait_ready(f"{url}/v1beta/models?key=cold-key0", proc)
        return url

    def keymux(config: Path) -> tuple[str, Callable[[], None]]:
        port = free_port()
        proc = procs.spawn("keymux-cold", pinned([KEYMUX, "serve", "--config", str(config), "--host", "127.0.0.1",
                                                  "--port", str(port)], gw_cpu))
        wait_ready(f"http://127.0.0.1:{port}/health/readiness", proc)
        return f"http://127.0.0.1:{port}/v1/chat/completions", lambda: procs.stop(proc)

    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {MASTER}"}
    return cold_start.measure(emulator, keymux, orjson.dumps(OPENAI_BODY), headers, logdir, seconds, repeats,
                              tool, up_cpu)


def redis_up(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_config(logdir: Path) -> Path:
    """bench/config.yaml with key state in Redis (a fresh namespace per run): the safe way to run workers."""
    import yaml

    doc = yaml.safe_load((HERE / "config.yaml").read_text())
    doc["router_settings"].update({"redis_host": "127.0.0.1", "redis_port": 6379,
                                   "redis_namespace": f"keymux-bench-{os.getpid()}-{int(time.time())}"})
    path = logdir / "config-redis.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def measure_workers(procs: Procs, n: int, port: int, env: dict[str, str], targets: dict, duration: float,
                    tool: str, logdir: Path) -> dict[str, object]:
    """1 and n worker processes, unpinned (the workers share both cores with the emulator and the load
    generator). With Redis on 127.0.0.1:6379, key state is shared through it, as in production; without,
    KEYMUX_UNSAFE_WORKERS=1 lets each worker count quotas alone (a benchmark-only shortcut)."""
    shared = redis_up()
    config = redis_config(logdir) if shared else HERE / "config.yaml"
    extra = {} if shared else {"KEYMUX_UNSAFE_WORKERS": "1"}
    how = "key state in Redis" if shared else "no Redis: KEYMUX_UNSAFE_WORKERS=1, each worker counts quotas alone"
    print(f"\nkeymux --workers 1 and {n} ({how}; not pinned: the workers share both cores with the emulator and "
          f"the load generator):", flush=True)
    out: dict[str, object] = {"redis": shared}
    for workers in (1, n):
        cmd = [KEYMUX, "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers)]
        proc = procs.spawn(f"keymux-workers{workers}", cmd, {**env, **extra})
        wait_ready(f"http://127.0.0.1:{port}/health/readiness", proc)
        for mode in MODES:
            url, body, headers = targets["keymux"][mode]
            run_load(url, body, headers, connections=16, duration=min(1.0, duration), tool=tool)
            r = run_load(url, body, headers, connections=16, duration=duration, tool=tool)
            out[f"{mode}_{workers}"] = r.as_dict()
            line = f"  {workers} worker(s) {mode:<6} 16 conns: {r.rps:5.0f} req/s (p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms)"
            if workers == n:
                one = out[f"{mode}_1"]["rps"]  # type: ignore[index]
                out[f"{mode}_scaling"] = r.rps / one
                line += f", {r.rps / one:.2f}x 1 worker"
            print(line, flush=True)
        procs.stop(proc)
    return out


def count_instructions(procs: Procs, n: int, upstream: str, env: dict[str, str],
                       targets: dict[str, dict[str, tuple[str, bytes, dict]]], logdir: Path,
                       cpu: str | None) -> dict[str, float]:
    if not instructions.available():
        print("\ninstructions: valgrind (Debian package valgrind) is not installed; skipped", flush=True)
        return {}
    print(f"\ninstructions per request (valgrind callgrind, {n} requests at 16 connections, user space, "
          f"all threads):", flush=True)
    port = free_port()
    cmds = {
        "baseline": [PY, "-m", "bench.baseline", "--port", str(port), "--upstream", upstream,
                     "--keys", ",".join(CHAT_KEYS)],
        "keymux": [KEYMUX, "serve", "--config", str(HERE / "config.yaml"), "--host", "127.0.0.1", "--port", str(port)],
    }
    out: dict[str, float] = {}
    for name, cmd in cmds.items():
        for mode in MODES:
            dump = logdir / f"callgrind-{name}-{mode}.out"
            proc = procs.spawn(f"{name}-callgrind", pinned(instructions.wrap(cmd, dump), cpu),
                               {**env, "BENCH_DATABASE_URL": f"sqlite:///{logdir}/ledger-callgrind-{mode}.db"})
            wait_ready(f"http://127.0.0.1:{port}/health/readiness", proc, timeout=180)
            url, body, headers = targets[name][mode]
            url = url.replace(url.split("/")[2], f"127.0.0.1:{port}")
            out[f"{name}_{mode}"] = instructions.measure(proc, dump, url, body, headers, n)
            print(f"  {name:<8} {mode:<6} {out[f'{name}_{mode}'] / 1000:8.0f} k instructions/request", flush=True)
    for mode in MODES:
        ratio = out[f"baseline_{mode}"] / out[f"keymux_{mode}"]
        out[f"ratio_{mode}"] = ratio
        print(f"  {mode:<6} baseline/keymux: {ratio:.2f} (the throughput ratio if all CPU were these instructions)")
    return out


def soak(km: subprocess.Popen, target: dict[str, tuple[str, bytes, dict]], n: int, tool: str,
         up_cpu: str | None) -> dict[str, object]:
    print(f"\nsoak: {n} requests through keymux at 16 connections, json and stream alternating per ~10k, "
          f"RSS after each ~10k:", flush=True)
    samples = [(0, rss_mb(km.pid))]
    done = 0
    chunk = 0
    rate = {mode: 2000.0 for mode in MODES}  # req/s guess, corrected by each chunk (wrk runs whole seconds)
    while done < n:
        step = min(10_000, n - done)
        mode = MODES[chunk % 2]
        url, body, headers = target[mode]
        r = run_load(url, body, headers, connections=16, duration=max(1.0, step / rate[mode]), max_requests=step,
                     tool=tool, cpus=up_cpu)
        rate[mode] = max(r.rps, 1.0)
        done += r.requests
        chunk += 1
        samples.append((done, rss_mb(km.pid)))
        print(f"  {done:>7} requests ({MODES[(chunk - 1) % 2]:<6} {r.rps:5.0f} req/s, {r.errors} errors): "
              f"RSS {samples[-1][1]:.1f} MB", flush=True)
    later = [mb for _, mb in samples[len(samples) // 2:]]
    growth = later[-1] - later[0] if len(later) > 1 else 0.0
    peak = max(mb for _, mb in samples)
    print(f"  peak RSS {peak:.1f} MB (target <= {TIMELINE['rss_mb']:.0f} MB: {verdict(peak <= TIMELINE['rss_mb'])}); "
          f"growth over the second half {growth:+.1f} MB")
    return {"samples": samples, "peak_mb": peak, "second_half_growth_mb": growth}


if __name__ == "__main__":
    raise SystemExit(main())
