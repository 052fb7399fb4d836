"""Run an emulator until Ctrl-C.

    python -m keymux.emulator gemini --port 8001 --keys 'k1:rpm=5,rpd=50;k2:rpm=5;bad:status=invalid'
    python -m keymux.emulator openai --port 8002 --keys 'sk-a:rpm=3,tpm=1000'
    python -m keymux.emulator gemini --keys 'key*100:rpm=10,project=p1' --latency 0.05

--keys: ';'-separated `name[:opt=value,...]`; options rpm, rpd, tpm (ints), project, status
(ok|invalid|not_found|leaked|suspended|service_disabled|location), zero (free_limit_zero; `zero`
alone or zero=1). `name*N` expands to name0 .. name{N-1}. Unknown keys are always invalid.
Prints the base URL on the first line; answer counts on exit (also at GET /_emulator/stats).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from keymux.emulator.gemini import GeminiEmulator
from keymux.emulator.openai import OpenAIEmulator
from keymux.emulator.quota import EmuKey

_TRUE = {"1", "true", "yes", "on", ""}


def parse_keys(spec: str) -> dict[str, EmuKey]:
    keys: dict[str, EmuKey] = {}
    for item in filter(None, (s.strip() for s in spec.split(";"))):
        name, _, opts = item.partition(":")
        kw: dict[str, object] = {}
        for opt in filter(None, (o.strip() for o in opts.split(","))):
            k, _, v = opt.partition("=")
            k = k.strip().lower()
            v = v.strip()
            if k in ("rpm", "rpd", "tpm"):
                kw[k] = int(v)
            elif k in ("project", "status"):
                kw[k] = v
            elif k in ("zero", "free_limit_zero"):
                kw["free_limit_zero"] = v.lower() in _TRUE
            else:
                raise ValueError(f"unknown key option {k!r} in {item!r}")
        name = name.strip()
        base, star, count = name.partition("*")
        names = [f"{base}{i}" for i in range(int(count))] if star else [name]
        for n in names:
            keys[n] = EmuKey(**kw)  # type: ignore[arg-type]
    return keys


async def _run(args: argparse.Namespace) -> None:
    cls = GeminiEmulator if args.api == "gemini" else OpenAIEmulator
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    emu = cls(parse_keys(args.keys), models=models, keep_calls=args.keep_calls)
    emu.latency = args.latency
    url = await emu.serve(args.host, args.port)
    print(url, flush=True)
    print(f"{args.api} emulator with {len(emu.keys)} keys; Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        print(f"answers: {dict(emu.stats)}", file=sys.stderr, flush=True)
        await emu.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m keymux.emulator", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("api", choices=["gemini", "openai"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    p.add_argument("--keys", default="key*4", help="key table, see above (default 'key*4', no limits)")
    p.add_argument("--models", default="", help="comma-separated model ids (default: built-in list)")
    p.add_argument("--latency", type=float, default=0.0, help="seconds of delay before each answer")
    p.add_argument("--keep-calls", action="store_true", help="keep the per-call log (grows without bound)")
    args = p.parse_args(argv)
    try:
        import uvloop  # type: ignore[import-not-found]

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run  # type: ignore[assignment]
    try:
        runner(_run(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
