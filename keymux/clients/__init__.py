"""Gateway keys per client: scoped to model groups, rate-limited, budgeted, shared safely by every replica.

    model.py      GatewayClient (what a key may do), field parsing shared by the admin API, config, LiteLLM
    secrets.py    keys made, hashed (SHA-256), compared in constant time
    periods.py    budget periods and resets in a stated time zone
    counters.py   what a key used: MemoryCounters (one replica), the Counters protocol, the overspend bound
    redis.py      RedisCounters: the same, atomic in Redis for several replicas
    leases.py     per-replica leases of a key's limits in Redis: most requests admitted without a round trip
    registry.py   the known keys: from the config file and from the admin API (stored in the ledger database)
    gate.py       ClientGate: the Handler around the chain that refuses before a key is leased; settles spend
    refusals.py   the 429s that say they are the client's own limit or budget
"""

from __future__ import annotations

from keymux.clients.counters import Counters, MemoryCounters
from keymux.clients.gate import ClientGate
from keymux.clients.registry import Registry
from keymux.clock import Clock
from keymux.config.schema import Config

__all__ = ["ClientGate", "Counters", "MemoryCounters", "Registry", "make_counters"]


def make_counters(config: Config, clock: Clock) -> Counters:
    """Counted in Redis when the router shares its state there (several replicas), in this process otherwise."""
    if config.router.redis is not None:
        from keymux.clients.redis import RedisCounters

        return RedisCounters(config.router.redis, clock)
    return MemoryCounters()
