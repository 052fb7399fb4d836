"""The seam between pool decisions and where key state lives (memory now, Redis for replicas).

A store answers one atomic question per admission: "take the first of these deployments that
has room for this request right now, or tell me when the earliest one will".
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from keymux.pool.deployment import Deployment


class State(enum.Enum):
    # Members are singletons: hashed by identity in C, not by Enum's Python-level hash of the name (~850
    # instructions each time a member is a dict key or checked against a set, as on every request).
    __hash__ = object.__hash__

    READY = "ready"
    COOLING = "cooling"  # per-minute quota, retry delay, backoff, too many failures
    EXHAUSTED = "exhausted"  # per-day quota: out until midnight Pacific
    DISABLED = "disabled"  # invalid / leaked / suspended key, or disabled by an operator


@dataclass(frozen=True)
class Park:
    until: float
    state: State
    reason: str


@dataclass
class Reservation:
    deployment: Deployment
    tokens: float  # estimated tokens reserved
    at: float
    handles: list[object] = field(default_factory=list)  # store-specific, to settle later


@dataclass(frozen=True)
class Blocked:
    """Nothing fits now. `earliest` is when the first candidate could (inf: none ever will)."""

    earliest: float
    # Per deployment id: why it cannot take the request now (for error messages and logs).
    reasons: dict[str, str]
    waiting_on_parallel: bool = False  # some candidate is only full of in-flight requests


@dataclass(frozen=True)
class ScopeView:
    """What /health and (later) the admin API show of one deployment."""

    state: State
    until: float | None
    reason: str
    rpm_used: float
    tpm_used: float
    rpd_used: int
    tpd_used: float
    in_flight: int
    learned: dict[str, int]


PINNED_KINDS = ("interactions", "files", "cachedContents", "batches")  # what the dashboard counts per key


def pinned_kind(resource: str) -> str | None:
    kind = resource.split("/", 1)[0]
    return kind if kind in PINNED_KINDS and "/" in resource else None


class StateStore(Protocol):
    async def reserve(self, ordered: Sequence[Deployment], tokens: float, now: float,
                      metered: bool = True) -> Reservation | Blocked: ...

    async def settle(self, reservation: Reservation, tokens: float, now: float, succeeded: bool = False,
                     limited: bool = False) -> None:
        """Replace the reserved tokens with the real count and end the in-flight count. `succeeded`: the
        attempt succeeded, so also do what `record_success` does, in the same step (one round trip in Redis).
        `limited`: the upstream answered 429, so halve the scope's slow-start window (see memory.py)."""
        ...

    async def park_scope(self, scope: str, park: Park) -> None: ...

    async def park_deployment(self, deployment_id: str, park: Park) -> None: ...

    async def disable_key(self, fingerprint: str, reason: str) -> None: ...

    async def enable_key(self, fingerprint: str) -> None: ...

    async def reset_key(self, fingerprint: str, scopes: Sequence[str], deployment_ids: Sequence[str]) -> None:
        """Clear parks, backoff levels and failure counts of these scopes and deployments (admin reset)."""
        ...

    async def record_failure(self, deployment_id: str, now: float, window: float) -> int: ...

    async def record_success(self, deployment: Deployment) -> None: ...

    async def next_backoff(self, scope: str) -> int: ...

    async def learn_limit(self, scope: str, name: str, value: int) -> None: ...

    async def refresh(self, deployments: Sequence[Deployment], now: float) -> None:
        """Bring `view` up to date for these deployments (a no-op in memory; one round trip in Redis)."""
        ...

    def view(self, deployment: Deployment, now: float) -> ScopeView: ...

    # -- resource affinity: a resource (interaction, file, cache, batch) lives in one key's project --
    async def pin(self, resource: str, owner: str, ttl: float, now: float) -> None:
        """Record that `resource` belongs to key `owner` (a fingerprint) for `ttl` seconds."""
        ...

    async def owner(self, resource: str, now: float) -> str | None:
        """The fingerprint of the key that owns `resource`, or None (unknown or expired)."""
        ...

    async def unpin(self, resource: str) -> None: ...

    async def pin_counts(self, now: float) -> dict[str, dict[str, int]]:
        """Live pins per owner and kind (`PINNED_KINDS`): {fingerprint: {"files": 3, ...}}."""
        ...

    # -- long-running jobs keymux watches until they end (batches whose usage is still to record) ----
    async def track_job(self, name: str, info: str) -> None: ...

    async def tracked_jobs(self) -> dict[str, str]: ...

    async def untrack_job(self, name: str) -> str | None:
        """Forget the job: its info for the one caller (of every replica) that removed it, who records
        its end; None for everyone else."""
        ...
