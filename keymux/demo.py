"""`keymux demo`: the real gateway in front of a local Gemini emulator, so a newcomer sees
keys rotate, cool down, run out for the day and get disabled, with no real keys at all."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
import textwrap
import time
from datetime import datetime
from typing import Any

import aiohttp
import orjson

from keymux.config.load import parse_config
from keymux.emulator import EmuKey, GeminiEmulator

# Simulated Google projects, one key each. Their quotas are tiny so the burst shows every state.
EMULATED = {
    "demo-key-alpha": EmuKey(rpm=4, rpd=100, project="alpha"),
    "demo-key-beta": EmuKey(rpm=4, rpd=3, project="beta"),  # runs out for the day during the burst
    "demo-key-gamma": EmuKey(rpm=2, rpd=100, project="gamma"),  # limits not declared: learned from Google's 429
    "demo-key-revoked": EmuKey(status="invalid"),
    "demo-key-delta": EmuKey(rpm=30, rpd=1000, project="delta"),  # kept out of the burst: for your own tries
}
DEMO_MASTER_KEY = "sk-keymux-demo"  # the gateway key of the demo (not a secret: the upstream is an emulator)
COLOURS = {"ready": "32", "cooling": "33", "exhausted": "35", "disabled": "31"}


def demo_config(upstream: str) -> Any:
    entry = lambda key, **extra: {"model_name": "demo-chat", "litellm_params": {  # noqa: E731
        "model": "gemini/gemini-2.5-flash", "api_key": key, "api_base": upstream, **extra}}
    return parse_config({
        "model_list": [
            entry("demo-key-alpha", rpm=4),
            entry("demo-key-beta", rpm=4),
            entry("demo-key-gamma"),
            entry("demo-key-revoked"),
            {"model_name": "demo-image", "litellm_params": {
                "model": "gemini/gemini-2.5-flash-image", "api_key": "demo-key-delta", "api_base": upstream}},
            {"model_name": "demo-try", "litellm_params": {
                "model": "gemini/gemini-2.5-flash", "api_key": "demo-key-delta", "api_base": upstream, "rpm": 30}},
        ],
        "router_settings": {"routing_strategy": "round-robin", "num_retries": 3, "queue_timeout": 4},
        "general_settings": {"master_key": DEMO_MASTER_KEY},
    }, source="<demo>")


def _paint(text: str, state: str, tty: bool) -> str:
    return f"\033[{COLOURS.get(state, '0')}m{text}\033[0m" if tty else text


def _until(ts: float | None) -> str:
    if ts is None:
        return ""
    left = ts - time.time()
    at = datetime.fromtimestamp(ts).astimezone().strftime("%H:%M:%S %Z")  # this machine's zone, named
    return f"until {at} ({left:.0f} s)" if left < 3600 else f"until {at} ({left / 3600:.1f} h)"


def render(health: dict[str, Any], tty: bool) -> list[str]:
    lines = [f"{'key':<14} {'state':<10} {'served':>6} {'rpm now':>7} {'today':>5}  why / until"]
    for key in health["groups"]["demo-chat"]["keys"]:
        state = key["state"]
        detail = " ".join(x for x in (key["reason"] or "", _until(key["until"])) if x)
        lines.append(f"{key['key']:<14} {_paint(f'{state:<10}', state, tty)} {key['served']:>6} "
                     f"{key['rpm_used']:>7.0f} {key['rpd_used']:>5}  {detail}")
    return lines


async def _burst(base: str, n: int, log: list[str]) -> tuple[int, int]:
    """Chat requests through keymux's own upstream client (the demo needs no SDK installed)."""
    from keymux.upstream import Client, UpstreamError

    client = Client()
    headers = {"authorization": f"Bearer {DEMO_MASTER_KEY}", "content-type": "application/json"}
    ok = refused = 0

    async def one(i: int) -> None:
        nonlocal ok, refused
        body = orjson.dumps({"model": "demo-chat", "messages": [{"role": "user", "content": f"hello #{i}"}]})
        try:
            resp = await client.post(f"{base}/v1/chat/completions", body, headers, timeout=30)
            answer = orjson.loads(await resp.read())
            resp.release()
        except (TimeoutError, UpstreamError, orjson.JSONDecodeError) as e:
            refused += 1
            log.append(f"#{i:02d} no answer from the gateway: {type(e).__name__}")
            return
        if resp.status == 200:
            ok += 1
            log.append(f"#{i:02d} 200 via {resp.headers.get('x-keymux-key')} "
                       f"(attempts: {resp.headers.get('x-keymux-attempts')}): "
                       f"{answer['choices'][0]['message']['content']}")
        else:
            refused += 1
            message = (answer.get("error") or {}).get("message", "") if isinstance(answer, dict) else ""
            log.append(f"#{i:02d} {resp.status} Retry-After: {resp.headers.get('retry-after')} s: {message}")

    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(one(i + 1)))
        await asyncio.sleep(0.15)
    await asyncio.gather(*tasks)
    await client.close()
    return ok, refused


def _fit(line: str, width: int) -> str:
    """One screen line (the live view redraws by line count), cut at a word, never mid-word."""
    return line if len(line) <= width else textwrap.shorten(line, width, placeholder=" ...")


async def _show(base: str, done: asyncio.Event, log: list[str], tty: bool) -> None:
    async with aiohttp.ClientSession(headers={"authorization": f"Bearer {DEMO_MASTER_KEY}"}) as http:
        drawn = 0
        while True:
            async with http.get(f"{base}/health") as resp:
                table = render(await resp.json(), tty)
            width = shutil.get_terminal_size((120, 24)).columns - 1
            recent = [_fit(line, width) for line in log[-8:]]
            frame = table + [""] + recent + [""] * (8 - len(recent))
            if tty:
                if drawn:
                    sys.stdout.write(f"\033[{drawn}F")
                sys.stdout.write("".join(f"\033[2K{line}\n" for line in frame))
                sys.stdout.flush()
                drawn = len(frame)
            if done.is_set():
                if not tty:
                    print("\n".join(log))
                    print()
                    print("\n".join(table))
                return
            await asyncio.sleep(0.3)


async def _demo(port: int, requests: int, keep_serving: bool, quiet: bool) -> int:
    from keymux.server import start

    if quiet:  # the live view shows what the log lines would
        logging.getLogger("keymux").setLevel(logging.ERROR)
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("httpx2").setLevel(logging.WARNING)

    emulator = GeminiEmulator(EMULATED)
    upstream = await emulator.serve()
    try:
        runner = await start(demo_config(upstream), "127.0.0.1", port)
    except OSError as e:
        print(f"keymux demo: cannot listen on port {port} ({e.strerror}); try --port 4001", file=sys.stderr)
        await emulator.close()
        return 1
    base = f"http://127.0.0.1:{port}"
    tty = sys.stdout.isatty()
    print(f"\nkeymux demo: gateway {base} -> local Gemini emulator {upstream}")
    print("4 simulated keys: alpha (rpm 4 declared), beta (rpm 4 declared, only 3/day at Google), "
          "gamma (nothing declared: limits learned from Google's 429), one revoked key.")
    print(f"Sending {requests} chat requests (OpenAI format), one every 0.15 s; a request may wait 4 s "
          "for a free key (router_settings.queue_timeout).\n")
    log: list[str] = []
    done = asyncio.Event()
    view = asyncio.create_task(_show(base, done, log, tty))
    ok, refused = await _burst(base, requests, log)
    done.set()
    await view
    upstream_429 = emulator.count(status=429)
    invalid = emulator.count(kind="invalid_key")
    print(f"\n{ok} answered, {refused} refused with an honest Retry-After. Upstream saw {upstream_429} "
          f"rate-limit answer(s) and the revoked key was tried {invalid} time(s), then never again.")
    logging.getLogger("keymux").setLevel(logging.INFO)
    if not keep_serving:
        await runner.cleanup()
        await emulator.close()
        return 0
    auth = f"-H 'Authorization: Bearer {DEMO_MASTER_KEY}'"
    print(f"\nStill serving on {base} (Ctrl-C to stop). The gateway key is {DEMO_MASTER_KEY}; demo-chat's keys "
          "are out for now (that was the point), demo-try and demo-image have a key of their own. Try:\n"
          f"  curl {base}/v1/chat/completions {auth} -H 'content-type: application/json' \\\n"
          f"    -d '{{\"model\": \"demo-try\", \"messages\": [{{\"role\": \"user\", \"content\": \"hi\"}}]}}'\n"
          f"  curl {base}/health {auth}\n"
          f"  dashboard: {base}/ui (sign in with {DEMO_MASTER_KEY})\n")
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await emulator.close()
    return 0


def run_demo(port: int = 4000, requests: int = 24, keep_serving: bool = True, quiet: bool = True) -> int:
    from keymux.server import new_loop

    loop = new_loop()
    try:
        return loop.run_until_complete(_demo(port, requests, keep_serving, quiet))
    except KeyboardInterrupt:
        return 0
    finally:
        loop.close()



