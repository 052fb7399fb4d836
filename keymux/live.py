"""The one live configuration: an immutable `Snapshot` that the pool, the relay and the surfaces read, and
the `Live` holder whose `swap` replaces it atomically (a reload, a key added or removed at run time).

A snapshot is built once per change: the config, the deployments by model group (upstream model ids
added as extra groups), the routing strategy, and what each group needs per request (its providers,
whether `order` applies), so that nothing is derived again on the request path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from keymux.clock import Clock
from keymux.config.schema import Config, DeploymentConfig, RouterSettings
from keymux.pool.deployment import Deployment, build_deployments
from keymux.pool.strategies import Strategy, make_strategy


@dataclass(frozen=True, eq=False)
class Snapshot:
    config: Config
    groups: dict[str, list[Deployment]]  # model groups, then upstream model ids (aliases) as extra pools
    names: tuple[str, ...]  # the configured model groups, in config order (aliases left out)
    strategy: Strategy
    runtime: tuple[DeploymentConfig, ...] = ()  # keys added at run time (in `groups` too)
    _providers: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _ordered: dict[str, bool] = field(default_factory=dict, repr=False)
    _keys: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        keys: dict[str, set[str]] = {}
        for name, ds in self.groups.items():
            self._providers[name] = frozenset(d.cfg.provider for d in ds)
            self._ordered[name] = any(d.cfg.order is not None for d in ds)
            for d in ds:
                keys.setdefault(d.cfg.provider, set()).add(d.fingerprint)
        self._keys.update({provider: len(fps) for provider, fps in keys.items()})

    @property
    def router(self) -> RouterSettings:
        return self.config.router

    def providers(self, group: str) -> frozenset[str]:
        """The upstream APIs a group's deployments speak (usually one)."""
        return self._providers.get(group, frozenset())

    def ordered(self, group: str) -> bool:
        """Does any deployment of the group set `order`?"""
        return self._ordered.get(group, False)

    def keys_of_provider(self, provider: str) -> int:
        """How many distinct keys of this provider the snapshot holds (egress detection counts shares of it)."""
        return self._keys.get(provider, 0)

    def resolve(self, name: str) -> str | None:
        """A model group, or an upstream model id, as clients spell them ("models/x", "gemini/x")."""
        groups = self.groups
        if name in groups:
            return name
        for candidate in (name.removeprefix("models/"), name.partition("/")[2]):
            if candidate and candidate in groups:
                return candidate
        return self.config.router.aliases.get(name)

    def deployments(self) -> list[Deployment]:
        """Every deployment of the configured groups, each once."""
        return [d for name in self.names for d in self.groups[name]]


def _aliases(groups: dict[str, list[Deployment]]) -> dict[str, list[Deployment]]:
    """Upstream model ids as extra pools: every deployment serving that model, one per key."""
    out: dict[str, list[Deployment]] = {}
    seen: set[tuple[str, str]] = set()
    for deployments in groups.values():
        for d in deployments:
            if d.model in groups or (d.model, d.fingerprint) in seen:
                continue
            seen.add((d.model, d.fingerprint))
            out.setdefault(d.model, []).append(d)
    return out


def build_snapshot(config: Config, clock: Clock, runtime: tuple[DeploymentConfig, ...] = (),
                   previous: Snapshot | None = None) -> Snapshot:
    """The snapshot for `config` plus the keys added at run time (config ids win).

    A deployment whose settings and scope limits are unchanged keeps its very object (its in-flight count and
    latency statistics); a changed one inherits its statistics. Key state (parks, windows, failures, disables)
    lives in the store keyed by scope, deployment id and fingerprint, so it carries over either way.
    """
    own = {d.id for d in config.deployments}
    runtime = tuple(d for d in runtime if d.id not in own)
    groups = build_deployments(replace(config, deployments=config.deployments + runtime))
    if previous is not None:
        _keep_unchanged(groups, previous.groups)
    strategy = previous.strategy if previous is not None and \
        previous.router.routing_strategy == config.router.routing_strategy else \
        make_strategy(config.router.routing_strategy, clock)
    return Snapshot(config=config, groups={**_aliases(groups), **groups}, names=tuple(groups), strategy=strategy,
                    runtime=runtime)


def _keep_unchanged(groups: dict[str, list[Deployment]], old: dict[str, list[Deployment]]) -> None:
    previous = {d.id: d for ds in old.values() for d in ds}
    for ds in groups.values():
        for i, d in enumerate(ds):
            p = previous.get(d.id)
            if p is None:
                continue
            if p.cfg == d.cfg and p.scope == d.scope and p.limits == d.limits:
                ds[i] = p
            else:
                d.served, d.latency_ewma, d.last_used, d.recent = p.served, p.latency_ewma, p.last_used, p.recent


class Live:
    """Holds the snapshot in force. Readers take `live.snapshot` once per request and use that one."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.on_swap: list[Callable[[Snapshot], None]] = []  # e.g. the pool's queue: capacity may have changed

    def swap(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        for listener in self.on_swap:
            listener(snapshot)
