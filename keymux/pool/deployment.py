"""Runtime view of a configured deployment: its quota scope and the limits that scope obeys."""

from __future__ import annotations

from dataclasses import dataclass, field

from keymux.config.schema import Config, DeploymentConfig, Limits
from keymux.pool.limits import SlidingWindow, min_known


@dataclass(eq=False)
class Deployment:
    cfg: DeploymentConfig
    scope: str  # "<bucket>|<upstream model>": what quota windows and 429 parking apply to
    limits: Limits  # declared limits of the scope (smallest declared among deployments sharing it)
    # Local statistics for routing strategies (per replica; fine for ordering decisions).
    in_flight: int = 0
    latency_ewma: float | None = None
    served: int = 0
    last_used: float = field(default=0.0)
    recent: SlidingWindow = field(default_factory=SlidingWindow)  # leases this minute, for usage-based routing
    # Copied from cfg (frozen): read several times per request, cheaper as attributes than as properties.
    id: str = field(init=False)
    fingerprint: str = field(init=False)
    model: str = field(init=False)

    def __post_init__(self) -> None:
        self.id, self.fingerprint, self.model = self.cfg.id, self.cfg.fingerprint, self.cfg.model

    def observe_latency(self, seconds: float) -> None:
        prev = self.latency_ewma
        self.latency_ewma = seconds if prev is None else prev * 0.8 + seconds * 0.2


def build_deployments(config: Config) -> dict[str, list[Deployment]]:
    """Deployments per group; deployments sharing (bucket, model) share one scope and its smallest limits."""
    scope_limits: dict[str, Limits] = {}
    for d in config.deployments:
        scope = f"{d.bucket}|{d.model}"
        prev = scope_limits.get(scope)
        lim = d.limits
        if prev is not None:
            lim = Limits(
                rpm=min_known(prev.rpm, lim.rpm),
                tpm=min_known(prev.tpm, lim.tpm),
                rpd=min_known(prev.rpd, lim.rpd),
                tpd=min_known(prev.tpd, lim.tpd),
                max_parallel=min_known(prev.max_parallel, lim.max_parallel),
            )
        scope_limits[scope] = lim
    groups: dict[str, list[Deployment]] = {}
    for d in config.deployments:
        scope = f"{d.bucket}|{d.model}"
        groups.setdefault(d.group, []).append(Deployment(cfg=d, scope=scope, limits=scope_limits[scope]))
    return groups
