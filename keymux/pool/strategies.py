"""Routing strategies: the order in which a group's deployments are offered to the store.

The store takes the first deployment in that order that has room, so a strategy only ranks;
it never has to know about limits or key state. LiteLLM's `order` is applied first.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from typing import Protocol

from keymux.clock import Clock
from keymux.pool.deployment import Deployment


class Strategy(Protocol):
    def rank(self, group: str, deployments: Sequence[Deployment]) -> list[Deployment]: ...


class SimpleShuffle:
    """Weighted random order (weight, else rpm/tpm as weight, like LiteLLM)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._equal: dict[str, tuple[Sequence[Deployment], bool]] = {}  # per group: its list, equal weights?

    def _equal_weights(self, group: str, deployments: Sequence[Deployment]) -> bool:
        cached = self._equal.get(group)
        if cached is not None and cached[0] is deployments:
            return cached[1]
        first = deployments[0].cfg.weight
        equal = all(d.cfg.weight == first for d in deployments)
        self._equal[group] = (deployments, equal)
        return equal

    def rank(self, group: str, deployments: Sequence[Deployment]) -> list[Deployment]:
        n = len(deployments)
        if n < 2:
            return list(deployments)
        if self._equal_weights(group, deployments):
            # Equal weights: a rotation from a random start gives every key the same chance to be first,
            # in O(n) without sorting (this runs on every request).
            start = int(self._rng.random() * n)
            return [*deployments[start:], *deployments[:start]]
        rnd = self._rng.random
        # Efraimidis-Spirakis: sorting by u^(1/w) is a weighted permutation without replacement.
        def key(d: Deployment) -> float:
            w = d.cfg.weight if d.cfg.weight > 0 else 1e-9
            return float(rnd() ** (1.0 / w))

        return sorted(deployments, key=key, reverse=True)


class RoundRobin:
    def __init__(self) -> None:
        self._counters: dict[str, itertools.count[int]] = {}

    def rank(self, group: str, deployments: Sequence[Deployment]) -> list[Deployment]:
        counter = self._counters.get(group)
        if counter is None:
            counter = self._counters[group] = itertools.count()
        n = len(deployments)
        if n < 2:
            return list(deployments)
        start = next(counter) % n
        return list(deployments[start:]) + list(deployments[:start])


class _SortBy:
    """Stable sort by a key, ties broken by least recently used so equal keys still rotate."""

    def __init__(self, key: Callable[[Deployment, float], float], clock: Clock) -> None:
        self._key = key
        self._clock = clock

    def rank(self, group: str, deployments: Sequence[Deployment]) -> list[Deployment]:
        key, now = self._key, self._clock.time()
        return sorted(deployments, key=lambda d: (key(d, now), d.last_used))


def _usage_share(d: Deployment, now: float) -> float:
    """How much of its rpm a deployment has used this minute (in-flight requests count too)."""
    used = d.recent.total(now) + d.in_flight
    rpm = d.limits.rpm
    return used / rpm if rpm else used * 1e-6


def _latency(d: Deployment, now: float) -> float:
    return -1.0 if d.latency_ewma is None else d.latency_ewma  # untried first, to learn them


STRATEGIES: dict[str, Callable[[Clock], Strategy]] = {
    "simple-shuffle": lambda clock: SimpleShuffle(),
    "round-robin": lambda clock: RoundRobin(),
    "least-busy": lambda clock: _SortBy(lambda d, now: float(d.in_flight), clock),
    "usage-based-routing": lambda clock: _SortBy(_usage_share, clock),
    "usage-based-routing-v2": lambda clock: _SortBy(_usage_share, clock),
    "latency-based-routing": lambda clock: _SortBy(_latency, clock),
}


def make_strategy(name: str, clock: Clock) -> Strategy:
    return STRATEGIES[name](clock)


def apply_order(ranked: list[Deployment]) -> list[Deployment]:
    """LiteLLM `order`: lower order first (stable, so the strategy's ranking holds within an order)."""
    if all(d.cfg.order is None for d in ranked):
        return ranked
    return sorted(ranked, key=lambda d: d.cfg.order if d.cfg.order is not None else 1 << 30)
