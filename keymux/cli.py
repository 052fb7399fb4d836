"""keymux serve | check | demo | init — and LiteLLM's own invocation, `keymux --config PATH --port P`.

Imports are deferred into each command so `keymux check` and start-up stay fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _setup_logging(debug: bool) -> None:
    from keymux.logsetup import configure

    configure(debug)


def _load(path: str):  # type: ignore[no-untyped-def]
    from keymux.config.load import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as e:
        print(f"keymux: config error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as e:
        print(f"keymux: cannot read config {path}: {e.strerror}", file=sys.stderr)
        raise SystemExit(2) from None


def _from_environ():  # type: ignore[no-untyped-def]
    """No config file: the document `keymux init` would write, straight from the environment."""
    from keymux.config.load import ConfigError, parse_config
    from keymux.envconfig import EnvConfigError, document, jobs_from_environ

    try:
        doc = document(jobs_from_environ(os.environ), os.environ, sqlite_dir=os.getcwd())
        return parse_config(doc, source="<environment>")
    except EnvConfigError as e:
        print(f"keymux: no --config (or KEYMUX_CONFIG) and {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except ConfigError as e:
        print(f"keymux: config error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    config = _load(args.config) if args.config else _from_environ()
    if args.workers > 1 and getattr(config.router, "redis", None) is None \
            and os.environ.get("KEYMUX_UNSAFE_WORKERS") != "1":  # benchmarks only: quotas counted per worker
        print(f"keymux: --workers {args.workers} needs shared state: set router_settings.redis_host or redis_url; "
              "without it each worker would believe it owns every key's full quota", file=sys.stderr)
        return 2
    _setup_logging(args.debug or config.verbose)
    log = logging.getLogger("keymux")
    for warning in config.warnings:
        log.warning("config: %s", warning)
    for inactive in config.inactive:
        log.info("config: %s", inactive)
    if config.master_key is None and args.host not in LOOPBACK:
        log.warning("!" * 78)
        log.warning("NO master_key SET and listening on %s: anyone who can reach this port can spend your keys.",
                    args.host)
        log.warning("Set general_settings.master_key in the config (or KEYMUX_MASTER_KEY with no config file), "
                    "or bind to 127.0.0.1.")
        log.warning("!" * 78)
    workers = args.workers
    if workers > 1 and getattr(config.router, "redis", None) is None:
        log.warning("KEYMUX_UNSAFE_WORKERS=1: %d workers without shared state; each counts every key's quota "
                    "alone (for benchmarks only)", workers)
    from keymux.server import run

    try:
        run(config, host=args.host, port=args.port, workers=workers, watch=args.watch,
            reuse_port=args.reuse_port)
    except OSError as e:  # the listening socket: a busy port, a privileged one, an address not on this host
        reason = os.strerror(e.errno) if e.errno else str(e)  # the loop's own text repeats the address
        print(f"keymux: cannot listen on {args.host}:{args.port} ({reason}); choose another with "
              "--port (or KEYMUX_PORT)", file=sys.stderr)
        return 1
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from keymux.config.report import describe

    config = _load(args.config)
    print(describe(config))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    _setup_logging(args.debug)
    from keymux.demo import run_demo

    return run_demo(port=args.port, requests=args.requests, keep_serving=not args.no_serve, quiet=not args.debug)


def cmd_init(args: argparse.Namespace) -> int:
    from keymux.init import run_init

    return run_init(output=args.output, force=args.force, keys=args.key, models=args.model, rpm=args.rpm,
                    rpd=args.rpd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keymux", description="One endpoint, many LLM API keys, quota-aware.")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", "-c", default=os.environ.get("KEYMUX_CONFIG") or None,
                       help="path to the config (LiteLLM format works as is); default KEYMUX_CONFIG; with neither, "
                       "the config comes from the environment (GEMINI_KEY_* and KEYMUX_* variables, see `keymux init`)")
    serve.add_argument("--host", default=os.environ.get("KEYMUX_HOST") or "0.0.0.0", help="default KEYMUX_HOST")
    serve.add_argument("--port", "-p", type=int, default=os.environ.get("KEYMUX_PORT") or os.environ.get("PORT") or 4000,
                       help="default KEYMUX_PORT, else PORT (set by PaaS hosts), else 4000")
    serve.add_argument("--debug", "--detailed_debug", action="store_true",
                       default=os.environ.get("KEYMUX_DEBUG", "") in ("1", "true"),
                       help="more detail in logs (still redacted); KEYMUX_DEBUG=1")
    serve.add_argument("--workers", type=int, default=os.environ.get("KEYMUX_WORKERS") or 1,
                       help="processes sharing the port (SO_REUSEPORT); more than 1 needs Redis shared state")
    serve.add_argument("--reuse-port", action="store_true",
                       default=os.environ.get("KEYMUX_REUSE_PORT", "") in ("1", "true"),
                       help="let other keymux processes on this host listen on the same port (KEYMUX_REUSE_PORT=1)")
    serve.add_argument("--watch", action="store_true", help="reload the config when the file changes "
                       "(SIGHUP and POST /admin/reload always do)")
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check", help="validate a config and show what it resolves to")
    check.add_argument("--config", "-c", required=True)
    check.set_defaults(func=cmd_check)

    demo = sub.add_parser("demo", help="the gateway against a local Gemini emulator, no real keys needed")
    demo.add_argument("--port", "-p", type=int, default=4000)
    demo.add_argument("--requests", type=int, default=24, help="size of the burst the demo sends")
    demo.add_argument("--no-serve", action="store_true", help="exit after the burst instead of serving")
    demo.add_argument("--debug", action="store_true")
    demo.set_defaults(func=cmd_demo)

    init = sub.add_parser("init", help="write a commented config from GEMINI_KEY_* variables or flags; no key "
                          "is written into it")
    init.add_argument("--output", "-o", default="keymux.yaml", help="file to write ('-' for stdout)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.add_argument("--key", action="append", default=[], metavar="JOB=VARIABLE",
                      help="a key by the NAME of the variable holding it (repeatable); default: every "
                      "GEMINI_KEY_<JOB>_<N> / GOOGLE_AI_STUDIO_KEY_<JOB>_<N> variable")
    init.add_argument("--model", action="append", default=[], metavar="JOB=MODEL",
                      help="upstream model of a job (default gemini-2.5-flash; jobs named image: "
                      "gemini-2.5-flash-image)")
    init.add_argument("--rpm", action="append", default=[], metavar="JOB=N", help="declared requests per minute")
    init.add_argument("--rpd", action="append", default=[], metavar="JOB=N", help="declared requests per day")
    init.set_defaults(func=cmd_init)

    from keymux.admin_cli import add_commands
    from keymux.clients_cli import add_commands as add_client_commands

    add_commands(sub)
    add_client_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from keymux.privileges import drop_root

    drop_root()  # in the image, started as root: become its user before anything else
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0].startswith("-") and args_list[0] not in ("-h", "--help"):
        args_list.insert(0, "serve")  # LiteLLM style: `keymux --config litellm_config.yaml --port 4000`
    parser = build_parser()
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args))
