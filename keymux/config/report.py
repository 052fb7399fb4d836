"""`describe(config)`: the plain-text report `keymux check` prints.

Keys appear only as fingerprints, the master key only as "set" / "not set", and URLs without credentials
or query strings.
"""

from __future__ import annotations

import textwrap
from urllib.parse import urlsplit, urlunsplit

from keymux.config.fields import show_value as sv
from keymux.config.policies import describe_policy
from keymux.config.schema import Config, DeploymentConfig, Limits

WIDTH = 100
_LIMIT_NAMES = (("rpm", "rpm"), ("tpm", "tpm"), ("rpd", "rpd"), ("tpd", "tpd"), ("max_parallel", "parallel"))


def describe(config: Config) -> str:
    groups = config.groups()
    n = len(config.deployments)
    lines = [f"keymux configuration: {config.source}" if config.source else "keymux configuration",
             f"{len(groups)} model group{_s(len(groups))}, {n} deployment{_s(n)}", ""]
    for group, deployments in groups.items():
        lines += _group(group, deployments)
        lines.append("")
    lines += _router(config)
    lines.append("")
    lines += _section("Verdict per group", [(sv(g), _verdict(ds)) for g, ds in groups.items()]
                      + [(sv(a), f"alias of {sv(t)}" + (" (hidden from model lists)" if a in config.router.hidden_aliases
                                                         else "")) for a, t in config.router.model_group_alias.items()])
    lines.append("")
    lines += _section("Requests", [
        ("drop_params", "yes (unsupported request params are dropped)" if config.drop_params else "no"),
        ("master key", "set (clients must send it)" if config.master_key
         else "not set: anyone who can reach keymux can spend these keys"),
        ("max request size", _size(config.max_request_bytes)),
        ("verbose", "yes" if config.verbose else "no"),
    ])
    lines.append("")
    lines += _section("Services", _services(config))
    lines.append("")
    lines.append("Accepted, not active yet" + ("" if config.inactive else ": none"))
    lines += _bullets(config.inactive)
    lines.append("")
    lines.append(f"Warnings ({len(config.warnings)})" if config.warnings else "Warnings: none")
    lines += _bullets(config.warnings)
    return "\n".join(lines).rstrip() + "\n"


def _services(config: Config) -> list[tuple[str, str]]:
    redis = config.router.redis
    state = "this process (in memory)"
    if redis is not None:
        on_outage = "refuse (fail closed)" if redis.fail_closed else "run on local state"
        state = f"shared: {redis.describe()}, namespace {redis.namespace}; if Redis is down: {on_outage}"
    cache = config.cache
    cached = "off"
    if cache is not None:
        where = cache.redis.describe() if cache.type == "redis" and cache.redis else f"local, up to {_size(cache.max_bytes)}"
        cached = f"{where}, ttl {cache.ttl:g} s"
    url = config.database_url
    if url is None:
        ledger = f"SQLite {config.source.parent / 'keymux.db'} (beside the config)" if config.source \
            else "in memory (no config file)"
    else:
        ledger = safe_url(url)  # as written (a relative sqlite path is relative to where keymux starts)
    metrics = "needs the master key" if config.metrics_auth and config.master_key else "open"
    return [("key state", state), ("response cache", cached), ("usage ledger", ledger), ("/metrics", metrics)]


def _verdict(deployments: list[DeploymentConfig]) -> str:
    """One line: what the group will do when a request for it arrives."""
    keys = len({d.fingerprint for d in deployments})
    served = sorted({d.vendor or d.provider for d in deployments})
    if all(d.wildcard for d in deployments):
        what = f"wildcard: serves any model it matches ({', '.join(served)}), quota counted per concrete model"
    else:
        what = f"ready: {keys} key{_s(keys)} ({', '.join(served)})"
    if not any(d.limits.any() for d in deployments):
        what += "; limits not declared (learned from upstream 429s)"
    return what


def limits_text(limits: Limits) -> str:
    """`rpm 5 · rpd 100`, or `not declared`."""
    parts = [f"{label} {getattr(limits, attr)}" for attr, label in _LIMIT_NAMES if getattr(limits, attr) is not None]
    return " · ".join(parts) or "not declared"


def safe_url(url: str) -> str:
    """A URL without user:password and with any query string elided (both can carry keys)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    query = "?…" if parts.query else ""
    return urlunsplit((parts.scheme, host, parts.path, "", "")) + query


def _group(group: str, deployments: list[DeploymentConfig]) -> list[str]:
    """A table of the group's deployments; extras and api_base go on a second line when a row gets too wide."""
    header = ["id", "provider", "model", "key", "bucket", "limits"]
    rows, extras = [], []
    for d in deployments:
        rows.append([sv(d.id), f"{d.provider} ({d.vendor})" if d.vendor else d.provider, sv(d.model), d.fingerprint,
                     f"project {sv(d.project)}" if d.project else "own key", limits_text(d.limits)])
        extras.append([_extras(d), safe_url(d.api_base) if d.api_base else ""])
    extra_headers = [h for h, i in (("other", 0), ("api_base", 1)) if any(e[i] for e in extras)]
    wide = [header + extra_headers] + [
        r + [e[i] for h, i in (("other", 0), ("api_base", 1)) if h in extra_headers] for r, e in zip(rows, extras)]
    out = [f"{sv(group)}  ({len(deployments)} deployment{_s(len(deployments))})"]
    table = _table(wide)
    if max(len(line) for line in table) + 2 <= WIDTH:
        return out + ["  " + line for line in table]
    table = _table([header] + rows)
    out.append("  " + table[0])
    for line, (other, base) in zip(table[1:], extras):
        out.append("  " + line)
        if other:
            out += textwrap.wrap(other, WIDTH, initial_indent="      ", subsequent_indent="      ",
                                 break_long_words=False, break_on_hyphens=False)
        if base:
            out.append(f"      api_base {base}")
    return out


def _extras(d: DeploymentConfig) -> str:
    parts = []
    if d.weight != 1.0:
        parts.append(f"weight {_num(d.weight)}")
    if d.order is not None:
        parts.append(f"order {d.order}")
    if d.timeout is not None:
        parts.append(f"timeout {_num(d.timeout)} s")
    if d.stream_timeout is not None:
        parts.append(f"stream timeout {_num(d.stream_timeout)} s")
    if d.max_retries is not None:
        parts.append(f"retries {d.max_retries}")
    costs = [f"{label} {cost:g}" for label, cost in (("in", d.input_cost_per_token), ("out", d.output_cost_per_token))
             if cost is not None]
    if costs:
        parts.append(f"$ per token {' '.join(costs)}")
    return " · ".join(parts)


def _router(config: Config) -> list[str]:
    r = config.router
    return _section("Router", [
        ("strategy", r.routing_strategy),
        ("retries", f"{r.num_retries} (further keys tried after the first)"),
        ("timeout", f"{_num(r.timeout)} s per attempt"),
        ("queue timeout", f"{_num(r.queue_timeout)} s (longest a request waits for a free key)"),
        ("allowed fails", f"{r.allowed_fails}, then a {_num(r.cooldown_time)} s cooldown"),
        ("retry policy", describe_policy(r.retry_policy, "Retries") + " (honoured)" if r.retry_policy
         else "none (every class: retries above; a request's own 4xx: none)"),
        *[(f"  {sv(g)}", describe_policy(p, "Retries") + " (instead of retry policy)")
          for g, p in r.model_group_retry_policy.items()],
        ("fails policy", describe_policy(r.allowed_fails_policy, "AllowedFails") + " (honoured)"
         if r.allowed_fails_policy else "none"),
        ("retry after", f"{_num(r.retry_after)} s"),
        ("fallbacks", _fallbacks(r.fallbacks)),
        ("context fallbacks", _fallbacks(r.context_window_fallbacks)),
    ])


def _fallbacks(fallbacks: dict[str, tuple[str, ...]]) -> str:
    if not fallbacks:
        return "none"
    return "; ".join(f"{sv(group)} -> {', '.join(map(sv, targets))}" for group, targets in fallbacks.items())


def _section(title: str, pairs: list[tuple[str, str]]) -> list[str]:
    width = max(len(k) for k, _ in pairs) + 2
    out = [title]
    for key, value in pairs:
        out += textwrap.wrap(value, WIDTH, initial_indent="  " + key.ljust(width),
                             subsequent_indent=" " * (width + 2), break_long_words=False,
                             break_on_hyphens=False) or ["  " + key]
    return out


def _bullets(items: tuple[str, ...]) -> list[str]:
    out = []
    for item in items:
        out += textwrap.wrap(item, WIDTH, initial_indent="  - ", subsequent_indent="    ",
                             break_long_words=False, break_on_hyphens=False)
    return out


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]


def _num(x: float) -> str:
    return f"{x:g}"


def _size(n: int) -> str:
    mib = n / (1024 * 1024)
    return f"{mib:g} MiB" if mib >= 1 else f"{n} bytes"


def _s(n: int) -> str:
    return "" if n == 1 else "s"


__all__ = ["describe", "limits_text", "safe_url"]
