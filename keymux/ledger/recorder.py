"""The pipeline observer: each finished request becomes one ledger row and the metrics it counts for."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from keymux.config.schema import DeploymentConfig
from keymux.ledger.row import Row
from keymux.ledger.writer import Ledger
from keymux.live import Live, Snapshot
from keymux.pricing import cost_of
from keymux.request import Trace

log = logging.getLogger("keymux.ledger")


class RowObserver(Protocol):
    """Metrics: told each row, with a way to find the upstream model a (group, key fingerprint) serves."""

    def observe(self, row: Row, model_of: Callable[[str, str], str]) -> None: ...


class Recorder:
    def __init__(self, live: Live, ledger: Ledger, metrics: RowObserver) -> None:
        self.live = live
        self.ledger = ledger
        self.metrics = metrics
        self._indexed: Snapshot | None = None
        self._indexed_groups = 0
        self._by_group: dict[tuple[str, str, str], DeploymentConfig] = {}  # (group, fingerprint, model)
        self._by_key: dict[tuple[str, str], DeploymentConfig] = {}  # (fingerprint, model): a fallback group's

    def _index(self) -> Snapshot:
        snapshot = self.live.snapshot
        # A snapshot grows a group when a wildcard deployment serves a new model: index that too.
        if snapshot is not self._indexed or len(snapshot.groups) != self._indexed_groups:
            self._by_group = {(g, d.fingerprint, d.model): d.cfg for g, ds in snapshot.groups.items() for d in ds}
            self._by_key = {(fp, m): cfg for (_, fp, m), cfg in self._by_group.items()}
            self._indexed, self._indexed_groups = snapshot, len(snapshot.groups)
        return snapshot

    def model_of(self, group: str, fp: str) -> str:
        snapshot = self.live.snapshot
        for name in (group, *snapshot.router.fallbacks.get(group, ())):
            for d in snapshot.groups.get(name, ()):
                if d.fingerprint == fp:
                    return d.model
        return next((m for f, m in self._by_key if f == fp), "")

    def _deployment(self, trace: Trace) -> DeploymentConfig | None:
        """The deployment that answered: one key may serve several groups at different prices; a fallback
        group answered when the request's own group does not hold it."""
        model = trace.upstream_model or ""
        found = self._by_group.get((trace.request.group, trace.key or "", model))
        return found if found is not None else self._by_key.get((trace.key or "", model))

    def __call__(self, trace: Trace) -> None:
        try:
            self._index()
            cfg = self._deployment(trace) if trace.key else None
            cost = cost_of(cfg, trace.upstream_model, trace.usage)
            trace.cost = cost.cost
            row = Row.from_trace(trace, cost)
            self.ledger.append(row)
            self.metrics.observe(row, self.model_of)
        except Exception:  # noqa: BLE001 - the client already has its answer: a ledger bug must not reach it
            log.exception("could not record request %s", trace.request.request_id)
