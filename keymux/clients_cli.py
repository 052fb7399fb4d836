"""`keymux clients ...`: gateway keys of a running server through its admin API.

    keymux clients create --name image-job --models gemini-image --rpm 10 --budget 2/day
    keymux clients list | rotate NAME | disable NAME | enable NAME | expire NAME | delete NAME

Standard library only (urllib). The key is printed once, at create and rotate; keymux keeps only its hash.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from keymux.admin_client import DEFAULT_URL, AdminError, call


def _limits(c: dict[str, Any]) -> str:
    parts = [f"{name} {c[name]}" for name in ("rpm", "tpm", "rpd", "max_parallel") if c.get(name)]
    if c.get("budget"):
        parts.append(f"${c['budget']['usd']:.2f}/{c['budget']['period']}")
    return ", ".join(parts) or "-"


def render_list(doc: dict[str, Any]) -> str:
    rows = [["NAME", "FINGERPRINT", "MODELS", "LIMITS", "SPENT", "TODAY", "STATE"]]
    for c in doc["data"]:
        u = c.get("usage", {})
        state = "disabled" if c["disabled"] else ("read-only admin" if c.get("admin") else "active")
        rows.append([c["name"], c["fingerprint"], ",".join(c["models"]) or "all", _limits(c),
                     f"${u.get('spent', 0):.4f}", str(u.get("requests_today", 0)), state])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def _key(args: argparse.Namespace) -> str | None:
    return args.key or os.environ.get("KEYMUX_MASTER_KEY") or os.environ.get("LITELLM_MASTER_KEY")


def cmd_clients(args: argparse.Namespace) -> int:
    try:
        if args.action == "list":
            print(render_list(call(args.url, "GET", "/admin/clients", _key(args))))
            return 0
        if args.action == "create":
            body: dict[str, Any] = {"name": args.name}
            if args.models:
                body["models"] = [m for m in args.models.split(",") if m]
            for name in ("rpm", "tpm", "rpd", "max_parallel", "soft_budget", "budget", "timezone", "expires"):
                value = getattr(args, name)
                if value is not None:
                    body[name] = value
            if args.read_only_admin:
                body["admin"] = "read"
            doc = call(args.url, "POST", "/admin/clients", _key(args), body)
        elif args.action == "delete":
            doc = call(args.url, "DELETE", f"/admin/clients/{args.name}", _key(args))
            print(f"deleted gateway key {doc['deleted']} ({doc['fingerprint']})")
            return 0
        else:  # rotate | disable | enable | expire
            doc = call(args.url, "POST", f"/admin/clients/{args.name}/{args.action}", _key(args))
    except AdminError as e:
        print(f"keymux: {e}", file=sys.stderr)
        return 1
    print(f"{doc['name']} ({doc['fingerprint']}): {_limits(doc)}"
          f"{'; disabled' if doc['disabled'] else ''}")
    if "key" in doc:
        print(f"key: {doc['key']}")
        print("shown this once: keymux keeps only its hash", file=sys.stderr)
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("clients", help="gateway keys per client (scoped, rate-limited, budgeted) of a running server")
    p.add_argument("action", choices=("list", "create", "rotate", "disable", "enable", "expire", "delete"))
    p.add_argument("name_arg", nargs="?", metavar="NAME", help="the key's name (or --name)")
    p.add_argument("--name")
    p.add_argument("--models", help="comma-separated model groups it may use (default: all)")
    p.add_argument("--rpm", type=int)
    p.add_argument("--tpm", type=int)
    p.add_argument("--rpd", type=int)
    p.add_argument("--max-parallel", dest="max_parallel", type=int)
    p.add_argument("--budget", help="USD per period: 2/day, 10/week, 50/month, 100/total")
    p.add_argument("--soft-budget", dest="soft_budget", type=float, help="USD per the same period: only alerts")
    p.add_argument("--timezone", help="where day/week/month budgets reset (default UTC)")
    p.add_argument("--expires", help="30d, 12h, ISO 8601 or epoch seconds")
    p.add_argument("--read-only-admin", action="store_true", help="may read /admin and /metrics (a dashboard key)")
    p.add_argument("--url", default=os.environ.get("KEYMUX_URL", DEFAULT_URL), help="keymux server (KEYMUX_URL)")
    p.add_argument("--key", help="master key (default: KEYMUX_MASTER_KEY or LITELLM_MASTER_KEY)")

    def run(args: argparse.Namespace) -> int:
        args.name = args.name or args.name_arg
        if args.action != "list" and not args.name:
            print(f"keymux: clients {args.action} needs a NAME", file=sys.stderr)
            return 2
        return cmd_clients(args)

    p.set_defaults(func=run)
