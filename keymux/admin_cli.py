"""`keymux keys` and `keymux usage`: the admin API of a running server, as readable tables.

Standard library only (urllib), so the commands start fast. Colours only on a terminal (and not with NO_COLOR).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.parse
from typing import Any

from keymux.admin_client import DEFAULT_URL, AdminError, call

_COLOURS = {"ready": "32", "cooling": "33", "exhausted": "35", "disabled": "31"}
BAR = 10


def _paint(text: str, state: str, colour: bool) -> str:
    code = _COLOURS.get(state)
    return f"\x1b[{code}m{text}\x1b[0m" if colour and code else text


def bar(used: float, limit: int | None) -> str:
    if not limit:
        return f"{int(used)}" if used else "-"
    filled = min(BAR, round(BAR * used / limit))
    return f"{'█' * filled}{'·' * (BAR - filled)} {int(used)}/{limit}"


def _in(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _money(x: float) -> str:
    return f"${x:.4f}" if x < 1 else f"${x:.2f}"


def _table(rows: list[list[str]], plain: list[list[str]]) -> str:
    """Columns sized on the text without colour codes."""
    widths = [max(len(r[i]) for r in plain) for i in range(len(plain[0]))]
    lines = []
    for shown, text in zip(rows, plain):
        lines.append("  ".join(s + " " * (w - len(t)) for s, t, w in zip(shown, text, widths)).rstrip())
    return "\n".join(lines)


def render_keys(doc: dict[str, Any], colour: bool) -> str:
    head = ["KEY", "GROUPS", "MODEL", "STATE", "FOR", "RPM", "RPD", "TODAY req/err", "TOKENS", "COST (VALUE)", "WHY"]
    plain, shown = [head], [head]
    for k in doc["data"]:
        today = k.get("today") or {}
        for i, m in enumerate(k["models"]):
            lim = m["limits"]
            row = [k["key"] if i == 0 else "", ",".join(m["groups"]), m["model"], m["state"], _in(m.get("until_in")),
                   bar(lim["rpm"]["used"], lim["rpm"]["limit"]), bar(lim["rpd"]["used"], lim["rpd"]["limit"]),
                   f"{today.get('requests', 0)}/{today.get('errors', 0)}" if i == 0 and today else "",
                   f"{today.get('tokens', 0):,}" if i == 0 and today else "",
                   f"{_money(today.get('cost', 0.0))} ({_money(today.get('value', 0.0))})" if i == 0 and today else "",
                   (m.get("why") or "")[:60]]
            plain.append(row)
            shown.append([*row[:3], _paint(row[3], m["state"], colour), *row[4:]])
    out = _table(shown, plain)
    if doc.get("ledger_error"):
        out += f"\n(usage unavailable: {doc['ledger_error']})"
    return out


def render_usage(doc: dict[str, Any]) -> str:
    by = doc.get("by")
    head = ([by.upper()] if by else []) + (["BUCKET"] if doc.get("bucket") else []) + [
        "REQUESTS", "ERRORS", "PROMPT", "COMPLETION", "TOTAL TOKENS", "COST", "VALUE"]
    rows = [head]
    for r in [*doc["data"], {**doc.get("total", {}), **({by: "total"} if by else {}), "bucket": ""}]:
        if not r.get("requests"):
            continue
        cells = [str(r.get(by) or "-")] if by else []
        if doc.get("bucket"):
            b = r.get("bucket")
            cells.append(time.strftime("%Y-%m-%d %H:%M", time.gmtime(b)) if isinstance(b, (int, float)) else "")
        cells += [str(r["requests"]), str(r["errors"]), f"{r['prompt_tokens']:,}", f"{r['completion_tokens']:,}",
                  f"{r['total_tokens']:,}", _money(r["cost"]), _money(r["value"])]
        rows.append(cells)
    return _table(rows, rows) if len(rows) > 1 else "no requests in this period"


def _key(args: argparse.Namespace) -> str | None:
    return args.key or os.environ.get("KEYMUX_MASTER_KEY") or os.environ.get("LITELLM_MASTER_KEY")


def cmd_keys(args: argparse.Namespace) -> int:
    try:
        doc = call(args.url, "GET", "/admin/keys", _key(args))
    except AdminError as e:
        print(f"keymux: {e}", file=sys.stderr)
        return 1
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    print(render_keys(doc, colour))
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    query = {"by": args.by, "since": args.since}
    if args.bucket:
        query["bucket"] = args.bucket
    try:
        doc = call(args.url, "GET", "/admin/usage?" + urllib.parse.urlencode(query), _key(args))
    except AdminError as e:
        print(f"keymux: {e}", file=sys.stderr)
        return 1
    print(render_usage(doc))
    return 0


def add_commands(sub: Any) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", default=os.environ.get("KEYMUX_URL", DEFAULT_URL), help="keymux server (KEYMUX_URL)")
        p.add_argument("--key", help="master key (default: KEYMUX_MASTER_KEY or LITELLM_MASTER_KEY)")

    keys = sub.add_parser("keys", help="every key of a running server: state, limits, today's usage")
    common(keys)
    keys.set_defaults(func=cmd_keys)
    usage = sub.add_parser("usage", help="usage and cost of a running server, from its ledger")
    common(usage)
    usage.add_argument("--by", choices=("key", "group", "client", "model"), default="key")
    usage.add_argument("--since", default="24h", help="24h, 7d, 30m, epoch seconds or ISO 8601")
    usage.add_argument("--bucket", choices=("minute", "hour", "day"))
    usage.set_defaults(func=cmd_usage)

