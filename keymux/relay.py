"""The one request pipeline every surface uses (a `Handler`, keymux/request.py).

resolve group -> acquire a key (waiting in the pool's queue if needed) -> one attempt ->
on a retryable verdict, a different key (never one that already failed for this request),
up to `num_retries` or what `retry_policy` allows that class of failure (a failed deployment's own
`max_retries` can only lower what follows; a request's own 4xx is not retried unless the policy says so), then the
`fallbacks` groups -> the answer, or an honest error. What happened is written into the request's `Trace`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from keymux.attempt import Failure, attempt
from keymux.clock import Clock
from keymux.config.policies import error_class
from keymux.errors import BadRequest, NoCapacity, NotFound, UpstreamFailed
from keymux.exchange import Exchange, make_exchange
from keymux.live import Live, Snapshot
from keymux.pool import Pool
from keymux.pool.deployment import Deployment
from keymux.providers.base import Outcome, Verdict
from keymux.request import Reply, Request, StreamReply, Trace
from keymux.transport import Transport

log = logging.getLogger("keymux.relay")

_UNBOUNDED = 1 << 30
_ABANDONED = Verdict(Outcome.CLIENT_ERROR, reason="attempt abandoned")  # frees the key, blames nobody
_CONTEXT_OVERFLOW = ("context_length_exceeded", "maximum context length", "exceeds the maximum number of tokens",
                     "input token count", "too many tokens")


class Relay:
    def __init__(self, live: Live, pool: Pool, transport: Transport, clock: Clock) -> None:
        self.live = live
        self.pool = pool
        self.transport = transport
        self.clock = clock
        # told of each resource call a key answered (keymux/batch_usage.py: batches created, seen ended)
        self.resource_observers: list[Callable[[Request, Exchange, str], Awaitable[None]]] = []

    def _exchanges(self, request: Request, group: str, snapshot: Snapshot) -> dict[str, Exchange]:
        return {p: make_exchange(request.surface, p, body=request.body, raw=request.raw, model=request.model,
                                 drop_params=snapshot.config.drop_params, include_usage=request.include_usage,
                                 method=request.operation, path=request.path, http_method=request.http_method)
                for p in snapshot.providers(group)}

    async def __call__(self, request: Request, trace: Trace) -> Reply | StreamReply:
        snapshot = self.live.snapshot  # one snapshot for the whole request, whatever a reload does meanwhile
        router = snapshot.router
        deadline = trace.at + router.queue_timeout
        owner = trace.pinned = await self._owner(request) if request.resources else None
        if owner is None and request.path and not request.group:  # GET/DELETE/cancel of something unpinned
            raise NotFound(f"{request.resources[0] if request.resources else request.path} is not known here (it expired, was deleted, or was "
                           "created through another gateway)")
        # A request naming a resource goes to the key that owns it, or nowhere: no other key knows it.
        if owner and request.group and not self.pool.pinned_candidates(request.group, owner):
            raise self._unserved(request, owner)
        groups = [request.group] if owner else [request.group, *router.fallbacks.get(request.group, ())]
        failures: list[Failure] = []
        refusal: NoCapacity | None = None
        i = 0
        while i < len(groups):
            group = groups[i]
            i += 1
            exchanges = self._exchanges(request, group, snapshot)  # translation errors raise here, before any quota
            if not exchanges and request.path and not group:  # a resource call: the owner's provider
                exchanges = {"gemini": make_exchange(request.surface, "gemini", body=request.body, raw=request.raw,
                                                     model=request.model, drop_params=False,
                                                     method=request.operation, path=request.path,
                                                     http_method=request.http_method)}
            if not exchanges:
                continue
            tokens = next(iter(exchanges.values())).estimated_tokens
            failed_keys: list[str] = []
            left = 1 if owner else 1 + router.num_retries  # attempts this group may still make
            made = 0
            most = _UNBOUNDED  # attempts at most, once a failed deployment's max_retries bounds what follows
            refused_request: tuple[Failure, Exchange, Deployment] | None = None  # the request's own error
            while left > 0:
                left -= 1
                made += 1
                asked = self.clock.time()
                try:
                    lease = await self.pool.acquire(group, tokens, exclude=failed_keys, metered=request.metered,
                                                    wait=max(0.0, deadline - asked), pinned=owner)
                except NoCapacity as e:
                    trace.queue_wait += self.clock.time() - asked
                    if owner:
                        e.message = f"{', '.join(request.resources)} belongs to key {owner}, which cannot take it: " \
                                    f"{e.message}"
                    refusal = e
                    break
                trace.queue_wait += self.clock.time() - asked
                dep = lease.deployment
                ex = exchanges[dep.cfg.provider]
                try:
                    result = await attempt(self.transport, ex, lease, stream=request.stream,
                                           timeout=_timeout(dep, request.stream, router.timeout),
                                           now=self.clock.time, trace=trace)
                except BaseException:  # cancelled, or a bug: the key is not to blame, but it must be freed
                    await lease.release(_ABANDONED)  # a no-op if attempt() already released it
                    raise
                if not isinstance(result, Failure):
                    if request.path:  # a resource call (exchange/gemini_resources.py) may create or delete one
                        await self._track(request, ex, dep.fingerprint)
                    result.headers["x-keymux-key"] = dep.fingerprint
                    result.headers["x-keymux-attempts"] = str(len(failures) + 1)
                    if trace.key is None:  # a whole answer's attempt said so already
                        trace.answered_by(dep.fingerprint, dep.model)
                    return result
                trace.attempts.append((dep.fingerprint, result.verdict.outcome.value))
                failures.append(result)
                refused_request = None
                outcome = result.verdict.outcome
                if outcome is Outcome.CLIENT_ERROR:
                    overflow = router.context_window_fallbacks.get(group)
                    if overflow and _is_context_overflow(result):
                        groups[i:] = list(overflow)
                        break
                    refused_request = (result, ex, dep)
                failed_keys.append(dep.fingerprint)
                if dep.cfg.max_retries is not None:  # this deployment's own bound on what follows its failure
                    most = min(most, made + dep.cfg.max_retries)
                if not owner:  # retry_policy: the attempts this class of failure allows the group in all
                    allowed = snapshot.retries(group)[error_class(outcome, result.status, result.raw)] + 1
                    left = min(allowed, most) - made
            if refused_request is not None:  # no other key took it: the client gets its request's error
                return _request_error(*refused_request, trace)
        raise self._give_up(request, trace, failures, refusal)

    async def _owner(self, request: Request) -> str | None:
        """The key that owns what the request names (None: it names nothing we pinned); 400 if two do."""
        owners: dict[str, str] = {}
        for resource in request.resources:
            found = await self.pool.owner(resource)
            if found is not None:
                owners.setdefault(found, resource)
        if len(owners) > 1:
            named = ", ".join(f"{r} (key {fp})" for fp, r in sorted(owners.items()))
            raise BadRequest(f"this request names resources that belong to different keys' projects: {named}; "
                             "a Gemini request can only use resources of one project")
        return next(iter(owners), None)

    def _unserved(self, request: Request, owner: str) -> Exception:
        """The owner of what the request names does not serve its group: the client's mistake (400), or a key
        no longer configured at all (404: what it owned is gone with it)."""
        named = ", ".join(request.resources)
        groups = self.pool.groups
        serving = [g for g in self.live.snapshot.names if any(d.fingerprint == owner for d in groups.get(g, ()))]
        if not serving:
            return NotFound(f"{named} belongs to key {owner}, which is no longer configured here")
        return BadRequest(f"{named} belongs to key {owner}, which does not serve model group '{request.group}'; "
                          f"that key serves: {', '.join(serving)}")

    async def _track(self, request: Request, ex: Exchange, fingerprint: str) -> None:
        """Pin what the answer created to the key that made it; forget what it deleted."""
        for resource, ttl, expires in getattr(ex, "created", ()):
            if expires is not None:
                ttl = max(1.0, expires - self.clock.time())
            await self.pool.pin(resource, fingerprint, ttl)
        for resource in getattr(ex, "deleted", ()):
            await self.pool.unpin(resource)
        for observer in self.resource_observers:
            await observer(request, ex, fingerprint)

    def _give_up(self, request: Request, trace: Trace, failures: list[Failure],
                 refusal: NoCapacity | None) -> Exception:
        tried = "; ".join(f"{fp} {outcome}" for fp, outcome in trace.attempts[-4:])
        if refusal is not None and refusal.retry_after is not None:
            if failures:
                refusal.message = f"{len(failures)} attempt(s) failed ({tried}); {refusal.message}"
            return refusal
        if not failures:
            assert refusal is not None
            return UpstreamFailed(refusal.message, status=503)
        last = failures[-1]
        outcome = last.verdict.outcome
        message = f"{request.group}: {len(failures)} attempt(s) failed ({tried}); last: {last.verdict.reason}"
        if refusal is not None:
            message += f"; {refusal.message}"
        if outcome in (Outcome.RATE_LIMITED, Outcome.BACKOFF, Outcome.DAILY_EXHAUSTED):
            wait = last.verdict.retry_after
            if outcome is Outcome.DAILY_EXHAUSTED and last.verdict.until:
                wait = max(0.0, last.verdict.until - self.clock.time())
            return NoCapacity(message, retry_after=wait if wait is not None else 5.0)
        status = 504 if outcome is Outcome.TIMEOUT else 503 if outcome is Outcome.INVALID_KEY else 502
        if last.status in (500, 503, 529) and outcome is Outcome.UPSTREAM_ERROR:
            status = last.status
        return UpstreamFailed(message, status=status)


def _request_error(result: Failure, ex: Exchange, dep: Deployment, trace: Trace) -> Reply:
    """An upstream's answer that the request itself is wrong, in the client's shape (not retried further)."""
    trace.answered_by(dep.fingerprint, dep.model)
    trace.finish(result.status, "client_error", result.verdict.reason)
    return Reply(result.status, ex.error(result.status, result.raw, result.verdict))


def _timeout(dep: Deployment, stream: bool, default: float) -> float:
    """A whole answer's deadline; for a stream, the longest silence (`stream_timeout`, else `timeout`)."""
    cfg = dep.cfg
    if stream and cfg.stream_timeout is not None:
        return cfg.stream_timeout
    return cfg.timeout or default


def _is_context_overflow(failure: Failure) -> bool:
    text = failure.raw.decode("utf-8", "replace").lower()
    return any(marker in text for marker in _CONTEXT_OVERFLOW)
