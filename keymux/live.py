"""The one live configuration: an immutable `Snapshot` that the pool, the relay and the surfaces read, and
the `Live` holder whose `swap` replaces it atomically (a reload, a key added or removed at run time).

A snapshot is built once per change: the config, the deployments by model group (upstream model ids
added as extra groups), the routing strategy, and what each group needs per request (its providers,
whether `order` applies), so that nothing is derived again on the request path.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from keymux.clock import Clock
from keymux.config.policies import RetryTable, retry_table
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
    # Wildcard deployments (`gemini/*`), in config order: concrete groups are made from them on first use.
    patterns: tuple[DeploymentConfig, ...] = ()
    _providers: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _ordered: dict[str, bool] = field(default_factory=dict, repr=False)
    _keys: dict[str, int] = field(default_factory=dict, repr=False)
    _retries: dict[str, RetryTable] = field(default_factory=dict, repr=False)  # per group; _ANY_GROUP: the rest

    def __post_init__(self) -> None:
        router = self.config.router
        self._retries[_ANY_GROUP] = retry_table(router.num_retries, router.retry_policy)
        for name, policy in router.model_group_retry_policy.items():  # LiteLLM: instead of retry_policy
            self._retries[name] = retry_table(router.num_retries, policy)
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

    @property
    def listed(self) -> tuple[str, ...]:
        """What a model list shows: the groups, then the aliases not marked hidden."""
        router = self.router
        return self.names + tuple(a for a in router.model_group_alias if a not in router.hidden_aliases
                                  and a not in self.names)

    def providers(self, group: str) -> frozenset[str]:
        """The upstream APIs a group's deployments speak (usually one)."""
        return self._providers.get(group, frozenset())

    def retries(self, group: str) -> RetryTable:
        """Error class -> attempts the group may make after a failure of that class (`config/policies.py`)."""
        return self._retries.get(group) or self._retries[_ANY_GROUP]

    def ordered(self, group: str) -> bool:
        """Does any deployment of the group set `order`?"""
        return self._ordered.get(group, False)

    def keys_of_provider(self, provider: str) -> int:
        """How many distinct keys of this provider the snapshot holds (egress detection counts shares of it)."""
        return self._keys.get(provider, 0)

    def resolve(self, name: str) -> str | None:
        """A model group, an alias (router_settings.model_group_alias), or an upstream model id, as clients
        spell them ("models/x", "gemini/x"); else a concrete group made from a wildcard deployment."""
        groups = self.groups
        if name in groups:
            return name
        alias = self.router.model_group_alias.get(name)
        if alias is not None:
            return alias
        bare = name.removeprefix("models/")
        for candidate in (bare, name.partition("/")[2]):
            if candidate and candidate in groups:
                return candidate
            if candidate in self.router.model_group_alias:
                return self.router.model_group_alias[candidate]
        return self._expand(bare) if self.patterns else None

    def _expand(self, name: str) -> str | None:
        """The concrete group for `name` from the first wildcard deployment matching it (LiteLLM: model_name
        `gemini/*` with model `gemini/*` serves `gemini/gemini-2.5-flash`; `*` with `openai/*` serves any
        name). Its deployments count their quota per concrete model, like a configured group would."""
        if name in self.groups:
            return name
        if len(self.groups) >= _MAX_GROUPS:  # a client sending random model names cannot grow this forever
            return None
        matched: list[DeploymentConfig] = []
        group = ""
        for d in self.patterns:
            for spelled in (name, f"{d.provider}/{name}"):
                parts = _match(d.group, spelled)
                if parts is not None and (not group or spelled == group):
                    group = spelled
                    matched.append(replace(d, group=spelled, model=_fill(d.model, parts), id=f"{d.id}[{spelled}]"))
                    break
        if not matched:
            return None
        if group in self.groups:
            return group
        ds = build_deployments(replace(self.config, deployments=tuple(matched)))[group]
        self.groups[group] = ds
        self._providers[group] = frozenset(d.cfg.provider for d in ds)
        self._ordered[group] = any(d.cfg.order is not None for d in ds)
        return group

    def deployments(self) -> list[Deployment]:
        """Every deployment of the configured groups, each once."""
        return [d for name in self.names for d in self.groups[name]]


_MAX_GROUPS = 4096
_ANY_GROUP = "\x00"  # not a name a model group can have


def _match(pattern: str, name: str) -> list[str] | None:
    """What each `*` of `pattern` stood for in `name`, or None when it does not match."""
    m = re.fullmatch(fnmatch.translate(pattern).replace(".*", "(.+)"), name)
    return list(m.groups()) if m else None


def _fill(model: str, parts: list[str]) -> str:
    """The upstream model with the wildcard's parts put back in (`*` -> the model the client named)."""
    for part in parts:
        if "*" not in model:
            break
        model = model.replace("*", part, 1)
    return model


def _by_id(groups: dict[str, list[Deployment]], config: Config) -> dict[str, list[Deployment]]:
    """Fallbacks may name a deployment's model_info.id instead of a group (LiteLLM): a pool of that one."""
    targets = {t for fb in (config.router.fallbacks, config.router.context_window_fallbacks)
               for ts in fb.values() for t in ts if t not in groups}
    out: dict[str, list[Deployment]] = {}
    for ds in groups.values():
        for d in ds:
            base = d.id.rpartition("#")[0] or d.id  # an entry with several keys: its ids are id#1, id#2, ...
            for t in {d.id, base} & targets:
                out.setdefault(t, []).append(d)
    return out


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
    patterns = tuple(d for d in config.deployments + runtime if d.wildcard)
    concrete = tuple(d for d in config.deployments + runtime if not d.wildcard)
    groups = build_deployments(replace(config, deployments=concrete))
    if previous is not None:
        _keep_unchanged(groups, previous.groups)
    strategy = previous.strategy if previous is not None and \
        previous.router.routing_strategy == config.router.routing_strategy else \
        make_strategy(config.router.routing_strategy, clock)
    return Snapshot(config=config, groups={**_aliases(groups), **_by_id(groups, config), **groups},
                    names=tuple(groups), strategy=strategy, runtime=runtime, patterns=patterns)


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
