"""Gateway key counters shared by every replica. Limits large enough to share out are leased
(keymux/clients/leases.py: most requests make no round trip); small ones are checked per request: one Lua
script checks every limit and reserves the request in one Redis round trip, so two replicas can never both
take the last request of a window.

Keys (under the Redis namespace): `{ns}:client:{name}:` + `m:{minute}` (requests), `t:{minute}` (tokens),
`d:{day}` (requests), `s:{period}` (USD, INCRBYFLOAT), `f` (in flight), `l` (the budget and tpm slices
each replica's lease reserved: a hash, field = replica). Windows expire by themselves; the
in-flight count expires an hour after its last use, so a replica that died holding slots frees them.
The overspend bound of keymux/clients/counters.py holds across replicas: spend >= budget refuses everyone.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from keymux.clients.counters import Used, refusal
from keymux.clients.leases import _LEASE, Leases, Window, size_of
from keymux.clients.model import GatewayClient
from keymux.clients.periods import day_bounds, minute_bounds, period_bounds, zone
from keymux.clients.refusals import ClientLimited
from keymux.clock import Clock, SystemClock
from keymux.config.schema import RedisSettings

# KEYS: minute requests, minute tokens, day requests, spend, in flight
# ARGV: max_parallel, rpm, tpm, rpd, budget (-1: none), minute ttl, day ttl, spend ttl (0: none)
_ADMIT = """
local mr = tonumber(redis.call('GET', KEYS[1]) or '0')
local mt = tonumber(redis.call('GET', KEYS[2]) or '0')
local dr = tonumber(redis.call('GET', KEYS[3]) or '0')
local sp = tonumber(redis.call('GET', KEYS[4]) or '0')
local fl = tonumber(redis.call('GET', KEYS[5]) or '0')
local state = {mr, mt, dr, tostring(sp), fl}
local function over(limit, used) local l = tonumber(limit) return l >= 0 and used >= l end
if over(ARGV[1], fl) or over(ARGV[2], mr) or over(ARGV[3], mt) or over(ARGV[4], dr) or over(ARGV[5], sp) then
  table.insert(state, 1, 0)
  return state
end
redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('INCR', KEYS[3]) redis.call('EXPIRE', KEYS[3], ARGV[7])
redis.call('INCR', KEYS[5]) redis.call('EXPIRE', KEYS[5], 3600)
table.insert(state, 1, 1)
return state
"""

# KEYS: minute requests, minute tokens, day requests, spend, in flight; ARGV: tokens, usd, minute ttl, spend ttl
# Returns what is used after it (the gauges and soft-budget alerts read it: no second round trip).
_SETTLE = """
if tonumber(redis.call('GET', KEYS[5]) or '0') > 0 then redis.call('DECR', KEYS[5]) end
if tonumber(ARGV[1]) > 0 then
  redis.call('INCRBY', KEYS[2], ARGV[1]) redis.call('EXPIRE', KEYS[2], ARGV[3])
end
if tonumber(ARGV[2]) > 0 then
  redis.call('INCRBYFLOAT', KEYS[4], ARGV[2])
  if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[4], ARGV[4]) end
end
return redis.call('MGET', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
"""

DAY_TTL = 2 * 86400
MINUTE_TTL = 120


class RedisCounters:
    def __init__(self, settings: RedisSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.leases: Leases | None = None
        self.namespace = settings.namespace
        self._redis: Any = None
        self.outage_errors: tuple[type[BaseException], ...] = (OSError,)
        self._refused: dict[str, int] = {}  # refusals seen by this replica (for its admin API and metrics)
        self._last: dict[str, Used] = {}  # what each key had used when this replica last looked
        self._queue: list[tuple[GatewayClient, int, float, float]] = []
        self._batch: asyncio.Future[None] | None = None

    async def start(self) -> None:
        from keymux.pool.redis import make_client, outage_errors  # imports redis: only when configured

        self.outage_errors = outage_errors()
        self._redis = make_client(self.settings)
        self._admit = self._redis.register_script(_ADMIT)
        self._settle = self._redis.register_script(_SETTLE)
        self.leases = Leases(self._redis.register_script(_LEASE), self._window, self.clock, uuid.uuid4().hex[:12],
                             (MINUTE_TTL, DAY_TTL), self._seen, self.outage_errors)

    async def stop(self) -> None:
        if self._redis is not None:
            if self.leases is not None:
                await self.leases.drain()
                try:  # what this replica holds goes back to the others
                    await self.leases.release()
                except self.outage_errors:
                    pass
            await self._redis.aclose()

    def _window(self, client: GatewayClient, now: float) -> Window:
        tz = zone(client.timezone)
        base = f"{self.namespace}:client:{client.name}:"
        minute, minute_end = minute_bounds(now)
        day, day_end = day_bounds(now, tz)
        spend_ttl = 0
        period = "none"
        ends = min(minute_end, day_end)
        if client.budget is not None:
            start, reset = period_bounds(client.budget.period, now, tz)
            period = f"{client.budget.period}:{int(start)}"
            spend_ttl = 0 if reset is None else int(reset - now) + 86400
            ends = ends if reset is None else min(ends, reset)
        keys = [f"{base}m:{int(minute)}", f"{base}t:{int(minute)}", f"{base}d:{int(day)}", f"{base}s:{period}",
                f"{base}f", f"{base}l"]
        return Window(keys, spend_ttl, period, str(int(minute)), ends)

    def _keys(self, client: GatewayClient, now: float) -> tuple[list[str], int]:
        window = self._window(client, now)
        return window.keys[:5], window.spend_ttl

    def admit_local(self, client: GatewayClient, now: float) -> bool:
        """Admitted on this replica's lease, no round trip (False: `admit` decides)."""
        return self.leases is not None and self.leases.admit_local(client, now)

    async def admit(self, client: GatewayClient, now: float) -> None:
        size = size_of(client) if self.leases is not None else None
        if size is None and self.leases is not None and client.name in self.leases.held:
            await self.leases.release(client.name)  # its limits were lowered below what is shared out
        if size is None:
            return await self._admit_exact(client, now)
        assert self.leases is not None
        try:
            await self.leases.admit(client, size, now)
        except ClientLimited:
            self._refused[client.name] = self._refused.get(client.name, 0) + 1
            raise

    def settle_local(self, client: GatewayClient, tokens: int, cost: float, now: float) -> Used | None:
        """A leased request: counted here, written with the lease's next call (None: `settle` writes it).
        What is used is as Redis said at the lease's last call."""
        if self.leases is None or not self.leases.settle_local(client, tokens, cost):
            return None
        return self._last.get(client.name) or Used()

    def _seen(self, client: GatewayClient, used: Used) -> None:
        used.refused = self._refused.get(client.name, 0)
        if client.budget is not None:  # the soft-budget alert is once per period
            used.period = period_bounds(client.budget.period, used.minute, zone(client.timezone))[0]
        self._last[client.name] = used

    async def _admit_exact(self, client: GatewayClient, now: float) -> None:
        keys, spend_ttl = self._keys(client, now)
        limits = [client.max_parallel, client.rpm, client.tpm, client.rpd,
                  client.budget.usd if client.budget is not None else None]
        args = [-1 if v is None else v for v in limits] + [MINUTE_TTL, DAY_TTL, spend_ttl]
        ok, *state = await self._admit(keys=keys, args=args)
        if ok:
            return
        used = self._last[client.name] = self._used(client, now, state)
        refused = refusal(client, used, now)
        self._refused[client.name] = self._refused.get(client.name, 0) + 1
        if refused is not None:
            raise refused

    async def settle(self, client: GatewayClient, tokens: int, cost: float, now: float) -> None:
        """Settlements finishing in the same loop tick go in one pipelined round trip (busy: many at once).
        Until written, a request still counts in flight, so the overspend bound holds."""
        self._queue.append((client, tokens, cost, now))
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._flush()))
        await asyncio.shield(self._batch)

    async def _flush(self) -> None:
        batch, done = self._queue, self._batch
        self._queue, self._batch = [], None
        assert done is not None
        try:
            pipe = self._redis.pipeline(transaction=False)
            for client, tokens, cost, now in batch:
                keys, spend_ttl = self._keys(client, now)
                await self._settle(keys=keys, args=[tokens, repr(cost), MINUTE_TTL, spend_ttl], client=pipe)
            states = await pipe.execute()
        except Exception as e:  # noqa: BLE001 - handed to every waiting settle() (the gate logs outages)
            done.set_exception(e)
            done.exception()  # marked as retrieved: the waiters re-raise it
            return
        for (client, _, _, now), state in zip(batch, states):
            self._last[client.name] = self._used(client, now, state)
        done.set_result(None)

    async def used(self, client: GatewayClient, now: float) -> Used:
        keys, _ = self._keys(client, now)
        used = self._used(client, now, await self._redis.mget(keys))
        if self.leases is not None:
            used = self.leases.local(client.name, used)
        self._last[client.name] = used
        return used

    def last(self, name: str) -> Used | None:
        return self._last.get(name)

    def _used(self, client: GatewayClient, now: float, state: list[Any]) -> Used:
        mr, mt, dr, sp, fl = (v or 0 for v in state)
        tz = zone(client.timezone)
        period = period_bounds(client.budget.period, now, tz)[0] if client.budget is not None else -1.0
        return Used(minute=minute_bounds(now)[0], minute_requests=int(mr), minute_tokens=int(mt),
                    day=day_bounds(now, tz)[0], day_requests=int(dr), period=period, spent=float(sp),
                    in_flight=int(fl), refused=self._refused.get(client.name, 0))

    async def forget(self, name: str) -> None:
        if self.leases is not None:
            self.leases.held.pop(name, None)
        self._refused.pop(name, None)
        self._last.pop(name, None)
        keys = [k async for k in self._redis.scan_iter(match=f"{self.namespace}:client:{name}:*")]
        if keys:
            await self._redis.delete(*keys)
