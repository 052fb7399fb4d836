"""/metrics gauges for gateway keys: each key's budget, what it spent this period, requests in flight."""

from __future__ import annotations

from collections.abc import Callable

from keymux.clients.registry import Registry


def _line(out: list[str], name: str, help: str, samples: list[tuple[str, float]]) -> None:
    out.append(f"# HELP {name} {help}")
    out.append(f"# TYPE {name} gauge")
    for client, value in samples:
        escaped = client.replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'{name}{{client="{escaped}"}} {value:.10g}')


def budget_gauges(registry: Registry) -> Callable[[list[str]], None]:
    def render(out: list[str]) -> None:
        clients = sorted(registry.by_name.values(), key=lambda c: c.name)
        last = {c.name: registry.counters.last(c.name) for c in clients}
        _line(out, "keymux_client_budget_usd", "Budget per period of each gateway key (USD).",
              [(c.name, c.budget.usd) for c in clients if c.budget is not None])
        _line(out, "keymux_client_spent_usd", "USD each gateway key spent in its current budget period.",
              [(c.name, u.spent) for c in clients if (u := last[c.name]) is not None])
        _line(out, "keymux_client_in_flight", "Requests of each gateway key in flight.",
              [(c.name, float(u.in_flight)) for c in clients if (u := last[c.name]) is not None])
    return render
