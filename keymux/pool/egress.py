"""Egress detection: when most keys of a provider get a 429 within seconds, the limit is this host's IP.

Google (and others) also throttle per client IP; gateways that run many keys from one address see every
key refused at once (reported by gemini-balance users). Parking each key for it would burn through them
all and leave every key marked as rate-limited when none is. So the pool counts the unexplained 429s
per provider (those that name no quota of the key's project: see `counts_for_egress`); when at least `share` of the
provider's keys (and at least two) got one within `window` seconds, the provider as a whole backs off
(5 s, doubling per repeat, capped at 5 min), the parks those 429s caused are cleared, and the first success
afterwards ends the back-off. State is per process: each replica has its own egress address anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from keymux.providers.base import Outcome, Verdict

BASE, CAP = 5.0, 300.0


def counts_for_egress(verdict: Verdict) -> bool:
    """An unexplained 429: a bare one, or a per-minute one that names no quota of the key's project. A 429
    naming the key's quota (QuotaFailure with a limit), a per-day one, or a billing cause is about the key."""
    if verdict.whole_project or verdict.cause == "tier_drop":
        return False
    if verdict.outcome is Outcome.BACKOFF:
        return True
    return verdict.outcome is Outcome.RATE_LIMITED and verdict.learned_limit is None and not verdict.cause


@dataclass
class ProviderEgress:
    hits: dict[str, tuple[float, str, str]] = field(default_factory=dict)  # fingerprint -> (at, scope, dep id)
    level: int = 0
    until: float = 0.0
    reason: str = ""
    since: float | None = None  # when the current back-off began


class Egress:
    def __init__(self) -> None:
        self.providers: dict[str, ProviderEgress] = {}
        self.latest = 0.0  # the end of the latest back-off: admission checks only this while it is past

    def backing_off(self, provider: str, now: float) -> ProviderEgress | None:
        p = self.providers.get(provider)
        return p if p is not None and p.until > now else None

    def hit(self, provider: str, fingerprint: str, scope: str, deployment_id: str, now: float,
            n_keys: int, window: float, share: float) -> list[tuple[str, str, str]] | None:
        """Count one unexplained 429. Returns the (fingerprint, scope, deployment id) whose parks to clear
        when this 429 makes the provider back off, else None."""
        p = self.providers.setdefault(provider, ProviderEgress())
        p.hits[fingerprint] = (now, scope, deployment_id)
        edge = now - window
        for fp in [fp for fp, (at, _, _) in p.hits.items() if at < edge]:
            del p.hits[fp]
        need = max(2, math.ceil(share * n_keys))
        if n_keys < 2 or len(p.hits) < need:
            return None
        p.level += 1
        delay = min(CAP, BASE * 2 ** (p.level - 1))
        p.until = now + delay
        self.latest = max(self.latest, p.until)
        if p.since is None:
            p.since = now
        p.reason = (f"{len(p.hits)} of {n_keys} {provider} keys got a 429 within {window:g} s: the limit is "
                    f"likely this host's IP (egress), not the keys; backing off {provider} for {delay:g} s")
        cleared = [(fp, scope, dep) for fp, (_, scope, dep) in p.hits.items()]
        p.hits.clear()
        return cleared

    def success(self, provider: str, now: float) -> None:
        """A success after the back-off ended: the address is accepted again (stragglers do not count)."""
        p = self.providers.get(provider)
        if p is not None and (p.level or p.hits) and now >= p.until:
            p.level, p.hits, p.since, p.reason = 0, {}, None, ""
