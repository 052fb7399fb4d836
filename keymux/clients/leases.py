"""Per-replica leases of a gateway key's limits in Redis, so most requests are admitted without a round trip.

A replica takes, in one atomic call, a lease of a client's limits: up to `SLOTS` request slots (counted at once
in the minute's rpm and the day's rpd), as many max_parallel slots, a slice of the budget and of tpm. It admits
locally against it until it ends: after `LIFE` seconds, at the end of the minute, day or budget period it was
taken in, or once its slots or its slice are used up. The replica's next request then gives back what the
old lease did not use and takes the next one in the same call; with no request within `IDLE` seconds, the
lease is given back on its own. Costs and tokens settle into the replica and are written with that call.

    rpm, rpd       exact: slots are reserved before they are used, never more than the limit
    max_parallel   exact: a replica holds slots in the shared in-flight count before it admits on them
    budget, tpm    a slice is reserved (a hash field per replica, dropped `GRACE` s after its lease if the
                   replica died) and admits while it is not used up: see the bound in counters.py

A lease is at most a `SHARE`th of each limit; limits too small for two slots are checked per request
(keymux/clients/redis.py's exact scripts). Slots another replica holds unused come back within `BACK`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from keymux.clients.counters import Used, refusal
from keymux.clients.model import GatewayClient
from keymux.clients.refusals import ClientLimited
from keymux.clock import Clock, Timer

log = logging.getLogger("keymux.clients")

LIFE = 1.0  # seconds a lease admits at most
IDLE = 1.0  # an ended lease no request renewed within this many seconds is given back on its own
BACK = LIFE + IDLE  # what another replica holds unused comes back within this many seconds
SLOTS = 100  # request slots per lease at most
SHARE = 10  # a lease is at most this fraction (1/SHARE) of each limit
GRACE = 10.0  # a reservation outlives its lease in Redis by this much before another replica drops it

# KEYS: 1 minute requests, 2 minute tokens, 3 day requests, 4 spend, 5 in flight, 6 leases (hash),
#       7 minute requests and 8 day requests the old lease was taken in
# ARGV: 1 replica, 2 now, 3 unused slots, 4 settled tokens, 5 settled usd, 6 idle parallel slots,
#       7 slots wanted (0: give back only), 8 parallel wanted, 9 usd wanted (-1: no budget),
#       10 tokens wanted (-1: no tpm), 11-15 max_parallel rpm tpm rpd budget (-1: none),
#       16 minute ttl, 17 day ttl, 18 spend ttl (0: none), 19 reservation expiry, 20 period, 21 minute
_LEASE = """
local function num(k) return tonumber(redis.call('GET', k) or '0') end
local back = tonumber(ARGV[3])
if back > 0 then
  for _, k in ipairs({KEYS[7], KEYS[8]}) do
    if redis.call('EXISTS', k) == 1 then redis.call('DECRBY', k, back) end
  end
end
if tonumber(ARGV[4]) > 0 then redis.call('INCRBY', KEYS[2], ARGV[4]) redis.call('EXPIRE', KEYS[2], ARGV[16]) end
if tonumber(ARGV[5]) > 0 then
  redis.call('INCRBYFLOAT', KEYS[4], ARGV[5])
  if tonumber(ARGV[18]) > 0 then redis.call('EXPIRE', KEYS[4], ARGV[18]) end
end
local idle = tonumber(ARGV[6])
if idle > 0 then redis.call('DECRBY', KEYS[5], math.min(idle, num(KEYS[5]))) end
redis.call('HDEL', KEYS[6], ARGV[1])
local now = tonumber(ARGV[2])
local rusd, rtok = 0, 0
local all = redis.call('HGETALL', KEYS[6])
for i = 1, #all, 2 do
  local v = cjson.decode(all[i + 1])
  if v.exp < now then redis.call('HDEL', KEYS[6], all[i]) else
    if v.p == ARGV[20] then rusd = rusd + v.usd end
    if v.m == ARGV[21] then rtok = rtok + v.tok end
  end
end
local mr, mt, dr, sp, fl = num(KEYS[1]), num(KEYS[2]), num(KEYS[3]), num(KEYS[4]), num(KEYS[5])
local state = {mr, mt, dr, tostring(sp), fl, tostring(rusd), rtok}
local slots = tonumber(ARGV[7])
if slots == 0 then table.insert(state, 1, 0) return state end
local maxp, rpm, tpm, rpd, budget = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13]),
  tonumber(ARGV[14]), tonumber(ARGV[15])
if rpm >= 0 then slots = math.min(slots, rpm - mr) end
if rpd >= 0 then slots = math.min(slots, rpd - dr) end
local par = 0
if maxp >= 0 then par = math.min(tonumber(ARGV[8]), maxp - fl) if par <= 0 then slots = 0 end end
local usd, tok = -1, -1
if budget >= 0 then usd = math.min(tonumber(ARGV[9]), budget - sp - rusd) if usd <= 0 then slots = 0 end end
if tpm >= 0 then tok = math.min(tonumber(ARGV[10]), tpm - mt - rtok) if tok <= 0 then slots = 0 end end
if slots <= 0 then table.insert(state, 1, 0) return state end
redis.call('INCRBY', KEYS[1], slots) redis.call('EXPIRE', KEYS[1], ARGV[16])
redis.call('INCRBY', KEYS[3], slots) redis.call('EXPIRE', KEYS[3], ARGV[17])
if par > 0 then redis.call('INCRBY', KEYS[5], par) redis.call('EXPIRE', KEYS[5], 3600) end
if usd > 0 or tok > 0 then
  redis.call('HSET', KEYS[6], ARGV[1], cjson.encode({exp = tonumber(ARGV[19]), p = ARGV[20], m = ARGV[21],
    usd = math.max(usd, 0), tok = math.max(tok, 0)}))
  redis.call('EXPIRE', KEYS[6], math.max(86400, tonumber(ARGV[18])))
end
return {slots, par, tostring(usd), tok, mr, mt, dr, tostring(sp), fl, tostring(rusd), rtok}
"""


@dataclass(frozen=True)
class Size:
    """What one lease asks for."""

    slots: int
    parallel: int  # 0: the key has no max_parallel
    usd: float  # -1: no budget
    tokens: int  # -1: no tpm


def size_of(client: GatewayClient) -> Size | None:
    """The lease this client's limits allow; None when they are too small to share out (exact checks)."""
    slots = SLOTS
    for limit in (client.rpm, client.rpd, client.max_parallel):
        if limit is not None:
            slots = min(slots, limit // SHARE)
    tokens = -1 if client.tpm is None else client.tpm // SHARE
    usd = -1.0 if client.budget is None else client.budget.usd / SHARE
    if slots < 2 or tokens == 0 or usd == 0:
        return None
    return Size(slots, slots if client.max_parallel is not None else 0, usd, tokens)


@dataclass
class Window:
    """The Redis keys of the windows `now` is in, and when the first of them ends."""

    keys: list[str]  # minute requests, minute tokens, day requests, spend, in flight, leases
    spend_ttl: int
    period: str
    minute: str
    ends: float


@dataclass
class Held:
    """What this replica holds of one client's limits."""

    client: GatewayClient
    slots: int = 0  # request slots of the current lease left
    usd: float = 0.0  # budget slice left (inf: no budget)
    tokens: float = 0.0  # tpm slice left (inf: no tpm)
    expires: float = -1.0  # the current lease's end (-1: none live)
    window: Window | None = None  # the windows the current lease was taken in
    parallel: int = 0  # max_parallel slots held in the shared in-flight count (0 and unused: no max_parallel)
    in_flight: int = 0
    pending_usd: float = 0.0  # settled here, not yet written to Redis
    pending_tokens: int = 0
    renewing: asyncio.Future[ClientLimited | None] | None = None
    flushing: bool = False
    timer: Timer | None = field(default=None, repr=False)

    def unwritten(self) -> bool:
        """Something Redis should be told: slots or a slice held, parallel slots idle, settled costs."""
        return (self.expires >= 0 or self.slots > 0 or self.pending_tokens > 0 or self.pending_usd > 0
                or (self.client.max_parallel is not None and self.parallel > self.in_flight))

    def admits(self, now: float) -> bool:
        return (now < self.expires and self.slots > 0 and self.usd > 0 and self.tokens > 0
                and (self.client.max_parallel is None or self.in_flight < self.parallel))


Script = Callable[..., Awaitable[Any]]
WindowOf = Callable[[GatewayClient, float], Window]


class Leases:
    """The leases one replica holds, over `script` (the registered _LEASE script)."""

    def __init__(self, script: Script, window: WindowOf, clock: Clock, replica: str,
                 ttls: tuple[int, int], seen: Callable[[GatewayClient, Used], None],
                 outages: tuple[type[BaseException], ...] = (OSError,)) -> None:
        self.script = script
        self.window = window
        self.clock = clock
        self.replica = replica
        self.minute_ttl, self.day_ttl = ttls
        self.seen = seen  # told what Redis holds for a client after each call (gauges, refusal counts)
        self.outages = outages  # what an unreachable Redis raises
        self.held: dict[str, Held] = {}
        self._pending: set[asyncio.Task[None]] = set()

    # -- on the request path -------------------------------------------------------------------
    def admit_local(self, client: GatewayClient, now: float) -> bool:
        held = self.held.get(client.name)
        if held is None or held.client is not client or not held.admits(now):
            return False
        held.slots -= 1
        held.in_flight += 1
        return True

    async def admit(self, client: GatewayClient, size: Size, now: float) -> None:
        while not self.admit_local(client, now):
            held = self.held.get(client.name)
            if held is not None and held.renewing is not None:  # another request of this client renews
                refused = await asyncio.shield(held.renewing)
            else:
                refused = await self._renew(client, size, now)
            if refused is not None:
                raise refused.with_traceback(None)  # one refusal for every request that waited on it

    def settle_local(self, client: GatewayClient, tokens: int, cost: float) -> bool:
        """Counted here and written with the next call (False: not a leased request)."""
        held = self.held.get(client.name)
        if held is None or held.in_flight <= 0:
            return False
        held.in_flight -= 1
        held.pending_tokens += tokens
        held.pending_usd += cost
        held.tokens -= tokens
        held.usd -= cost
        if held.expires < 0 and held.renewing is None:  # no lease, none coming: write it now
            self._flush_soon(held)
        return True

    # -- Redis calls ---------------------------------------------------------------------------
    async def _renew(self, client: GatewayClient, size: Size, now: float) -> ClientLimited | None:
        held = self.held.get(client.name)
        if held is None:
            held = self.held[client.name] = Held(client)
        done: asyncio.Future[ClientLimited | None] = asyncio.get_running_loop().create_future()
        held.renewing = done
        try:
            refused = await self._call(held, client, size, now)
        except BaseException as e:
            done.set_exception(e)
            done.exception()  # retrieved: the waiters re-raise it
            raise
        finally:
            held.renewing = None
        done.set_result(refused)
        return refused

    async def _call(self, held: Held, client: GatewayClient, size: Size | None, now: float) -> ClientLimited | None:
        """Give back the current lease and what settled since, and (with `size`) take the next one."""
        window = self.window(client, now)
        old = held.window or window
        expires = min(now + LIFE, window.ends)
        back, tokens, usd = held.slots, held.pending_tokens, held.pending_usd
        idle = max(0, held.parallel - held.in_flight) if client.max_parallel is not None else 0
        held.slots, held.pending_tokens, held.pending_usd, held.expires, held.window = 0, 0, 0.0, -1.0, None
        held.parallel -= idle
        if held.timer is not None:
            held.timer.cancel()
            held.timer = None
        limits = [client.max_parallel, client.rpm, client.tpm, client.rpd,
                  client.budget.usd if client.budget is not None else None]
        args = [self.replica, repr(now), back, tokens, repr(usd), idle,
                size.slots if size else 0, size.parallel if size else 0, repr(size.usd) if size else -1,
                size.tokens if size else -1, *[-1 if v is None else v for v in limits],
                self.minute_ttl, self.day_ttl, window.spend_ttl, repr(expires + IDLE + GRACE), window.period,
                window.minute]
        keys = [*window.keys, old.keys[0], old.keys[2]]
        try:
            got = await self.script(keys=keys, args=args)
        except BaseException:  # not written: keep it to write with the next call (the slots are lost)
            held.pending_tokens += tokens
            held.pending_usd += usd
            held.parallel += idle
            raise
        if size is None:
            self.seen(client, _used(got[1:], now))
            return None
        if int(got[0]) <= 0:  # no lease: what Redis holds, and what other replicas reserved
            used = _used(got[1:], now)
            self.seen(client, used)
            return _refusal(client, used, float(got[6]), int(got[7]), now)
        slots, parallel, lease_usd, lease_tokens = int(got[0]), int(got[1]), float(got[2]), int(got[3])
        self.seen(client, _used(got[4:], now))
        held.client, held.slots, held.parallel = client, slots, held.parallel + parallel
        held.usd = math.inf if lease_usd < 0 else lease_usd
        held.tokens = math.inf if lease_tokens < 0 else lease_tokens
        held.expires, held.window = expires, window
        held.timer = self.clock.call_at(held.expires + IDLE, lambda: self._expired(held))
        return None

    def _expired(self, held: Held) -> None:
        held.timer = None
        if held.renewing is None:
            self._flush_soon(held)

    def _flush_soon(self, held: Held) -> None:
        if held.flushing:
            return
        held.flushing = True
        task = asyncio.ensure_future(self._flush(held))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _flush(self, held: Held) -> None:
        """Give back an ended lease (or write what settled after it) without taking another."""
        try:
            await asyncio.sleep(0)  # settlements of the same tick go in the same call
            while held.renewing is None and self.held.get(held.client.name) is held and held.unwritten():
                await self._call(held, held.client, None, self.clock.time())
            if (held.renewing is None and held.in_flight == 0 and held.expires < 0
                    and self.held.get(held.client.name) is held):  # nothing left: forget it (not while renewed)
                del self.held[held.client.name]
        except self.outages as e:  # kept: written with the next call that reaches Redis
            log.error("could not give back the lease of gateway key '%s': %s", held.client.name, e)
        finally:
            held.flushing = False

    async def release(self, name: str | None = None) -> None:
        """Give back every lease (or one client's): stop, a deleted or changed key."""
        for held in [h for n, h in self.held.items() if name is None or n == name]:
            if held.renewing is not None:
                await asyncio.shield(held.renewing)
            await self._call(held, held.client, None, self.clock.time())
            if name is not None or held.in_flight == 0:
                self.held.pop(held.client.name, None)

    async def drain(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def local(self, name: str, used: Used) -> Used:
        """`used` as Redis holds it, corrected by what this replica holds: its unused slots are not used, what
        settled here and is not written yet is."""
        held = self.held.get(name)
        if held is None:
            return used
        return Used(minute=used.minute, minute_requests=max(0, used.minute_requests - held.slots),
                    minute_tokens=used.minute_tokens + held.pending_tokens, day=used.day,
                    day_requests=max(0, used.day_requests - held.slots), period=used.period,
                    spent=used.spent + held.pending_usd,
                    in_flight=max(0, used.in_flight - max(0, held.parallel - held.in_flight)),
                    refused=used.refused)


def _used(state: list[Any], now: float) -> Used:
    mr, mt, dr, sp, fl = (v or 0 for v in state[:5])
    return Used(minute=now - now % 60.0, minute_requests=int(mr), minute_tokens=int(mt), day_requests=int(dr),
                spent=float(sp), in_flight=int(fl))


def _refusal(client: GatewayClient, used: Used, reserved_usd: float, reserved_tokens: int,
             now: float) -> ClientLimited:
    """Why no lease: a limit reached (the same refusal as per-request checks), or the rest of the budget or
    tpm reserved by other replicas' leases, which give back what they do not use within BACK seconds."""
    found = refusal(client, used, now)
    if found is not None:
        return found
    who = f"gateway key '{client.name}'"
    if client.budget is not None and used.spent + reserved_usd >= client.budget.usd:
        return ClientLimited(f"{who}: the rest of its budget of {client.budget} (${client.budget.usd - used.spent:.4f}) "
                             "is held by other replicas of this gateway; they give back what they do not use "
                             f"within {BACK:g} s", BACK, "budget")
    assert client.tpm is not None and used.minute_tokens + reserved_tokens >= client.tpm
    return ClientLimited(f"{who}: the rest of its limit of {client.tpm} tokens per minute is held by other "
                         f"replicas of this gateway; they give back what they do not use within {BACK:g} s",
                         min(BACK, 60.0 - now % 60.0), "tpm")
